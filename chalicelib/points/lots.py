"""Lots and the debt owed to them: the ledger's bookkeeping of *when* available points expire.

- `credit` joins every credit to the available balance to its lot, in the caller's transaction.
- A debit only adds to the member's `lot_debt` (same transaction): a spend touches no lot, so it
  stays one small transaction whatever the number of lots.
- `settle` assigns the debt to the soonest-expiring lots, conditioned on what it read.
Invariant (for points credited since lots exist): sum(remaining) - lot_debt == points_available.
"""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..members.models import Member, member_pk
from ..program import service as program
from ..store.base import cancelled_by_condition, cancelled_by_conflict, transaction
from .models import PointsLot
from .rules import lot_dates, spread_debt

MAX_CONFLICTS = 8
TX_LOTS = 99  # a transaction takes 100 items: the member and up to 99 lots


def credit(tx: Any, member_id: str, points: int, at: str) -> None:
    """Add `points`, becoming available at `at`, to their lot within `tx`. The first credit of a
    lot sets its dates and index keys; later ones only add (if_not_exists)."""
    dates = lot_dates(at, program.rules_at(at))
    phase = dates.first_phase
    keys = PointsLot.due_keys(member_id, dates.day, dates.notice_at if phase == "notice" else dates.expiry_at)
    tx.update(PointsLot(*PointsLot.key(member_id, dates.day)),
              actions=[PointsLot.remaining.add(points), PointsLot.type.set(PointsLot),
                       PointsLot.member_id.set(PointsLot.member_id | member_id),
                       PointsLot.day.set(PointsLot.day | dates.day),
                       PointsLot.expiry_at.set(PointsLot.expiry_at | dates.expiry_at),
                       PointsLot.notice_at.set(PointsLot.notice_at | dates.notice_at),
                       PointsLot.phase.set(PointsLot.phase | phase),
                       PointsLot.gsi2pk.set(PointsLot.gsi2pk | keys["gsi2pk"]),
                       PointsLot.gsi2sk.set(PointsLot.gsi2sk | keys["gsi2sk"])])


def debit(points: int) -> Any:
    """The member action that owes `points` (> 0) to the lots."""
    return Member.lot_debt.add(points)


def live(member_id: str, consistent: bool = False) -> list[PointsLot]:
    return list(PointsLot.query(member_pk(member_id), PointsLot.sk.startswith("LOT#"), consistent_read=consistent))


def find(member_id: str, day: str) -> PointsLot | None:
    try:
        return PointsLot.get(*PointsLot.key(member_id, day), consistent_read=True)
    except PointsLot.DoesNotExist:
        return None


def settle(member_id: str) -> tuple[Member | None, list[PointsLot] | None]:
    """Assign the member's debt to lots, soonest to expire first; lots that reach 0 go. Returns
    the member as read and, when there was a debt, the live lots as they now stand (None: no
    debt, lots not read). A debt larger than every lot (points older than lots) stays owed."""
    conflicts = 0
    while True:
        member = Member.find(member_id, consistent=True)
        if member is None or int(member.lot_debt or 0) <= 0:
            return member, None
        lots = live(member_id, consistent=True)
        kept, _ = spread_debt([int(lot.remaining) for lot in lots], int(member.lot_debt))
        changed = [(lot, keep) for lot, keep in zip(lots, kept) if keep != int(lot.remaining)][:TX_LOTS]
        if not changed:
            return member, lots
        try:
            _apply(member_id, changed)
        except TransactWriteError as exc:
            if not (cancelled_by_condition(exc) or cancelled_by_conflict(exc)):
                raise
            conflicts += 1
            if conflicts >= MAX_CONFLICTS:
                raise RuntimeError(f"could not settle the lots of {member_id}: kept conflicting") from None
            continue
        if len(changed) == TX_LOTS:
            continue  # more lots to settle than one transaction takes: read again
        member.lot_debt = int(member.lot_debt) - sum(int(lot.remaining) - keep for lot, keep in changed)
        for lot, keep in changed:
            lot.remaining = keep
        return member, [lot for lot in lots if int(lot.remaining) > 0]


def _apply(member_id: str, changed: list[tuple[PointsLot, int]]) -> None:
    taken = sum(int(lot.remaining) - keep for lot, keep in changed)
    with transaction() as tx:
        tx.update(Member(*Member.key(member_id)), actions=[Member.lot_debt.add(-taken)],
                  condition=Member.lot_debt >= taken)
        for lot, keep in changed:
            unchanged = PointsLot.remaining == int(lot.remaining)
            if keep:
                tx.update(lot, actions=[PointsLot.remaining.set(keep)], condition=unchanged)
            else:
                tx.delete(lot, condition=unchanged)


def expiring(member: Member) -> dict[str, Any] | None:
    """The soonest points to expire, {points, at}, with the debt applied in memory (one Query)."""
    lots = live(member.member_id)
    kept, _ = spread_debt([int(lot.remaining) for lot in lots], int(member.lot_debt or 0))
    for lot, points in zip(lots, kept):
        if points > 0:
            return {"points": points, "at": lot.expiry_at}
    return None
