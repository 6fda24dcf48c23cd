"""Scheduled release of matured rewards: pending → available once the hold has passed.

Served by the sparse gsi2 (RELEASE#<shard>, sorted by available_at): a query per shard reads
only entries that are due, never the table. The index projects whole items, so an entry is
released straight from its index copy: the release transaction's conditions (still pending,
not held, nothing reversed since) refuse a stale copy, and only then is the item read.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from pynamodb.exceptions import TransactWriteError

from ..core import clock
from ..core.logs import get_logger
from ..store.base import cancelled_by_condition
from . import ledger
from .models import RELEASE_SHARDS, LedgerEntry

log = get_logger("sweeps")
PAGE = 100

ShardRunner = Callable[[Callable[[int], int], Iterable[int]], list[int]]


def in_threads(work: Callable[[int], int], shards: Iterable[int]) -> list[int]:
    with ThreadPoolExecutor(max_workers=RELEASE_SHARDS, thread_name_prefix="release") as pool:
        return list(pool.map(work, shards))


def in_turn(work: Callable[[int], int], shards: Iterable[int]) -> list[int]:
    return [work(shard) for shard in shards]


# How shards run: side by side on DynamoDB. Injected (not a backend check) so an in-process
# emulator that is not thread-safe (moto) can run them in turn: the test fixture sets in_turn.
run_shards: ShardRunner = in_threads


def release_due(now: str | None = None, max_entries: int = 5000) -> int:
    """Release what is due, the shards side by side: a member's entries all live in one shard,
    so no two threads ever move the same balance. Each shard stops at its share of
    `max_entries`; the next run continues."""
    now = now or clock.now_iso()
    per_shard = max(1, max_entries // RELEASE_SHARDS)
    return sum(run_shards(lambda shard: _release_shard(shard, now, per_shard), range(RELEASE_SHARDS)))


def _release_shard(shard: int, now: str, limit: int) -> int:
    released = 0
    hits = LedgerEntry.by_gsi2.query(f"RELEASE#{shard}", LedgerEntry.gsi2sk <= f"{now}#~", page_size=PAGE)
    for hit in hits:
        if _release(hit, now):
            released += 1
        if released >= limit:
            log.info("release sweep hit its limit; the next run continues", extra={"shard": shard, "released": released})
            break
    return released


def _release(hit: LedgerEntry, now: str) -> bool:
    if not _due(hit, now):
        return False
    released = _try_release(hit)
    if released is not None:
        return released
    entry = ledger.find(hit.member_id, hit.entry_id)  # the index copy was stale: decide on the item
    return entry is not None and _due(entry, now) and bool(_try_release(entry))


def _due(entry: LedgerEntry, now: str) -> bool:
    return bool(entry.available_at) and entry.available_at <= now


def _try_release(entry: LedgerEntry) -> bool | None:
    """As `ledger.release` answers; None when a condition refused it (the copy was stale, or its
    referral's flag opened before its hold landed: the hold comes)."""
    try:
        return ledger.release(entry)
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
    return None
