"""Reconcile a member's lifecycle with the facts: stage, tier, own-purchase points, moments.

`reconcile` reads the facts (member, orders with refunds, conversions), computes what they say
with the pure functions (stages.py, tiers.py), pays own-purchase points through the ledger
(idempotent entries `purchase.<order>`, restated when the facts change the amount), and writes
the derived state with the moments and timeline events its changes cause in one transaction,
conditioned on the state it read (`lifecycle_rev`). A replay reads the new state and finds
nothing to change; two concurrent runs cannot both announce one change.
"""
from __future__ import annotations

import zlib
from datetime import date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..core import clock
from ..core.logs import get_logger
from ..facts.models import Order, Refund as RefundItem
from ..members.models import DownlineEntry, LifecycleDue, Member, member_pk
from ..program import service as program
from ..program.rules import ProgramRules
from ..referrals.models import Conversion
from ..rewards import ledger
from ..rewards.models import LedgerEntry
from ..rewards.rules import Award, reversal_target
from ..store.base import cancelled_by_condition, transaction
from . import moments as policy, stages, tiers
from .facts import MemberFacts, Purchase, Refund, plus_days
from .models import TimelineEvent
from .moments import Moment

log = get_logger("lifecycle")
DUE_SHARDS = 8
MAX_RETRIES = 6
BIRTHDAY_GIFT_DAYS = 7  # a sweep that runs late still gives the gift within a week


class IndexLag(Exception):
    """The orders index does not yet show what the member's counters include: try again."""


def due_keys(member_id: str, due_at: str) -> dict[str, str]:
    shard = zlib.crc32(member_id.encode()) % DUE_SHARDS
    return {"gsi2pk": f"LIFECYCLE#{shard}", "gsi2sk": f"{due_at}#{member_id}"}


# -- reading the facts -------------------------------------------------------------------------

def facts_of(member: Member) -> MemberFacts:
    """The member's facts from the orders index, checked against the member's counters (read
    consistently): an index copy behind them raises IndexLag rather than judge stale facts."""
    has_facts = int(member.orders or 0) or int(member.gmv_fen or 0)  # a refund may be counted first
    indexed = list(Order.by_gsi1.query(f"ORDERS#{member.member_id}")) if has_facts else []
    orders = [o for o in indexed if o.counted]
    if len(orders) < int(member.orders or 0):
        raise IndexLag(member.member_id)  # a counted purchase not yet in the index
    # Every refund the counter has seen was added to its order's refunded_fen before it was
    # counted: the index copies must show at least that much.
    counted_refunds = sum(int(o.amount_fen) for o in orders) - int(member.gmv_fen or 0)
    if sum(int(o.refunded_fen or 0) for o in indexed) < counted_refunds:
        raise IndexLag(member.member_id)
    purchases = []
    for order in orders:
        refunds: tuple[Refund, ...] = ()
        if int(order.refunded_fen or 0):
            refunds = tuple(Refund(r.occurred_at, int(r.amount_fen)) for r in
                            RefundItem.query(order.pk, RefundItem.sk.startswith("REFUND#"), consistent_read=True))
        purchases.append(Purchase(order.order_id, order.occurred_at, int(order.amount_fen), refunds,
                                  earns=not order.history))
    conversions: tuple[str, ...] = ()
    if int(member.referrals_converted or 0):
        conversions = tuple(c.converted_at for c in Conversion.query(
            member_pk(member.member_id), Conversion.sk.startswith("CONV#"), consistent_read=True))
    return MemberFacts(member.member_id, member.created_at, tuple(purchases), conversions, member.birthday)


# -- own-purchase points ------------------------------------------------------------------------

def _ledger_rules(hold_days: int, money_budget_fen: int | None = None) -> Any:
    """What the ledger needs to know of a program award: its hold, no campaign cap or points
    budget, and for a coupon the program's money budget."""
    return SimpleNamespace(monthly_cap_points=None, budget_points=None, money_budget_fen=money_budget_fen,
                           hold_days=hold_days)


