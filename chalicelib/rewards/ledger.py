"""The ledger: every change to a member's points is an entry, written in one transaction with
the balance it moves, so for every member balance = sum of entries by bucket.

- award: entry put only if absent (deterministic id) + pending balance + monthly cap + campaign
  budget, the last two as conditional ADDs that can never pass their limit, even concurrently.
- release: pending → available once the hold (return window) has passed.
- reverse_to: a refund takes back a proportional share; from the pending balance, or from the
  available one as far as it goes (the rest is recorded as `shortfall`: points already spent).
- redeem / adjust: spend or change available points; never below zero.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..campaigns.rules import Rules
from ..core import clock
from ..core.errors import Conflict
from ..members.models import Member
from ..store.base import cancelled_by_condition, transaction
from .models import BudgetUsage, CapUsage, LedgerEntry
from .rules import ADVOCATE_RULES, Award, capped

MAX_RETRIES = 8


def find(member_id: str, entry_id: str) -> LedgerEntry | None:
    try:
        return LedgerEntry.get(*LedgerEntry.key(member_id, entry_id), consistent_read=True)
    except LedgerEntry.DoesNotExist:
        return None


def _month(at: str) -> str:
    return at[:7]


def award(grant: Award, campaign_id: str, rules: Rules, held: bool = False, at: str | None = None) -> LedgerEntry:
    """Pay `grant` once. Returns the entry (the existing one on a replay).

    The first attempt reads nothing: it writes the grant as limited by the cap and budget
    themselves and lets the transaction's conditions (entry absent, cap and budget not passed)
    decide. Only when they refuse it — a replay, or a cap or budget nearly used up — are the
    entry and the usage read, and the award retried with what is left. Both paths pay the same
    amount: min(grant, cap - used, budget - spent) is the grant's own bound whenever it fits."""
    at = at or clock.now_iso()
    try:
        return _award_once(grant, campaign_id, rules, held, at, read_usage=False)
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
    for _ in range(MAX_RETRIES):
        existing = find(grant.member_id, grant.entry_id)
        if existing is not None:
            return existing
        try:
            return _award_once(grant, campaign_id, rules, held, at, read_usage=True)
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
    raise RuntimeError(f"could not award {grant.entry_id} to {grant.member_id}: kept conflicting")


def _award_once(grant: Award, campaign_id: str, rules: Rules, held: bool, at: str, read_usage: bool) -> LedgerEntry:
    points = grant.unit == "points"
    amount = grant.amount
    cap = budget = None
    if points and grant.rule in ADVOCATE_RULES and rules.monthly_cap_points is not None:
        cap = CapUsage(*CapUsage.key(grant.member_id, campaign_id, _month(at)))
        amount = capped(amount, _read(CapUsage, cap, "points") if read_usage else 0, rules.monthly_cap_points)
    if points and rules.budget_points is not None:
        budget = BudgetUsage(*BudgetUsage.key(campaign_id))
        amount = capped(amount, _read(BudgetUsage, budget, "spent") if read_usage else 0, rules.budget_points)
    money_budget = None if points else rules.money_budget_fen
    if money_budget is not None:  # a coupon issues whole or not at all
        budget = BudgetUsage(*BudgetUsage.key(campaign_id))
        if capped(amount, _read(BudgetUsage, budget, "spent_fen") if read_usage else 0, money_budget) < amount:
            amount = 0
    available_at = clock.iso(clock.parse(at) + timedelta(days=rules.hold_days))
    entry = LedgerEntry(*LedgerEntry.key(grant.member_id, grant.entry_id), entry_id=grant.entry_id,
                        member_id=grant.member_id, rule=grant.rule, unit=grant.unit, amount=amount,
                        status="pending" if points else "available", bucket="pending" if points else None,
                        reason=grant.reason, source_id=grant.source_id, order_id=grant.order_id,
                        referee_id=grant.referee_id, campaign_id=campaign_id, created_at=at,
                        available_at=available_at if points else at,
                        capped_from=grant.amount if amount != grant.amount else None,
                        lsi1sk=f"LEDGER#{at}#{grant.entry_id}")
    if points and held and grant.referee_id:
        entry.hold = "fraud_review"
        entry.gsi1pk, entry.gsi1sk = LedgerEntry.hold_keys(grant.referee_id, grant.member_id, grant.entry_id).values()
    elif points:
        entry.gsi2pk, entry.gsi2sk = LedgerEntry.release_keys(grant.member_id, grant.entry_id, available_at).values()
    with transaction() as tx:
        tx.save(entry, condition=LedgerEntry.pk.does_not_exist())
        if points and amount:
            tx.update(Member(*Member.key(grant.member_id)), actions=[Member.points_pending.add(amount)],
                      condition=Member.pk.exists())
            if cap is not None:
                tx.update(cap, actions=[CapUsage.points.add(amount), CapUsage.expires_at.set(clock.epoch() + 400 * 86400)],
                          condition=CapUsage.points.does_not_exist()
                          | (CapUsage.points <= rules.monthly_cap_points - amount))
            if budget is not None:
                tx.update(budget, actions=[BudgetUsage.spent.add(amount)],
                          condition=BudgetUsage.spent.does_not_exist() | (BudgetUsage.spent <= rules.budget_points - amount))
        if money_budget is not None and amount:
            tx.update(budget, actions=[BudgetUsage.spent_fen.add(amount), BudgetUsage.type.set(BudgetUsage)],
                      condition=BudgetUsage.spent_fen.does_not_exist() | (BudgetUsage.spent_fen <= money_budget - amount))
    return entry


