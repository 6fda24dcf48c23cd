"""A campaign's budget usage, sharded: a viral code's awards would otherwise all update one
`BUDGET#<campaign>` item, which DynamoDB serialises (TransactionConflict) and caps at one
partition's throughput.

- `SHARDS` items `BUDGET#<campaign>#<n>` each hold what was spent through them (`spent`,
  `spent_fen`) and the room they may still pay (`left`, `left_fen`). A charge takes from a
  shard's room, conditioned on the room holding it; the rooms never go below zero, so the
  spend can only pass the budget by what the rooms held when they were last balanced.
- `rebalance` sets the rooms from the facts: the current budget less everything spent (legacy
  item included), spread over the shards, or all zero when the spend has reached it — in one
  transaction conditioned on every shard as read. It runs when a campaign is created or
  changed (a budget lowered below the spend stops every award at once, on every instance and
  rule version), and on an award's read path when room is missing or returns freed some.
- An award first tries its home shard (by entry id) without reading; when that shard's room is
  short, the award reads every shard, is bounded by the rooms' sum and takes it from its home
  shard and the next ones.
- Returns (refunds, voids, a packet's unclaimed rest) only lower `spent` on the home shard of
  what is returned: the room they free is given back by the next rebalance, which sees it, so a
  campaign whose budget was lowered below its spend pays again only once the spend is under it.
- The unsharded item `BUDGET#<campaign>`/`BUDGET` (written before sharding) is never written
  again: its spend counts in every total and in every rebalance.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..store.base import cancelled_by_condition, transaction
from ..campaigns.models import Campaign
from .models import BudgetUsage

SHARDS = 8
POINTS, FEN = "spent", "spent_fen"
ROOM = {POINTS: "left", FEN: "left_fen"}
MAX_RETRIES = 8


@dataclass(frozen=True)
class Usage:
    """Spend per shard (index = shard), the legacy item's, and each shard's room (None: never
    balanced)."""

    shards: tuple[int, ...]
    legacy: int = 0
    rooms: tuple[int | None, ...] = (None,) * SHARDS
    balanced_for: int = 0  # the latest campaign version that balanced the rooms

    @property
    def total(self) -> int:
        return self.legacy + sum(self.shards)

    @property
    def room(self) -> int:
        """What the shards may still pay, all together."""
        return sum(max(0, r or 0) for r in self.rooms)

    @property
    def balanced(self) -> bool:
        return all(r is not None for r in self.rooms)


def home(campaign_id: str, source: str) -> int:
    """The shard an award (or a packet) charges first and returns to."""
    return zlib.crc32(f"{campaign_id}:{source}".encode()) % SHARDS


def slices(left: int) -> list[int]:
    """`left` spread over the shards.

    >>> slices(10)
    [2, 2, 1, 1, 1, 1, 1, 1]
    >>> sum(slices(997))
    997
    """
    left = max(0, left)
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


def _read(campaign_id: str, attribute: str) -> Usage:
    keys = _keys(campaign_id)
    found = {(item.pk, item.sk): item for item in BudgetUsage.batch_get(keys, consistent_read=True)}
    items = [found.get(k) for k in keys]

    def value(item: BudgetUsage | None, name: str) -> int | None:
        raw = getattr(item, name, None) if item is not None else None
        return None if raw is None else int(raw)

    return Usage(tuple(value(i, attribute) or 0 for i in items[1:]), value(items[0], attribute) or 0,
                 tuple(value(i, ROOM[attribute]) for i in items[1:]),
                 max(value(i, f"{ROOM[attribute]}_version") or 0 for i in items[1:]))


def usage(campaign_id: str, attribute: str, balance: bool = False) -> Usage:
    """Every shard's spend and room, and the legacy item's spend (one consistent BatchGetItem).
    `balance`: rooms that are missing or differ from what the budget in force leaves (returns
    freed some, the budget changed) are balanced first."""
    for _ in range(MAX_RETRIES):
        found = _read(campaign_id, attribute)
        if not balance:
            return found
        limit, version = limit_now(campaign_id, attribute)
        if limit is None or (found.balanced and found.room == max(0, limit - found.total)):
            return found
        _rebalance_once(campaign_id, attribute, limit, version, found)
    raise RuntimeError(f"could not balance the budget of {campaign_id}: kept conflicting")


def rebalance(campaign_id: str, attribute: str, limit: int, version: int) -> None:
    """Make the rooms say what the budget `limit` of campaign `version` leaves after everything
    spent (a campaign created or changed)."""
    for _ in range(MAX_RETRIES):
        found = _read(campaign_id, attribute)
        if found.balanced_for > version:
            return  # a later version balanced them: its budget stands
        if _rebalance_once(campaign_id, attribute, limit, version, found):
            return
    raise RuntimeError(f"could not balance the budget of {campaign_id}: kept conflicting")


def _rebalance_once(campaign_id: str, attribute: str, limit: int, version: int, found: Usage) -> bool:
    """One try, conditioned on every shard's spend and room as read, and on no later campaign
    version having balanced them (an award that read the campaign before a change cannot undo
    the change's balance): False when the try was refused."""
    spent_field, room_field = getattr(BudgetUsage, attribute), getattr(BudgetUsage, ROOM[attribute])
    version_field = getattr(BudgetUsage, f"{ROOM[attribute]}_version")
    try:
        with transaction() as tx:
            for shard, room in enumerate(slices(limit - found.total)):
                condition = spent_field == found.shards[shard]
                if not found.shards[shard]:  # a missing spend reads as 0
                    condition |= spent_field.does_not_exist()
                condition &= (room_field.does_not_exist() if found.rooms[shard] is None
                              else room_field == found.rooms[shard])
                condition &= version_field.does_not_exist() | (version_field <= version)
                tx.update(shard_item(campaign_id, shard),
                          actions=[room_field.set(room), version_field.set(version), BudgetUsage.type.set(BudgetUsage)],
                          condition=condition)
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
        return False
    return True


def limit_now(campaign_id: str, attribute: str) -> tuple[int | None, int]:
    """The budget in force now and its campaign version (read consistently): what the rooms are
    balanced against, whatever rule version judged the fact. (None, 0): no such budget."""
    from ..campaigns import service as campaigns  # campaigns call rebalance: imported when used

    try:
        campaign = Campaign.get(*Campaign.key(campaign_id), consistent_read=True)
    except Campaign.DoesNotExist:
        return None, 0
    rules = campaigns.rules_of(campaign)
    return (rules.budget_points if attribute == POINTS else rules.money_budget_fen), int(campaign.version)


def totals(campaign_id: str) -> dict[str, int]:
    """What the campaign has spent, in points and in money (budget reports, the dry run)."""
    keys = _keys(campaign_id)
    items = list(BudgetUsage.batch_get(keys, consistent_read=True))
    return {"points": sum(int(i.spent or 0) for i in items), "fen": sum(int(i.spent_fen or 0) for i in items)}


def charge(tx: Any, campaign_id: str, source: str, amount: int, attribute: str,
           spent: Usage | None = None) -> bool:
    """Take `amount` from the shards' rooms inside `tx`, each conditioned on its room holding its
    part. Without `spent` (the first, unread try) it all goes to the home shard and the condition
    decides. False when the rooms, as read, cannot hold it (the caller bounds the amount first)."""
    if amount <= 0:
        return True
    start = home(campaign_id, source)
    if spent is None:
        parts = [(start, amount)]
    else:
        parts = placement(amount, start, [r or 0 for r in spent.rooms])
        if not parts:
            return False
    spent_field, room_field = getattr(BudgetUsage, attribute), getattr(BudgetUsage, ROOM[attribute])
    for shard, part in parts:
        tx.update(shard_item(campaign_id, shard),
                  actions=[spent_field.add(part), room_field.add(-part), BudgetUsage.type.set(BudgetUsage)],
                  condition=room_field >= part)
    return True


def adjust(tx: Any, campaign_id: str, source: str, delta: int, attribute: str) -> None:
    """Move the spend by `delta` on the home shard of `source`, unconditioned: a return (delta < 0)
    frees room that the next rebalance gives back; a campaign without this budget only keeps count."""
    if delta:
        field = getattr(BudgetUsage, attribute)
        tx.update(shard_item(campaign_id, home(campaign_id, source)),
                  actions=[field.add(delta), BudgetUsage.type.set(BudgetUsage)])