def settle_purchase_points(member_id: str, facts: MemberFacts, state: tiers.TierState) -> None:
    """Make each purchase's entry say what the facts earn: amount at the tier held before it,
    reversed in proportion to its refunds."""
    if not facts.purchases:
        return
    existing = {e.order_id: e for e in LedgerEntry.query(
        member_pk(member_id), LedgerEntry.sk.startswith("LEDGER#purchase."), consistent_read=True)}
    for purchase in facts.purchases:
        gross = state.points.get(purchase.order_id, 0)
        target = reversal_target(gross, purchase.refunded_by("~"), purchase.amount_fen)
        entry = existing.get(purchase.order_id)
        in_force = program.rules_at(purchase.at)
        rules = _ledger_rules(in_force.return_window_days)
        if entry is None:
            if not gross or not purchase.earns:
                continue
            multiplier = in_force.multiplier_at(purchase.at)
            reason = "points for your purchase" + (f" (×{multiplier} points period)" if multiplier > 1 else "")
            entry = ledger.award(Award(member_id, "purchase", purchase.order_id, gross, reason,
                                       order_id=purchase.order_id), None, rules, at=purchase.at)
        if int(entry.amount) != gross:
            ledger.restate(member_id, entry.entry_id, gross, target, rules)
        elif int(entry.reversed_amount or 0) < target:
            ledger.reverse_to(member_id, entry.entry_id, target, entry=entry)


# -- what changed ------------------------------------------------------------------------------

def birthday_in(year: int, birthday: str) -> date:
    month, day = int(birthday[:2]), int(birthday[3:])
    if (month, day) == (2, 29) and not (year % 4 == 0 and (year % 100 or year % 400 == 0)):
        day = 28
    return date(year, month, day)


def _local_midnight(day: date, rules: ProgramRules) -> str:
    return clock.iso(datetime(day.year, day.month, day.day, tzinfo=rules.zone()))


def _birthday(member: Member, now: str, rules: ProgramRules) -> tuple[int | None, str | None]:
    """(the year whose gift is due now, or None; when the next one falls due)."""
    if not member.birthday:
        return None, None
    today = rules.local(clock.parse(now)).date()
    this_year = birthday_in(today.year, member.birthday)
    due = None
    if this_year <= today < this_year + timedelta(days=BIRTHDAY_GIFT_DAYS) and int(member.birthday_year or 0) < today.year:
        due = today.year
    upcoming = this_year if today < this_year else birthday_in(today.year + 1, member.birthday)
    return due, _local_midnight(upcoming, rules)


def _nudge(facts: MemberFacts, member: Member, now: str, rules: ProgramRules) -> tuple[str | None, str | None]:
    """(the first order a second-purchase nudge is due for now, or None; when it falls due)."""
    standing = facts.standing_at(now)
    if len(standing) != 1 or member.nudged_for == standing[0].order_id:
        return None, None
    first = standing[0]
    due_at = plus_days(first.at, rules.second_purchase_nudge_days)
    if due_at > now:
        return None, due_at
    return (first.order_id if now < plus_days(first.at, rules.stages.at_risk_days) else None), None


