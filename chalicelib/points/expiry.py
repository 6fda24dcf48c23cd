"""The clock's share of points: the `points_expiring` notice, then the expiry itself.

Served by the sparse gsi2 (EXPIRE#<shard>, sorted by each lot's next due time): one Query per
shard reads only lots that are due, never the table. Per due lot the member's debt is settled
first (spends take the oldest points), then:
- phase notice: the notice is put in the outbox and the lot's key moves to its expiry time, in
  one transaction conditioned on the phase — told once;
- phase expire: the entry `expiry.<day>` (put only if absent), the balance and the lot's
  deletion in one transaction — a repeated or concurrent run finds nothing left to expire.
"""
from __future__ import annotations

import time

from pynamodb.exceptions import DeleteError, TransactWriteError

from ..core import clock
from ..core.logs import get_logger
from ..lifecycle import outbox
from ..members.models import Member
from ..rewards.models import LedgerEntry
from ..rewards import sweeps
from ..store.base import cancelled_by_condition, cancelled_by_conflict, condition_failed, transaction
from . import lots
from .models import EXPIRE_SHARDS, PointsLot

log = get_logger("points.expiry")
PAGE = 100
MAX_CONFLICTS = 8
RUN_SECONDS = 40.0  # a run's share of the function's 60 s
NOTICE = "points_expiring"
RULE = "expiry"


def run_due(now: str | None = None, max_lots: int = 2000, run_seconds: float = RUN_SECONDS) -> dict[str, int]:
    """Notices and expiries that are due, the shards side by side (a member's lots all live in one
    shard, so no two threads touch one balance); each shard stops at its share of `max_lots` or
    when the run's time is up, and the next run continues."""
    now = now or clock.now_iso()
    deadline = time.monotonic() + run_seconds
    per_shard = max(1, max_lots // EXPIRE_SHARDS)
    done = {"noticed": 0, "expired": 0}
    for counts in sweeps.run_shards(lambda shard: _run_shard(shard, now, per_shard, deadline), range(EXPIRE_SHARDS)):
        for outcome, count in counts.items():
            done[outcome] += count
    return done


def _run_shard(shard: int, now: str, limit: int, deadline: float) -> dict[str, int]:
    done = {"noticed": 0, "expired": 0}
    handled = 0
    for hit in PointsLot.by_gsi2.query(f"EXPIRE#{shard}", PointsLot.gsi2sk <= f"{now}#~", page_size=PAGE):
        if handled >= limit or time.monotonic() >= deadline:
            log.info("points expiry stopped for this run; the next continues", extra={"shard": shard, **done})
            break
        handled += 1
        try:
            outcome = handle(hit, now)
        except Exception:  # one member's trouble must not stop everyone else's expiry
            log.exception("points expiry failed for a lot; it stays due", extra={
                "member_id": hit.member_id, "day": hit.day})
            continue
        if outcome in done:
            done[outcome] += 1
    return done


def handle(hit: PointsLot, now: str) -> str | None:
    """Do what is due for one lot (an index copy, maybe stale). Returns noticed | expired | None."""
    lot: PointsLot | None = hit
    for attempt in range(MAX_CONFLICTS):
        member, settled = lots.settle(hit.member_id)
        if settled is not None:  # the debt moved: decide on the lots as they now stand
            lot = next((live for live in settled if live.day == hit.day), None)
        elif attempt:
            lot = lots.find(hit.member_id, hit.day)
        if lot is None or member is None:
            return None
        try:
            return _step(lot, now)
        except (TransactWriteError, DeleteError) as exc:
            if not (cancelled_by_condition(exc) or condition_failed(exc) or cancelled_by_conflict(exc)):
                raise
    raise RuntimeError(f"could not expire lot {hit.day} of {hit.member_id}: kept conflicting")


def _step(lot: PointsLot, now: str) -> str | None:
    remaining = int(lot.remaining)
    if remaining <= 0:  # nothing left to tell or take
        lot.delete(condition=PointsLot.remaining == remaining)
        return None
    if lot.expiry_at <= now:  # also a lot whose notice time passed unseen: no late notice
        _expire(lot, remaining, now)
        return "expired"
    if lot.phase == "notice" and lot.notice_at <= now:
        _announce(lot, remaining, now)
        return "noticed"
    return None  # a stale index copy: not due yet


def _announce(lot: PointsLot, remaining: int, now: str) -> None:
    keys = PointsLot.due_keys(lot.member_id, lot.day, lot.expiry_at)
    with transaction() as tx:
        tx.save(outbox.note(lot.member_id, NOTICE, lot.day, now, {"points": remaining, "expires_at": lot.expiry_at}),
                condition=outbox.Notification.pk.does_not_exist())
        tx.update(lot, actions=[PointsLot.phase.set("expire"), PointsLot.gsi2sk.set(keys["gsi2sk"])],
                  condition=(PointsLot.phase == "notice") & (PointsLot.remaining == remaining))


def _expire(lot: PointsLot, remaining: int, now: str) -> None:
    entry = expiry_entry(lot, remaining, now)
    with transaction() as tx:
        tx.save(entry, condition=LedgerEntry.pk.does_not_exist())
        # no debt outstanding: a spend made since the settle must take these points first
        tx.update(Member(*Member.key(lot.member_id)), actions=[Member.points_available.add(-remaining)],
                  condition=(Member.points_available >= remaining)
                  & (Member.lot_debt.does_not_exist() | (Member.lot_debt == 0)))
        tx.delete(lot, condition=PointsLot.remaining == remaining)


def expiry_entry(lot: PointsLot, remaining: int, now: str) -> LedgerEntry:
    entry_id = f"{RULE}.{lot.day}"
    return LedgerEntry(*LedgerEntry.key(lot.member_id, entry_id), entry_id=entry_id, member_id=lot.member_id,
                       rule=RULE, amount=-remaining, status="expired", bucket="available",
                       reason=f"points expired at the end of {lot.day}", source_id=lot.day, created_at=now,
                       available_at=lot.expiry_at, lsi1sk=f"LEDGER#{now}#{entry_id}")
