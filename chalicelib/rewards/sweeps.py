"""Scheduled release of matured rewards: pending → available once the hold has passed.

Served by the sparse gsi2 (RELEASE#<shard>, sorted by available_at): a query per shard reads
only entries that are due, never the table.
"""
from __future__ import annotations

from ..core import clock
from ..core.logs import get_logger
from . import ledger
from .models import RELEASE_SHARDS, LedgerEntry

log = get_logger("sweeps")
PAGE = 100


def release_due(now: str | None = None, max_entries: int = 5000) -> int:
    now = now or clock.now_iso()
    released = 0
    for shard in range(RELEASE_SHARDS):
        hits = LedgerEntry.by_gsi2.query(f"RELEASE#{shard}", LedgerEntry.gsi2sk <= f"{now}#~", page_size=PAGE)
        for hit in hits:
            entry = ledger.find(hit.member_id, hit.entry_id)  # the index may lag: decide on the item
            if entry is not None and entry.available_at and entry.available_at <= now and ledger.release(entry):
                released += 1
            if released >= max_entries:
                log.info("release sweep hit its limit; the next run continues", extra={"released": released})
                return released
    return released