def plan(member: Member, facts: MemberFacts, now: str) -> dict[str, Any]:
    """The derived state the facts give at `now`, with the moments and timeline events its
    changes from the stored state cause. Pure but for the program versions (cached)."""
    rules = program.rules_at(now)
    stage, stage_since = stages.stage_since(facts, now, program.rules_at)
    state = tiers.tier_state(facts, now, program.rules_at)
    moments: list[Moment] = []
    timeline: list[TimelineEvent] = []
    gifts: list[Award] = []
    fields: dict[str, Any] = {"stage": stage, "stage_since": stage_since, "tier": state.tier,
                              "tier_since": state.since, "tier_warning": state.warning}
    standing = facts.standing_at(now)
    last = standing[-1] if standing else None
    if member.stage != stage:
        timeline.append(TimelineEvent.new(member.member_id, "stage", stage_since, now,
                                          {"from": member.stage, "to": stage}))
        if member.stage == "new" and stage in ("active", "loyal", "advocate"):
            moments.append(Moment("first_purchase", standing[0].order_id, {"order_id": standing[0].order_id}))
        if stage == "at_risk" and last:
            moments.append(Moment("at_risk", last.at, {"last_purchase_at": last.at}))
        if stage == "churned" and last:
            if rules.win_back_coupon_fen:
                gifts.append(Award(member.member_id, "win_back", last.at, rules.win_back_coupon_fen,
                                   "a coupon to welcome you back", unit="coupon_fen"))
            moments.append(Moment("win_back", last.at, {"last_purchase_at": last.at,
                                                        "coupon_fen": rules.win_back_coupon_fen}))
    if member.tier != state.tier:
        up = rules.rank(state.tier) > rules.rank(member.tier)
        changed_at, reason = next(((c[0], c[1]) for c in reversed(state.changes) if c[3] == state.tier),
                                  (state.since, "program"))
        timeline.append(TimelineEvent.new(member.member_id, "tier", changed_at, now,
                                          {"from": member.tier, "to": state.tier, "reason": reason}))
        moments.append(Moment("tier_up" if up else "tier_down", f"{state.tier}.{state.since}",
                              {"from": member.tier, "to": state.tier,
                               "perks": rules.tier(state.tier).perks}))
    if state.warning and member.tier_warning != state.warning:
        figures = tiers.figures_at(facts, state.points, now)
        moments.append(Moment("tier_down", f"warning.{state.warning}",
                              {"warning": True, "tier": state.tier, "downgrade_at": state.downgrade_at,
                               "would_be": rules.qualified(*figures).name,
                               "needs": tiers.needs(rules.tier(state.tier), *figures)}))
    nudge_for, nudge_due = _nudge(facts, member, now, rules)
    if nudge_for:
        fields["nudged_for"] = nudge_for
        moments.append(Moment("second_purchase_nudge", nudge_for, {"first_order_id": nudge_for}))
    birthday_year, birthday_due = _birthday(member, now, rules)
    if birthday_year:
        fields["birthday_year"] = birthday_year
        if rules.birthday_points:
            gifts.append(Award(member.member_id, "birthday", str(birthday_year), rules.birthday_points,
                               "happy birthday"))
        moments.append(Moment("birthday", str(birthday_year), {"points": rules.birthday_points}))
    candidates = [stages.next_stage_change(facts, now, rules), tiers.next_tier_change(state, now, rules),
                  nudge_due, birthday_due]
    later = [c for c in candidates if c and c > now]
    fields["lifecycle_due_at"] = min(later) if later else None
    return {"fields": fields, "moments": moments, "timeline": timeline, "gifts": gifts, "state": state,
            "rules": rules}


def only_history(facts: MemberFacts) -> bool:
    """A member whose purchases are all imported history (imports without `apply_rewards`)."""
    return bool(facts.purchases) and not any(p.earns for p in facts.purchases)


def latest_fact(facts: MemberFacts) -> str:
    """A fact may be dated a little ahead of this clock (the brand's clock skew, up to
    FACT_MAX_FUTURE_SECONDS): judged at its own time, it is counted now, not left for later."""
    times = [p.at for p in facts.purchases] + [r.at for p in facts.purchases for r in p.refunds]
    return max(times, default="")


def _due_kept(member: Member, due: str | None, now: str) -> str | None:
    """A fact that moves the next change later (a purchase postpones at-risk) keeps the stored,
    earlier due time: the sweep then finds nothing to change there but the due time, and moves
    it on. A repeat purchase that changes no stage or tier so writes nothing (the member item
    and its due entry were ~8 WRU per purchase); an earlier due time is written at once."""
    stored = member.lifecycle_due_at
    if stored and stored > now and (due is None or due > stored):
        return stored
    return due


def _changed(member: Member, fields: dict[str, Any]) -> bool:
    """Whether the derived state differs from the stored one (a member never reconciled holds
    the defaults: new, the base tier, both since sign-up)."""
    unset = {"stage_since": member.created_at, "tier_since": member.created_at}
    return any((getattr(member, name) or unset.get(name)) != value for name, value in fields.items())


# -- the write --------------------------------------------------------------------------------