def _read(model: Any, item: Any, attribute: str) -> int:
    try:
        return int(getattr(model.get(item.pk, item.sk, consistent_read=True), attribute) or 0)
    except model.DoesNotExist:
        return 0


def release(entry: LedgerEntry) -> bool:
    """Move a matured, unheld pending entry to the available balance. False if it was not due."""
    if entry.status != "pending" or entry.hold or entry.bucket != "pending":
        return False
    standing = entry.standing
    with transaction() as tx:
        tx.update(entry, actions=[LedgerEntry.status.set("available"), LedgerEntry.bucket.set("available"),
                                  LedgerEntry.gsi2pk.remove(), LedgerEntry.gsi2sk.remove()],
                  condition=(LedgerEntry.status == "pending") & LedgerEntry.hold.does_not_exist()
                  & (LedgerEntry.reversed_amount == int(entry.reversed_amount or 0)))
        if standing:
            tx.update(Member(*Member.key(entry.member_id)),
                      actions=[Member.points_pending.add(-standing), Member.points_available.add(standing)])
    return True


def reverse_to(member_id: str, entry_id: str, target: int, entry: LedgerEntry | None = None) -> None:
    """Make `target` of the entry's amount stand reversed (a cumulative, idempotent target).
    `entry`, when the caller has just read it consistently, saves the first read."""
    for attempt in range(MAX_RETRIES):
        if attempt or entry is None:
            entry = find(member_id, entry_id)
        if entry is None or entry.unit != "points" or int(entry.reversed_amount or 0) >= target:
            return
        try:
            _reverse_once(entry, min(target, int(entry.amount)))
            return
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
    raise RuntimeError(f"could not reverse {entry_id} of {member_id}: kept conflicting")


def _reverse_once(entry: LedgerEntry, target: int) -> None:
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
        member_actions.append(Member.points_available.add(-take))
        member_condition = Member.points_available >= take
    entry_actions = [LedgerEntry.reversed_amount.set(target)]
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
                tx.update(BudgetUsage(*BudgetUsage.key(entry.campaign_id)), actions=[BudgetUsage.spent.add(-take)])


def set_hold(entry: LedgerEntry, held: bool) -> None:
    """Clear a fraud hold (approve): the entry becomes releasable on its own date."""
    if held or not entry.hold:
        return
    keys = LedgerEntry.release_keys(entry.member_id, entry.entry_id, entry.available_at or clock.now_iso())
    actions = [LedgerEntry.hold.remove(), LedgerEntry.gsi1pk.remove(), LedgerEntry.gsi1sk.remove()]
    if entry.status == "pending":
        actions += [LedgerEntry.gsi2pk.set(keys["gsi2pk"]), LedgerEntry.gsi2sk.set(keys["gsi2sk"])]
    entry.update(actions=actions, condition=LedgerEntry.hold.exists())


def spend(member_id: str, entry_id: str, points: int, reason: str, rule: str,
          extra_items: list[Any] | None = None, status: str = "redeemed") -> LedgerEntry:
    """Change the available balance by `points` (negative: spend) with its entry, atomically;
    the balance never goes below zero. Used by redemptions and ops adjustments."""
    at = clock.now_iso()
    entry = LedgerEntry(*LedgerEntry.key(member_id, entry_id), entry_id=entry_id, member_id=member_id, rule=rule,
                        amount=points, status=status, bucket="available", reason=reason, source_id=entry_id,
                        created_at=at, available_at=at, lsi1sk=f"LEDGER#{at}#{entry_id}")
    try:
        with transaction() as tx:
            tx.save(entry, condition=LedgerEntry.pk.does_not_exist())
            tx.update(Member(*Member.key(member_id)), actions=[Member.points_available.add(points)],
                      condition=Member.pk.exists() & (Member.points_available >= max(0, -points)))
            for item in extra_items or []:
                tx.save(item)
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
        if find(member_id, entry_id) is not None:
            raise Conflict("this operation was already applied", code="already_applied") from None
        raise Conflict("not enough available points", code="insufficient_points") from None
    return entry


def render(entry: LedgerEntry) -> dict[str, Any]:
    return {"entry_id": entry.entry_id, "kind": entry.rule, "unit": entry.unit, "amount": int(entry.amount),
            "reversed_amount": int(entry.reversed_amount or 0), "status": entry.status, "reason": entry.reason,
            "source_id": entry.source_id, "order_id": entry.order_id, "created_at": entry.created_at,
            "available_at": entry.available_at, "held": bool(entry.hold)}


def list_for(member_id: str, page_query: Any) -> dict[str, Any]:
    from ..core.pagination import page

    return page(LedgerEntry.by_lsi1.query, page_query, f"ledger:{member_id}", render,
                hash_key=Member.key(member_id)[0], range_key_condition=LedgerEntry.lsi1sk.startswith("LEDGER#"),
                scan_index_forward=False)
