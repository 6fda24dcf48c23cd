"""The clock's share of the lifecycle: members whose stage or tier changes with time alone
(at-risk, churned, end of reactivation, reviews, downgrades, nudges, birthdays).

Served by the sparse gsi2 (LIFECYCLE#<shard>, sorted by the next change): one Query per shard
reads only members that are due, never the table. A hit is the member's small `LifecycleDue`
item, or (bound before those existed) the member item itself: both name the member (queried on
MainItem's index: a Member's own filters to members). Reconciling a member moves its due time
forward (or out of the index), so a run that repeats finds nothing left to do.
"""
from __future__ import annotations

from ..core import clock
from ..core.logs import get_logger
from ..store.base import MainItem
from . import service

log = get_logger("lifecycle.sweep")
PAGE = 100


def run_due(now: str | None = None, max_members: int = 2000) -> int:
    now = now or clock.now_iso()
    moved = 0
    for shard in range(service.DUE_SHARDS):
        for hit in MainItem.by_gsi2.query(f"LIFECYCLE#{shard}", MainItem.gsi2sk <= f"{now}#~", page_size=PAGE):
            if moved >= max_members:
                log.info("lifecycle sweep hit its limit; the next run continues", extra={"moved": moved})
                return moved
            try:
                if service.reconcile(hit.member_id, new_facts=False) is not None:
                    moved += 1
            except service.IndexLag:
                log.info("orders index behind; the member is due again next run",
                         extra={"member_id": hit.member_id})
    return moved
