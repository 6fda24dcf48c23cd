"""The ledger: every change to a member's points is an entry, written in one transaction with
the balance it moves, so for every member balance = sum of entries by bucket.

- award: entry put only if absent (deterministic id) + pending balance + monthly cap + campaign
  budget, the last two as conditional ADDs that can never pass their limit, even concurrently.
- release: pending → available once the hold (return window) has passed.
- reverse_to: a refund takes back a proportional share; from the pending balance, or from the
  available one as far as it goes (the rest is recorded as `shortfall`: points already spent).
- redeem / adjust: spend or change available points; never below zero.

Every credit to the available balance joins its expiry lot, and every debit is owed to the lots
(`lot_debt`), in the same transaction as the balance (points/lots.py).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from ..campaigns.rules import Rules
from ..core import clock
from ..core.errors import Conflict
from ..members.models import Member
from ..fraud.models import FraudFlag
from ..i18n import t
from ..points import lots
from ..store.base import cancelled_by_condition, condition_failed, transaction
from . import labels
from . import budget
from .models import CapUsage, LedgerEntry
from .rules import ADVOCATE_RULES, Award, bounded_award, bounded_increase, first_status

MAX_RETRIES = 8


def find(member_id: str, entry_id: str) -> LedgerEntry | None:
    try:
        return LedgerEntry.get(*LedgerEntry.key(member_id, entry_id), consistent_read=True)
    except LedgerEntry.DoesNotExist:
        return None


def find_many(keys: list[tuple[str, str]]) -> dict[tuple[str, str], LedgerEntry]:
    """(member, entry id) → the entry, for those that exist (one strongly consistent BatchGetItem)."""
    if not keys:
        return {}
    found = LedgerEntry.batch_get([LedgerEntry.key(m, e) for m, e in keys], consistent_read=True)
    return {(entry.member_id, entry.entry_id): entry for entry in found}


def _month(at: str) -> str:
    return at[:7]


class Stale(Exception):
    """The fact an award was computed from changed before it was written: compute it again."""


def award(grant: Award, campaign_id: str, rules: Rules, held: bool = False, at: str | None = None,
          guard: Any = None) -> LedgerEntry:
    """Pay `grant` once. Returns the entry (the existing one on a replay).

    The first attempt reads nothing: it writes the grant as limited by the cap and budget
    themselves and lets the transaction's conditions (entry absent, cap and budget not passed)
    decide. Only when they refuse it — a replay, or a cap or budget nearly used up — are the
    entry and the usage read, and the award retried with what is left. Both paths pay the same
    amount: min(grant, cap - used, budget - spent) is the grant's own bound whenever it fits.

    `guard`, (model, key, condition), is checked in the same transaction: when it fails the
    award raises `Stale` (the rate it was computed from changed meanwhile)."""
    entry = _award(grant, campaign_id, rules, held, at, guard)
    if grant.referee_id:
        follow_referral_hold(entry)
    return entry


def _award(grant: Award, campaign_id: str, rules: Rules, held: bool, at: str | None, guard: Any) -> LedgerEntry:
    at = at or clock.now_iso()
    try:
        return _award_once(grant, campaign_id, rules, held, at, read_usage=False, guard=guard)
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
    except _BudgetMoved:
        pass
    for _ in range(MAX_RETRIES):
        existing = find(grant.member_id, grant.entry_id)
        if existing is not None:
            return existing
        if guard is not None and not _guard_holds(guard):
            raise Stale(grant.entry_id)
        try:
            return _award_once(grant, campaign_id, rules, held, at, read_usage=True, guard=guard)
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
        except _BudgetMoved:
            continue
    raise RuntimeError(f"could not award {grant.entry_id} to {grant.member_id}: kept conflicting")


def _guard_holds(guard: Any) -> bool:
    model, key, expected = guard
    try:
        item = model.get(*key, consistent_read=True)
    except model.DoesNotExist:
        return False
    return all(getattr(item, name) == value for name, value in expected.items())


def _guard_condition(guard: Any) -> Any:
    model, _, expected = guard
    condition = model.pk.exists()
    for name, value in expected.items():
        condition &= getattr(model, name) == value
    return condition


def _award_once(grant: Award, campaign_id: str, rules: Rules, held: bool, at: str, read_usage: bool,
                guard: Any = None) -> LedgerEntry:
    points = grant.unit == "points"
    cap = None
    cap_used = 0
    if points and grant.rule in ADVOCATE_RULES and rules.monthly_cap_points is not None:
        cap = CapUsage(*CapUsage.key(grant.member_id, campaign_id, _month(at)))
        cap_used = _read(CapUsage, cap, "points") if read_usage else 0
    # the budget that bounds this award: points, or a coupon's money (sharded, budget.py), the
    # campaign's limit now (cached; `budget.ready` reads it fresh before it re-cuts the shards)
    attribute = budget.POINTS if points else budget.FEN
    limit = budget.in_force(campaign_id, attribute, rules.budget_points if points else rules.money_budget_fen)
    spent = None
    if read_usage:
        limit, spent = budget.ready(campaign_id, attribute, limit)
    rules = _with_budget(rules, attribute, limit.amount if limit is not None else None)
    used = spent.total if spent is not None else 0
    amount = bounded_award(grant, rules, cap_used, used if points else 0, 0 if points else used)
    available_at = clock.iso(clock.parse(at) + timedelta(days=rules.hold_days))
    entry = LedgerEntry(*LedgerEntry.key(grant.member_id, grant.entry_id), entry_id=grant.entry_id,
                        member_id=grant.member_id, rule=grant.rule, unit=grant.unit, amount=amount,
                        status=first_status(grant.unit), bucket="pending" if points else None,
                        reason=grant.reason, source_id=grant.source_id, order_id=grant.order_id,
                        referee_id=grant.referee_id, campaign_id=campaign_id, created_at=at,
                        available_at=available_at if points else at,
                        capped_from=grant.amount if amount != grant.amount else None,
                        lsi1sk=f"LEDGER#{at}#{grant.entry_id}")
    if points and held and grant.referee_id:
        entry.hold = "fraud_review"
    elif points:
        entry.gsi2pk, entry.gsi2sk = LedgerEntry.release_keys(grant.member_id, grant.entry_id, available_at).values()
    with transaction() as tx:
        tx.save(entry, condition=LedgerEntry.pk.does_not_exist())
        if guard is not None:
            tx.condition_check(guard[0], *guard[1], condition=_guard_condition(guard))
        if points and amount:
            tx.update(Member(*Member.key(grant.member_id)), actions=[Member.points_pending.add(amount)],
                      condition=Member.pk.exists())
            if cap is not None:
                tx.update(cap, actions=[CapUsage.points.add(amount), CapUsage.expires_at.set(clock.epoch() + 400 * 86400)],
                          condition=CapUsage.points.does_not_exist()
                          | (CapUsage.points <= rules.monthly_cap_points - amount))
        if limit is not None and amount and not budget.charge(tx, campaign_id, grant.entry_id, amount, attribute,
                                                              limit, spent):
            raise _BudgetMoved()  # the shards as read cannot hold what the total allows: read again
        if limit is None and amount and campaign_id:  # counted all the same: a budget set later counts it
            budget.adjust(tx, campaign_id, grant.entry_id, amount, attribute)
    return entry


def _with_budget(rules: Any, attribute: str, limit: int | None) -> Any:
    """The rules with the budget in force in place of the one they were written with."""
    name = "budget_points" if attribute == budget.POINTS else "money_budget_fen"
    return rules if getattr(rules, name) == limit else _Overridden(rules, {name: limit})


class _Overridden:
    """Rules read through, a few values replaced (`money_budget_fen` is a derived property)."""

    def __init__(self, rules: Any, values: dict[str, Any]) -> None:
        self._rules, self._values = rules, values

    def __getattr__(self, name: str) -> Any:
        return self._values[name] if name in self._values else getattr(self._rules, name)


class _BudgetMoved(Exception):
    """Between reading the shards and placing the award, nothing fits any more (a race): the
    award is computed again from fresh reads, like a refused condition."""


def _read(model: Any, item: Any, attribute: str) -> int:
    try:
        return int(getattr(model.get(item.pk, item.sk, consistent_read=True), attribute) or 0)
    except model.DoesNotExist:
        return 0


def _tied(entry: LedgerEntry) -> Any:
    """The entry is still tied to the referral it was read with (a milestone moves between
    friends' conversions): the flag checked, or held for, is that referral's."""
    return (LedgerEntry.referee_id == entry.referee_id) if entry.referee_id else LedgerEntry.referee_id.does_not_exist()


def release(entry: LedgerEntry) -> bool:
    """Move a matured, unheld pending entry to the available balance. False if it was not due."""
    if entry.status != "pending" or entry.hold or entry.bucket != "pending":
        return False
    standing = entry.standing
    with transaction() as tx:
        tx.update(entry, actions=[LedgerEntry.status.set("available"), LedgerEntry.bucket.set("available"),
                                  LedgerEntry.gsi2pk.remove(), LedgerEntry.gsi2sk.remove()],
                  condition=(LedgerEntry.status == "pending") & LedgerEntry.hold.does_not_exist()
                  & (LedgerEntry.reversed_amount == int(entry.reversed_amount or 0)) & _tied(entry))
        if entry.referee_id:  # a flag opened after the award, before its hold reached the entry
            tx.condition_check(FraudFlag, *FraudFlag.key(entry.referee_id),
                               condition=FraudFlag.status.does_not_exist() | (FraudFlag.status != "open"))
        if standing:
            tx.update(Member(*Member.key(entry.member_id)),
                      actions=[Member.points_pending.add(-standing), Member.points_available.add(standing)])
            lots.credit(tx, entry.member_id, standing, clock.now_iso())
    return True


def reverse_to(member_id: str, entry_id: str, target: int, entry: LedgerEntry | None = None,
               voided: str | None = None) -> None:
    """Make `target` of the entry's amount stand reversed (a cumulative, idempotent target).
    `entry`, when the caller has just read it consistently, saves the first read. `voided`
    (a rejected fraud flag) marks the entry so that no later re-ranking restates it."""
    for attempt in range(MAX_RETRIES):
        if attempt or entry is None:
            entry = find(member_id, entry_id)
        if entry is None or int(entry.reversed_amount or 0) >= target:
            if entry is not None and voided and not entry.voided:
                entry.update(actions=[LedgerEntry.voided.set(voided)])
            return
        try:
            if entry.unit != "points":
                _void_money(entry)
            else:
                _reverse_once(entry, min(target, int(entry.amount)), voided)
            return
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
    raise RuntimeError(f"could not reverse {entry_id} of {member_id}: kept conflicting")


def _void_money(entry: LedgerEntry) -> None:
    """A coupon (money, not points) is taken back whole; its budget is returned."""
    with transaction() as tx:
        tx.update(entry, actions=[LedgerEntry.reversed_amount.set(int(entry.amount)), LedgerEntry.status.set("reversed"),
                                  LedgerEntry.voided.set("fraud_rejected")],
                  condition=LedgerEntry.reversed_amount == int(entry.reversed_amount or 0))
        if entry.campaign_id:
            budget.adjust(tx, entry.campaign_id, entry.entry_id, -int(entry.amount), budget.FEN)


def _reverse_once(entry: LedgerEntry, target: int, voided: str | None = None) -> None:
    delta = target - int(entry.reversed_amount or 0)
    member = Member(*Member.key(entry.member_id))
    member_actions: list[Any] = []
    member_condition = None
    take = delta
    if entry.bucket == "pending":
        member_actions.append(Member.points_pending.add(-delta))
    else:  # only the available balance can be short (points already spent): read how much is left
        member = Member.get(*Member.key(entry.member_id), consistent_read=True)
        take = min(delta, int(member.points_available))
        member_actions += [Member.points_available.add(-take), lots.debit(take)]
        member_condition = Member.points_available >= take
    entry_actions = [LedgerEntry.reversed_amount.set(target)]
    if voided:
        entry_actions.append(LedgerEntry.voided.set(voided))
    if take < delta:
        entry_actions.append(LedgerEntry.shortfall.set(int(entry.shortfall or 0) + delta - take))
    if target >= int(entry.amount):
        entry_actions += [LedgerEntry.status.set("reversed"), LedgerEntry.gsi2pk.remove(), LedgerEntry.gsi2sk.remove()]
    with transaction() as tx:
        tx.update(entry, actions=entry_actions,
                  condition=(LedgerEntry.reversed_amount == int(entry.reversed_amount or 0))
                  & (LedgerEntry.bucket == entry.bucket))
        if take:
            tx.update(member, actions=member_actions, condition=member_condition)
            if entry.campaign_id:
                budget.adjust(tx, entry.campaign_id, entry.entry_id, -take, budget.POINTS)


def set_hold(entry: LedgerEntry, held: bool) -> None:
    """Hold a pending entry while its referral's flag is open (it leaves the release index), or
    clear the hold (approve): the entry becomes releasable on its own date. An entry already
    available cannot be held; a rejection reverses it instead.

    Only while the entry is still tied to the referral it was read with: a milestone re-tied to
    another friend's conversion meanwhile follows that referral's hold (the re-tie sets it), and
    a flag's handler that read it a moment earlier must not hold or release it for the old one."""
    tied = _tied(entry)
    if held:  # every entry not yet released, reversed ones too (whichever handler ran first)
        if entry.hold or entry.bucket != "pending":
            return
        actions = [LedgerEntry.hold.set("fraud_review"), LedgerEntry.gsi2pk.remove(), LedgerEntry.gsi2sk.remove()]
        condition = (LedgerEntry.bucket == "pending") & LedgerEntry.hold.does_not_exist() & tied
    else:
        if not entry.hold:
            return
        keys = LedgerEntry.release_keys(entry.member_id, entry.entry_id, entry.available_at or clock.now_iso())
        actions = [LedgerEntry.hold.remove()]
        if entry.status == "pending":
            actions += [LedgerEntry.gsi2pk.set(keys["gsi2pk"]), LedgerEntry.gsi2sk.set(keys["gsi2sk"])]
        condition = LedgerEntry.hold.exists() & tied
    try:
        entry.update(actions=actions, condition=condition)
    except UpdateError as exc:
        if not condition_failed(exc):  # already so, no longer pending, or re-tied: nothing of ours to change
            raise


def untie(entry: LedgerEntry) -> None:
    """A milestone taken back (fewer conversions than it needs) is tied to no referral: there is
    no m-th conversion. Which friend it was tied to last depends on the order the handlers ran
    in, so it keeps neither that tie nor that friend's hold; a later flag on the friend leaves it
    alone, and reaching the milestone again ties it anew (`restate`). Only while it still stands
    reversed with the tie as read: a restore meanwhile has tied it already."""
    if not entry.referee_id and not entry.hold:
        return
    tied = _tied(entry)
    try:
        # (gsi1: the referral index keys an older deployment wrote on entries, dropped with the tie)
        entry.update(actions=[LedgerEntry.referee_id.remove(), LedgerEntry.gsi1pk.remove(), LedgerEntry.gsi1sk.remove(),
                              LedgerEntry.hold.remove()],
                     condition=(LedgerEntry.status == "reversed") & tied)
    except UpdateError as exc:
        if not condition_failed(exc):  # standing again, or re-tied meanwhile: not ours to untie
            raise


def follow_referral_hold(entry: LedgerEntry | None) -> None:
    """After writing an entry tied to a referral, make its hold match the referral's hold as it
    stands now. The caller read that hold before writing; a flag opened or resolved in between
    has had its handler run already (before this entry existed), so without this re-read the
    entry would keep the stale state for good. Read after write: either this read sees the new
    state, or the flag changes later and its own handler finds this entry. A referral rejected in
    between voids the entry as the rejection would have (milestones follow the conversion count)."""
    if entry is None or not entry.referee_id or entry.voided:
        return
    try:
        referee = Member.get(*Member.key(entry.referee_id), consistent_read=True)
    except Member.DoesNotExist:
        return
    if referee.referral_status == "void" and entry.rule != "milestone":
        reverse_to(entry.member_id, entry.entry_id, int(entry.amount), entry=entry, voided="fraud_rejected")
        entry = find(entry.member_id, entry.entry_id)
    if entry is None or entry.unit != "points" or entry.bucket != "pending":
        return
    held = referee.referral_hold == "fraud_review"
    if held != bool(entry.hold):
        set_hold(entry, held)


def restate(member_id: str, entry_id: str, amount: int, reversed_amount: int, rules: Rules,
            referee_id: str | None = None, held: bool = False, entry: LedgerEntry | None = None,
            guard: Any = None) -> LedgerEntry | None:
    """Make an entry say what the facts now earn: `amount`, of which `reversed_amount` stands
    reversed (a re-ranked commission, a milestone lost or reached again). The balance moves by
    the difference in the same transaction; an increase stays inside the cap and the budget. An
    entry voided by a fraud rejection is never restated. Returns the entry as it stands.
    `entry`: just read consistently (saves the first read); `guard`: as for `award` (raises
    `Stale` when the state the amount was computed from changed)."""
    for attempt in range(MAX_RETRIES):
        if attempt or entry is None:
            entry = find(member_id, entry_id)
        if entry is None or entry.unit != "points" or entry.voided or entry.bucket is None:
            return entry
        old_net = int(entry.amount) - int(entry.reversed_amount or 0)
        delta = (amount - reversed_amount) - old_net
        retie = referee_id is not None and referee_id != entry.referee_id
        # Same net is not same entry: a fully reversed purchase re-tiered 30 → 60 reads (60, 60)
        if (amount, reversed_amount) == (int(entry.amount), int(entry.reversed_amount or 0)) and not retie:
            return entry
        try:
            _restate_once(entry, amount, reversed_amount, delta, rules, referee_id if retie else None, held, guard)
        except _BudgetMoved:
            continue
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
            if guard is not None and not _guard_holds(guard):
                raise Stale(entry_id) from None
            continue
        entry = find(member_id, entry_id)
        follow_referral_hold(entry)
        return entry
    raise RuntimeError(f"could not restate {entry_id} of {member_id}: kept conflicting")


def _restate_once(entry: LedgerEntry, amount: int, reversed_amount: int, delta: int, rules: Rules,
                  referee_id: str | None, held: bool, guard: Any = None) -> None:
    campaign_id = entry.campaign_id
    cap = spent = limit = None
    if delta > 0:  # the increase is an award: bounded like one
        cap_used = 0
        if entry.rule in ADVOCATE_RULES and rules.monthly_cap_points is not None:
            cap = CapUsage(*CapUsage.key(entry.member_id, campaign_id, _month(entry.created_at)))
            cap_used = _read(CapUsage, cap, "points")
        if campaign_id:
            limit, spent = budget.ready(campaign_id, budget.POINTS,
                                        budget.in_force(campaign_id, budget.POINTS, rules.budget_points))
            rules = _with_budget(rules, budget.POINTS, limit.amount if limit is not None else None)
        allowed = bounded_increase(delta, entry.rule, rules, cap_used, spent.total if spent else 0)
        if allowed < delta:
            amount -= delta - allowed
            delta = allowed
    member = Member(*Member.key(entry.member_id))
    member_condition = None
    moved = delta
    shortfall = int(entry.shortfall or 0)
    if entry.bucket == "pending":
        member_actions = [Member.points_pending.add(delta)]
    elif delta >= 0:
        member_actions = [Member.points_available.add(delta)]
    else:  # taking back available points: only what is left (the rest is a shortfall, as on a refund)
        current = Member.get(*Member.key(entry.member_id), consistent_read=True)
        moved = -min(-delta, int(current.points_available))
        shortfall += moved - delta
        member_actions = [Member.points_available.add(moved), lots.debit(-moved)]
        member_condition = Member.points_available >= -moved
    net = amount - reversed_amount
    hold_now = held and entry.bucket == "pending" and not entry.hold
    actions: list[Any] = [LedgerEntry.amount.set(amount), LedgerEntry.reversed_amount.set(reversed_amount),
                          LedgerEntry.shortfall.set(shortfall),
                          LedgerEntry.status.set(entry.bucket if net > 0 else "reversed")]
    if net > 0 and entry.bucket == "pending" and not (entry.hold or hold_now):
        keys = LedgerEntry.release_keys(entry.member_id, entry.entry_id, entry.available_at or clock.now_iso())
        actions += [LedgerEntry.gsi2pk.set(keys["gsi2pk"]), LedgerEntry.gsi2sk.set(keys["gsi2sk"])]
    else:  # reversed, held, or already available: not in the release index
        actions += [LedgerEntry.gsi2pk.remove(), LedgerEntry.gsi2sk.remove()]
    if hold_now:
        actions.append(LedgerEntry.hold.set("fraud_review"))
    if referee_id is not None:
        actions.append(LedgerEntry.referee_id.set(referee_id))
    # Tied as read: a milestone untied meanwhile (`untie`) is restored with a tie, on a retry
    tied = _tied(entry)
    with transaction() as tx:
        tx.update(entry, actions=actions,
                  condition=(LedgerEntry.amount == int(entry.amount))
                  & (LedgerEntry.reversed_amount == int(entry.reversed_amount or 0))
                  & (LedgerEntry.bucket == entry.bucket) & tied)
        if guard is not None:
            tx.condition_check(guard[0], *guard[1], condition=_guard_condition(guard))
        if moved:
            tx.update(member, actions=member_actions, condition=member_condition)
            if entry.bucket == "available" and moved > 0:
                lots.credit(tx, entry.member_id, moved, clock.now_iso())
            if spent is not None and moved > 0:  # an increase inside the budget, each shard conditioned
                if not budget.charge(tx, campaign_id, entry.entry_id, moved, budget.POINTS, limit, spent):
                    raise _BudgetMoved()
            elif campaign_id:
                budget.adjust(tx, campaign_id, entry.entry_id, moved, budget.POINTS)
            if cap is not None and moved > 0:
                tx.update(cap, actions=[CapUsage.points.add(moved)],
                          condition=CapUsage.points.does_not_exist()
                          | (CapUsage.points <= rules.monthly_cap_points - moved))


class ExtraConditionFailed(Exception):
    """An `extra_updates` condition of `spend` refused the transaction (e.g. stock gone)."""


def spend(member_id: str, entry_id: str, points: int, reason: str, rule: str,
          extra_items: list[Any] | None = None, status: str = "redeemed",
          extra_updates: list[tuple[Any, list[Any], Any]] | None = None) -> LedgerEntry:
    """Change the available balance by `points` (negative: spend) with its entry, atomically;
    the balance never goes below zero. Used by redemptions and ops adjustments. `extra_updates`,
    (item, actions, condition) each, join the same transaction (a catalogue item's stock); when
    one of their conditions refuses it, `ExtraConditionFailed` is raised and nothing is written."""
    at = clock.now_iso()
    entry = LedgerEntry(*LedgerEntry.key(member_id, entry_id), entry_id=entry_id, member_id=member_id, rule=rule,
                        amount=points, status=status, bucket="available", reason=reason, source_id=entry_id,
                        created_at=at, available_at=at, lsi1sk=f"LEDGER#{at}#{entry_id}")
    try:
        with transaction() as tx:
            tx.save(entry, condition=LedgerEntry.pk.does_not_exist())
            tx.update(Member(*Member.key(member_id)),
                      actions=[Member.points_available.add(points)] + ([lots.debit(-points)] if points < 0 else []),
                      condition=Member.pk.exists() & (Member.points_available >= max(0, -points)))
            if points > 0:
                lots.credit(tx, member_id, points, at)
            for item in extra_items or []:
                tx.save(item)
            for item, actions, condition in extra_updates or []:
                tx.update(item, actions=actions, condition=condition)
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
        if extra_updates and _refused_by_extra(exc, first_extra=2 + len(extra_items or []) + (points > 0)):
            raise ExtraConditionFailed(entry_id) from None
        if find(member_id, entry_id) is not None:
            raise Conflict(t("this operation was already applied"), code="already_applied") from None
        raise Conflict(t("not enough available points"), code="insufficient_points") from None
    return entry


def _refused_by_extra(exc: Exception, first_extra: int) -> bool:
    """Whether a condition at or after index `first_extra` cancelled the transaction (PynamoDB
    sends puts before updates, so spend's extra updates come last)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and getattr(r, "code", None) == "ConditionalCheckFailed" for r in reasons[first_extra:])


def render(entry: LedgerEntry) -> dict[str, Any]:
    return {"entry_id": entry.entry_id, "kind": entry.rule, "label": labels.label(entry.rule), "unit": entry.unit,
            "amount": int(entry.amount),
            "reversed_amount": int(entry.reversed_amount or 0), "status": entry.status, "reason": entry.reason,
            "source_id": entry.source_id, "order_id": entry.order_id, "created_at": entry.created_at,
            "available_at": entry.available_at, "held": bool(entry.hold)}


def list_for(member_id: str, page_query: Any) -> dict[str, Any]:
    from ..core.pagination import page

    return page(LedgerEntry.by_lsi1.query, page_query, f"ledger:{member_id}", render,
                hash_key=Member.key(member_id)[0], range_key_condition=LedgerEntry.lsi1sk.startswith("LEDGER#"),
                scan_index_forward=False)
