"""A campaign dry run: what rules would pay over given facts, or over a recorded period, and
what that uses of the budget. Reads only; see simulate.py for what is replayed and how."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..campaigns import service as campaigns
from ..campaigns.rules import Rules
from ..core import clock
from ..core.errors import Unprocessable
from ..i18n import t
from ..referrals import codes
from . import recorded
from .schemas import DryRunIn, SignupFact
from .simulate import Entry, Fact, Replay

DEFAULT_DAYS, MAX_DAYS = 30, 92
MAX_ENTRIES_SHOWN = 1000  # totals and budget always cover every entry
MAX_DIFFERENCES = 50


def dry_run(campaign_id: str, body: DryRunIn) -> dict[str, Any]:
    campaign = campaigns.get(campaign_id)
    current = campaigns.rules_of(campaign)
    given = body.rules
    if given is not None and given.currency != current.currency:  # as PUT /v1/campaigns/{id} refuses it
        raise Unprocessable(t("a campaign's currency cannot change; start a new campaign"), code="currency_fixed",
                            details={"currency": current.currency})
    if given is not None:
        campaigns.check_program_rules(campaign_id, given)
    if body.facts is not None and (body.from_ or body.to):
        raise Unprocessable(t("give either facts or a period (from, to), not both"), code="facts_or_period")

    def rules_for(version: int | None) -> Rules:
        if given is not None:
            return given
        return campaigns.rules_at(campaign_id, version) if version is not None else current

    default_rules = given if given is not None and campaign_id == campaigns.DEFAULT_ID else \
        campaigns.rules_of(campaigns.current_or_404(None))
    replay_args = dict(campaign_id=campaign_id, rules_for=rules_for,
                       levels_for=lambda r: r if r.advocate_levels else default_rules,
                       # milestones are paid by the default campaign (rewards/ranks.py)
                       milestones=default_rules if campaign_id == campaigns.DEFAULT_ID else None,
                       milestone_campaign=campaigns.DEFAULT_ID)
    result: dict[str, Any] = {"campaign_id": campaign_id, "rules": "given" if given is not None else "in_force"}
    if body.facts is not None:
        replay = Replay(**replay_args)
        replay.run([_given_fact(fact, campaign_id) for fact in body.facts])
        result.update(mode="facts", facts=_counted(body.facts))
        written = None
    else:
        start, end = _period(body)
        period = recorded.load(campaign_id, start, end, rules_for, {campaign_id})
        replay = Replay(**replay_args, before=period.before)
        replay.run(period.facts)
        result.update(mode="period", **{"from": clock.iso(start), "to": clock.iso(end)}, facts=_counted(period.facts))
        written = period.written if given is None else None
    entries = sorted(replay.entries.values(), key=lambda e: (e.created_at, e.member_id, e.entry_id))
    budget_rules = given if given is not None else current
    result.update(skipped=replay.skipped, entries=[_render(e) for e in entries[:MAX_ENTRIES_SHOWN]],
                  entries_total=len(entries), totals=_totals(entries),
                  budget=_budget(entries, budget_rules, replay, campaign_id))
    if written is not None:
        result["comparison"] = _compare(entries, written)
    return result


def _given_fact(fact: Any, campaign_id: str) -> Fact:
    if isinstance(fact, SignupFact):
        referrer_id = fact.referrer_id
        if referrer_id is None and fact.referral is not None:
            code = codes.resolve(fact.referral.code)  # a read: ops may try their real codes
            referrer_id = code.member_id if code is not None and code.campaign_id == campaign_id else None
        return Fact("signup", fact.occurred_at, fact.member_id, referrer_id=referrer_id)
    return Fact(fact.kind, fact.occurred_at, fact.member_id if fact.kind == "purchase" else "",
                order_id=fact.order_id, refund_id=getattr(fact, "refund_id", None), amount_fen=fact.amount_fen)


def _period(body: DryRunIn) -> tuple[datetime, datetime]:
    end = clock.parse(body.to) if body.to else clock.now()
    start = clock.parse(body.from_) if body.from_ else end - timedelta(days=DEFAULT_DAYS)
    if start >= end or end - start > timedelta(days=MAX_DAYS):
        raise Unprocessable(t("`from` must be before `to`, at most {max_days} days apart", max_days=MAX_DAYS),
                            code="invalid_period",
                            details={"from": clock.iso(start), "to": clock.iso(end), "max_days": MAX_DAYS})
    return start, end


def _counted(facts: list[Any]) -> dict[str, int]:
    counts = {"signup": 0, "purchase": 0, "refund": 0}
    for fact in facts:
        counts[fact.kind] += 1
    return counts


def _render(entry: Entry) -> dict[str, Any]:
    return {"member_id": entry.member_id, "entry_id": entry.entry_id, "kind": entry.rule, "unit": entry.unit,
            "amount": entry.amount, "reversed_amount": entry.reversed_amount, "standing": entry.standing,
            "status": entry.status, "capped_from": entry.capped_from, "order_id": entry.order_id,
            "referee_id": entry.referee_id, "campaign_id": entry.campaign_id, "created_at": entry.created_at,
            "available_at": entry.available_at}


def _totals(entries: list[Entry]) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {"points": {}, "coupon_fen": {}}
    for entry in entries:
        unit = totals["points" if entry.unit == "points" else "coupon_fen"]
        unit[entry.rule] = unit.get(entry.rule, 0) + entry.standing
    return totals


def _budget(entries: list[Entry], rules: Rules, replay: Replay, campaign_id: str) -> dict[str, Any]:
    """What the entries would use (what stands after reversals) against the campaign's budgets;
    `spent_before`: recorded usage before the period (0 for given facts)."""
    mine = [e for e in entries if e.campaign_id == campaign_id]
    points = sum(e.standing for e in mine if e.unit == "points")
    fen = sum(e.standing for e in mine if e.unit != "points")
    return {"points": {"used": points, "budget": rules.budget_points,
                       "spent_before": replay.before_points_spent.get(campaign_id, 0)},
            "coupon_fen": {"used": fen, "budget": rules.money_budget_fen,
                           "spent_before": replay.before_fen_spent.get(campaign_id, 0)}}


def _compare(entries: list[Entry], written: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """The replay against the entries the ledger holds for the period (what stands of each)."""
    ours = {(e.member_id, e.entry_id): e.standing for e in entries}
    theirs = {key: row["amount"] - row["reversed_amount"] for key, row in written.items()}
    differences = [{"member_id": member_id, "entry_id": entry_id, "dry_run": ours.get((member_id, entry_id)),
                    "recorded": theirs.get((member_id, entry_id))}
                   for member_id, entry_id in sorted(ours.keys() | theirs.keys())
                   if ours.get((member_id, entry_id)) != theirs.get((member_id, entry_id))]
    return {"equal": not differences, "recorded_entries": len(theirs),
            "recorded_points": sum(v for (m, e), v in theirs.items() if written[(m, e)]["unit"] == "points"),
            "differences": differences[:MAX_DIFFERENCES], "differences_total": len(differences)}
