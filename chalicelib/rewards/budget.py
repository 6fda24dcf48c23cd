"""A campaign's budget usage, sharded: a viral code's awards would otherwise all update one
`BUDGET#<campaign>` item, which DynamoDB serialises (TransactionConflict) and caps at one
partition's throughput.

- `SHARDS` items `BUDGET#<campaign>#<n>` each hold a slice of the budget (the slices add up to
  the budget less the legacy spend); each increase is conditioned on its own shard's slice, so the
  sum of the shards can never pass the budget, even concurrently.
- An award first tries its home shard (by entry id) without reading; when that shard's slice is
  used up, the award reads every shard, is bounded by what the whole budget has left
  (`rules.bounded_award`, as before sharding) and takes it from its home shard and the next ones.
- Returns (refunds, voids, a packet's unclaimed rest) go to the home shard of what is returned:
  a shard may go below zero, which only leaves it more room; the sum stays exact.
- The unsharded item `BUDGET#<campaign>`/`BUDGET` (written before sharding) is never written
  again: its spend counts in every total and comes off the budget before it is sliced.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from ..store.base import MainItem
from .models import BudgetUsage

SHARDS = 8
POINTS, FEN = "spent", "spent_fen"


@dataclass(frozen=True)
class Usage:
    """Spend per shard (index = shard), and the legacy item's."""

    shards: tuple[int, ...]
    legacy: int = 0

    @property
    def total(self) -> int:
        return self.legacy + sum(self.shards)


def home(campaign_id: str, source: str) -> int:
    """The shard an award (or a packet) charges first and returns to."""
    return zlib.crc32(f"{campaign_id}:{source}".encode()) % SHARDS


def slices(limit: int, legacy: int = 0) -> list[int]:
    """Each shard's part of the budget left after the legacy spend.

    >>> slices(10)
    [2, 2, 1, 1, 1, 1, 1, 1]
    >>> sum(slices(1_000, legacy=3))
    997
    """
    left = max(0, limit - legacy)
    return [left // SHARDS + (1 if n < left % SHARDS else 0) for n in range(SHARDS)]


def placement(amount: int, start: int, rooms: list[int]) -> list[tuple[int, int]]:
    """(shard, part) taking `amount` from `start` onward, as far as each shard's room goes (a
    spent shard borrows from the next). Empty when the rooms do not hold it.

    >>> placement(5, 7, [3, 3, 3, 3, 3, 3, 3, 2])
    [(7, 2), (0, 3)]
    """
    parts = []
    for step in range(SHARDS):
        if amount <= 0:
            break
        shard = (start + step) % SHARDS
        take = min(amount, max(0, rooms[shard]))
        if take:
            parts.append((shard, take))
            amount -= take
    return parts if amount <= 0 else []


def shard_item(campaign_id: str, shard: int) -> BudgetUsage:
    return BudgetUsage(*BudgetUsage.key(campaign_id, shard))


def _keys(campaign_id: str) -> list[tuple[str, str]]:
    """The legacy item's key, then every shard's."""
    return [BudgetUsage.key(campaign_id)] + [BudgetUsage.key(campaign_id, n) for n in range(SHARDS)]


def usage(campaign_id: str, attribute: str) -> Usage:
    """Every shard's spend and the legacy item's (one consistent BatchGetItem)."""
    keys = _keys(campaign_id)
    found = {(item.pk, item.sk): item for item in BudgetUsage.batch_get(keys, consistent_read=True)}

    def spent(key: tuple[str, str]) -> int:
        item = found.get(key)
        return int(getattr(item, attribute) or 0) if item is not None else 0

    return Usage(tuple(spent(k) for k in keys[1:]), spent(keys[0]))


def totals(campaign_id: str) -> dict[str, int]:
    """What the campaign has spent, in points and in money (budget reports, the dry run)."""
    keys = _keys(campaign_id)
    items = list(BudgetUsage.batch_get(keys, consistent_read=True))
    return {"points": sum(int(i.spent or 0) for i in items), "fen": sum(int(i.spent_fen or 0) for i in items)}


_legacy: dict[tuple[str, str, str], int] = {}


def legacy_spent(campaign_id: str, attribute: str) -> int:
    """The frozen spend of the unsharded item, read once per process and table (never written
    again, so the cached figure stays right)."""
    key = (MainItem.Meta.table_name, campaign_id, attribute)
    if key not in _legacy:
        try:
            item = BudgetUsage.get(*BudgetUsage.key(campaign_id), consistent_read=True)
            _legacy[key] = int(getattr(item, attribute) or 0)
        except BudgetUsage.DoesNotExist:
            _legacy[key] = 0
    return _legacy[key]


def charge(tx: Any, campaign_id: str, source: str, amount: int, attribute: str, limit: int,
           spent: Usage | None = None) -> bool:
    """Add `amount` to the budget inside `tx`, each shard conditioned on its slice. Without
    `spent` (the first, unread try) every shard is assumed empty and the conditions decide.
    False when the shards, as read, cannot hold it (the caller bounds the amount first)."""
    if amount <= 0:
        return True
    legacy = spent.legacy if spent is not None else legacy_spent(campaign_id, attribute)
    parts_of = slices(limit, legacy)
    rooms = parts_of if spent is None else [s - u for s, u in zip(parts_of, spent.shards)]
    parts = placement(amount, home(campaign_id, source), rooms)
    if not parts:
        return False
    field = getattr(BudgetUsage, attribute)
    for shard, part in parts:
        tx.update(shard_item(campaign_id, shard), actions=[field.add(part), BudgetUsage.type.set(BudgetUsage)],
                  condition=field.does_not_exist() | (field <= parts_of[shard] - part))
    return True


def adjust(tx: Any, campaign_id: str, source: str, delta: int, attribute: str) -> None:
    """Move the spend by `delta` on the home shard of `source`, unconditioned: a return (delta < 0)
    only frees room, and a campaign without this budget only keeps count."""
    if delta:
        field = getattr(BudgetUsage, attribute)
        tx.update(shard_item(campaign_id, home(campaign_id, source)),
                  actions=[field.add(delta), BudgetUsage.type.set(BudgetUsage)])
