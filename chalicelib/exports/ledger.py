"""A campaign's ledger entries created in [start, end), oldest first, a page at a time, from
the export rows (models.py): per UTC month, the shards' queries merged on the sort key, which
is unique (created_at, member, entry) and so also the cursor."""
from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Any, Iterator

from ..core import clock
from .csvfile import Positioned
from .models import EXPORT_SHARDS, LedgerExportRow, partition

COLUMNS = ("entry_id", "member_id", "display_name", "rule", "unit", "amount", "reversed_amount", "status",
           "created_at", "available_at", "order_id", "referee_id")
READ_PAGE = 500


def rows(campaign_id: str, start: datetime, end: datetime, after: dict[str, Any] | None) -> Iterator[Positioned]:
    """Rows after the cursor `after` = {k: the last row's sort key}."""
    low = after["k"] if after else clock.iso(start)
    high = clock.iso(end - timedelta(microseconds=1)) + "$"  # '$' sorts after '#': every key of that instant
    for month in _months(low[:7], high[:7]):
        shards = [_query(partition(campaign_id, month, shard), low, high) for shard in range(EXPORT_SHARDS)]
        for item in heapq.merge(*shards, key=lambda r: r.sk):
            if after and item.sk == after["k"]:
                continue
            yield _row(item), {"k": item.sk}


def _query(pk: str, low: str, high: str) -> Iterator[LedgerExportRow]:
    return iter(LedgerExportRow.query(pk, LedgerExportRow.sk.between(low, high), page_size=READ_PAGE))


def _row(item: LedgerExportRow) -> dict[str, Any]:
    row = {name: getattr(item, name) for name in COLUMNS if name != "display_name"}
    row["amount"], row["reversed_amount"] = int(item.amount), int(item.reversed_amount or 0)
    return row


def _months(first: str, last: str) -> Iterator[str]:
    """>>> list(_months("2026-11", "2027-01"))
    ['2026-11', '2026-12', '2027-01']
    """
    year, month = int(first[:4]), int(first[5:7])
    while f"{year:04d}-{month:02d}" <= last:
        yield f"{year:04d}-{month:02d}"
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