def reconcile(member_id: str, now: str | None = None, new_facts: bool = True) -> dict[str, Any] | None:
    """Bring one member's lifecycle up to the facts. Returns the plan it wrote (None: nothing).
    `new_facts` False (the clock sweep): no purchase or refund came, so the points stand."""
    for _ in range(MAX_RETRIES):
        now_at = now or clock.now_iso()
        member = Member.find(member_id, consistent=True)
        if member is None:
            return None
        facts = facts_of(member)
        now_at = max(now_at, latest_fact(facts))
        decided = plan(member, facts, now_at)
        if only_history(facts):  # the imported past sets stage and tier quietly: no messages, no gifts
            decided["moments"], decided["gifts"] = [], []
        if new_facts:
            decided["fields"]["lifecycle_due_at"] = _due_kept(member, decided["fields"]["lifecycle_due_at"], now_at)
            settle_purchase_points(member_id, facts, decided["state"])
        if not decided["moments"] and not decided["timeline"] and not _changed(member, decided["fields"]):
            return None
        _give(decided["gifts"], decided["rules"])
        notes = policy.notes_for(member, decided["moments"], now_at, decided["rules"])
        try:
            _write(member, decided["fields"], notes, decided["timeline"])
            return decided
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
    raise RuntimeError(f"lifecycle of {member_id} kept changing; the stream will redeliver")


def _give(gifts: list[Award], rules: ProgramRules) -> None:
    """Birthday points and win-back coupons: idempotent entries, before the state that names them."""
    for gift in gifts:
        coupon = gift.unit == "coupon_fen"
        ledger.award(gift, "program" if coupon else None,
                     _ledger_rules(0, rules.win_back_budget_fen if coupon else None))


def _write(member: Member, fields: dict[str, Any], notes: list[Any], timeline: list[TimelineEvent]) -> None:
    rev = int(member.lifecycle_rev or 0)
    actions: list[Any] = [Member.lifecycle_rev.add(1)]
    for name, value in fields.items():
        attribute = getattr(Member, name)
        actions.append(attribute.set(value) if value is not None else attribute.remove())
    due = fields["lifecycle_due_at"]
    legacy = member.gsi2pk is not None  # due keys on the member item itself (written before LifecycleDue)
    if legacy:
        actions += [Member.gsi2pk.remove(), Member.gsi2sk.remove()]
    # a member bound before DownlineEntry existed carries its downline keys: move them on this write
    downline = DownlineEntry(*DownlineEntry.key(member.member_id), member_id=member.member_id,
                             referrer_id=member.gsi1pk[len("REF#"):], gsi1pk=member.gsi1pk,
                             gsi1sk=member.gsi1sk) if (member.gsi1pk or "").startswith("REF#") else None
    if downline is not None:
        actions += [Member.gsi1pk.remove(), Member.gsi1sk.remove()]
    condition = Member.lifecycle_rev == rev
    if rev == 0:
        condition = Member.lifecycle_rev.does_not_exist() | condition
    with transaction() as tx:
        tx.update(Member(*Member.key(member.member_id)), actions=actions, condition=Member.pk.exists() & condition)
        # the sweep's index entry moves only with the due time: the rev condition keeps the two in step
        if due and (legacy or due != member.lifecycle_due_at):
            tx.save(LifecycleDue(*LifecycleDue.key(member.member_id), member_id=member.member_id,
                                 **due_keys(member.member_id, due)))
        elif not due and member.lifecycle_due_at:
            tx.delete(LifecycleDue(*LifecycleDue.key(member.member_id)))
        for item in [*notes, *timeline, *([downline] if downline else [])]:
            tx.save(item)


def standing(member: Member, now: str | None = None) -> dict[str, Any]:
    """The tier view of the profile: name, since, and what the next tier needs."""
    now = now or clock.now_iso()
    rules = program.rules_at(now)
    try:
        facts = facts_of(member)
    except IndexLag:
        facts = MemberFacts(member.member_id, member.created_at)
    state = tiers.tier_state(facts, now, program.rules_at)
    name = member.tier or rules.base_tier.name
    return {"name": name, "since": member.tier_since or member.created_at, "perks": rules.tier(name).perks,
            "next": tiers.progress(name, facts, state.points, now, rules),
            "downgrade": ({"at": state.downgrade_at, "review": member.tier_warning} if member.tier_warning else None)}
