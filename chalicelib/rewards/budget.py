"""A campaign's budget usage, sharded: a viral code's awards would otherwise all update one
`BUDGET#<campaign>` item, which DynamoDB serialises (TransactionConflict) and caps at one
partition's throughput.

- `SHARDS` items `BUDGET#<campaign>#<n>` each hold a slice of the budget (the slices add up to
  the budget less the legacy spend); each increase is conditioned on its own shard's slice, so the
  sum of the shards can never pass the budget, even concurrently.
- Every shard carries its basis: the limit its slices are cut for (with the campaign's
  `budget_rev`, see `Limit`), and whether the spend was inside it (`"<limit>@<rev>"`) or over it
  (`"over:<limit>@<rev>"`) when they were cut. A charge holds only on
  a shard cut for the limit in force and inside it; the limit is the campaign's current one
  (`in_force`), whatever the rule version a referral was bound under. When ops change the budget,
  or returns bring an overspent campaign back under it, the first award that finds the basis out
  of date re-cuts the shards (`ready`: one transaction, each shard conditioned on what was read,
  the spend moved between shards, its sum unchanged). So a lowered budget pays nothing more until
  returns bring the spend under it, and a raised one pays at once.
- An award first tries its home shard (by entry id) without reading; when that shard refuses,
  the award reads every shard, is bounded by what the whole budget has left
  (`rules.bounded_award`, as before sharding) and takes it from its home shard and the next ones.
- Returns (refunds, voids, a packet's unclaimed rest) go to the home shard of what is returned,
  unconditioned: inside the budget a shard only gets more room; over it, no shard takes charges.
- The unsharded item `BUDGET#<campaign>`/`BUDGET` (written before sharding) is never written
  again: its spend counts in every total and comes off the budget before it is sliced.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..store.base import MainItem, cancelled_by_condition, cancelled_by_conflict, transaction, transient
from .models import BudgetUsage

SHARDS = 8
POINTS, FEN = "spent", "spent_fen"
BASIS = {POINTS: "basis", FEN: "basis_fen"}
PROGRAM = "program"  # the lifecycle program's win-back coupons (a campaign id it reserves)
MAX_RECUTS = 8


@dataclass(frozen=True)
class Usage:
    """Spend per shard (index = shard), and the legacy item's."""

    shards: tuple[int, ...]
    legacy: int = 0
    bases: tuple[str | None, ...] = (None,) * SHARDS

    @property
    def total(self) -> int:
        return self.legacy + sum(self.shards)


@dataclass(frozen=True)
class Limit:
    """A budget in force: its amount, and which change of the campaign's budget set it (`rev`;
    None: the program's, or a campaign that cannot be read). Shards are cut for both: a budget
    removed and set again to the same amount is a new basis, re-cut with what was spent meanwhile;
    an edit that leaves the budget alone is not."""

    amount: int
    rev: int | None = None

    def basis(self, total: int) -> str:
        tag = f"{self.amount}@{self.rev}" if self.rev is not None else str(self.amount)
        return tag if total <= self.amount else f"over:{tag}"


def home(campaign_id: str, source: str) -> int:
    """The shard an award (or a packet) charges first and returns to."""
    return zlib.crc32(f"{campaign_id}:{source}".encode()) % SHARDS


def slices(limit: int, legacy: int = 0) -> list[int]:
    """Each shard's part of the budget left after the legacy spend.

    >>> slices(10)
    [2, 2, 1, 1, 1, 1, 1, 1]
    >>> sum(slices(1_000, legacy=3))
    997
    >>> slices(800, legacy=1_000)
    [-25, -25, -25, -25, -25, -25, -25, -25]
    """
    left = limit - legacy  # below zero when the legacy spend alone passes the limit: every slice too
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
    """Every shard's spend and basis, and the legacy item's spend (one consistent BatchGetItem:
    each item as of its own read, not one snapshot — `ready` conditions on what it read)."""
    keys = _keys(campaign_id)
    found = {(item.pk, item.sk): item for item in BudgetUsage.batch_get(keys, consistent_read=True)}

    def spent(key: tuple[str, str]) -> int:
        item = found.get(key)
        return int(getattr(item, attribute) or 0) if item is not None else 0

    def basis(key: tuple[str, str]) -> str | None:
        item = found.get(key)
        return getattr(item, BASIS[attribute]) if item is not None else None

    return Usage(tuple(spent(k) for k in keys[1:]), spent(keys[0]), tuple(basis(k) for k in keys[1:]))


def in_force(campaign_id: str | None, attribute: str, given: int | None) -> Limit | None:
    """The budget that binds a campaign's awards now: the campaign's current limit (a budget is
    the campaign's, not a rule version's), through the campaign cache. The program's coupons:
    the program version in force now. `given` (the caller's rules): a campaign that cannot be read."""
    return _in_force(campaign_id, attribute, given, fresh=False)[0]


def _in_force(campaign_id: str | None, attribute: str, given: int | None,
              fresh: bool) -> tuple[Limit | None, Any]:
    """The limit and, when read fresh, the campaign as read (a re-cut is conditioned on its budget)."""
    if campaign_id == PROGRAM and attribute == FEN:
        from ..core import clock
        from ..program import service as program

        amount = program.rules_at(clock.now_iso()).win_back_budget_fen
        return (Limit(amount) if amount is not None else None), None
    if not campaign_id or campaign_id == PROGRAM:
        return (Limit(given) if given is not None else None), None
    from ..campaigns import service as campaigns  # campaigns import rewards' models

    campaign = campaigns.find(campaign_id, consistent=True) if fresh else campaigns.current(campaign_id)
    rules = campaigns.usable_rules(campaign) if campaign is not None else None
    if rules is None:
        return (Limit(given) if given is not None else None), None
    amount = rules.budget_points if attribute == POINTS else rules.money_budget_fen
    return (Limit(amount, int(campaign.budget_rev or 0)) if amount is not None else None), (campaign if fresh else None)


def ready(campaign_id: str, attribute: str, limit: Limit | None) -> tuple[Limit | None, Usage | None]:
    """The limit in force and the shards cut for it. `limit`: the caller's (cached) view of it.
    When the shards' basis is out of date (the budget changed, returns brought
    the spend back under it, shards never cut, a spend counted while no budget bound) the limit
    is read fresh — a stale one would cut them back — and the shards are re-cut for it, in a
    transaction conditioned on the campaign's budget as read. (None, None): no budget binds."""
    for _ in range(MAX_RECUTS):
        if limit is None:
            return None, None
        read = usage(campaign_id, attribute)
        want = limit.basis(read.total)
        if all(b == want for b in read.bases) and _fits(read, limit.amount):
            return limit, read
        fresh, campaign = _in_force(campaign_id, attribute, limit.amount, fresh=True)
        if fresh != limit:
            limit = fresh
            continue
        cut = _targets(read, limit.amount)
        try:
            _recut(campaign_id, attribute, read, cut, want, campaign)
        except TransactWriteError as exc:
            if not (cancelled_by_condition(exc) or cancelled_by_conflict(exc) or transient(exc)):
                raise
            continue  # a shard or the campaign moved since the read: read again
        return limit, Usage(tuple(cut), read.legacy, (want,) * SHARDS)
    raise RuntimeError(f"could not re-cut the budget of {campaign_id}: kept conflicting")


def _fits(read: Usage, limit: int) -> bool:
    """Inside the budget, every shard within its slice (a spend counted without a charge can
    pass one); over it, nothing to check: no charge holds."""
    if read.total > limit:
        return True
    return all(spent <= part for spent, part in zip(read.shards, slices(limit, read.legacy)))


def _targets(read: Usage, limit: int) -> list[int]:
    """The shards' spend re-cut, the same sum: inside the budget, each shard's room is an even
    part of what is left (so each stays within its slice); over it, as it is (no charge holds).

    >>> _targets(Usage((10, 0, 0, 0, 0, 0, 0, 0)), 80)
    [1, 1, 1, 1, 1, 1, 2, 2]
    """
    if read.total > limit:
        return list(read.shards)
    left = limit - read.legacy - sum(read.shards)
    return [part - room for part, room in zip(slices(limit, read.legacy), slices(left))]


def _recut(campaign_id: str, attribute: str, read: Usage, cut: list[int], want: str, campaign: Any) -> None:
    field, basis = getattr(BudgetUsage, attribute), getattr(BudgetUsage, BASIS[attribute])
    with transaction() as tx:
        if campaign is not None:  # the budget cut for is still the campaign's
            model, rev = type(campaign), int(campaign.budget_rev or 0)
            tx.condition_check(model, campaign.pk, campaign.sk,
                               condition=(model.budget_rev == rev) if rev else model.budget_rev.does_not_exist())
        for shard, (was, was_basis, now) in enumerate(zip(read.shards, read.bases, cut)):
            unchanged = (field == was) if was else (field.does_not_exist() | (field == 0))
            unchanged &= (basis == was_basis) if was_basis is not None else basis.does_not_exist()
            tx.update(shard_item(campaign_id, shard), actions=[field.set(now), basis.set(want),
                                                               BudgetUsage.type.set(BudgetUsage)],
                      condition=unchanged)


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


def charge(tx: Any, campaign_id: str, source: str, amount: int, attribute: str, limit: Limit,
           spent: Usage | None = None) -> bool:
    """Add `amount` to the budget inside `tx`, each shard conditioned on its slice and on being
    cut for `limit` and inside it. Without `spent` (the first, unread try) every shard is assumed
    empty and the conditions decide; with it (read by `ready`), the shards' rooms as read. False
    when the shards, as read, cannot hold it (the caller bounds the amount first)."""
    if amount <= 0:
        return True
    legacy = spent.legacy if spent is not None else legacy_spent(campaign_id, attribute)
    parts_of = slices(limit.amount, legacy)
    rooms = parts_of if spent is None else [s - u for s, u in zip(parts_of, spent.shards)]
    parts = placement(amount, home(campaign_id, source), rooms)
    if not parts:
        return False
    field, basis = getattr(BudgetUsage, attribute), getattr(BudgetUsage, BASIS[attribute])
    inside = limit.basis(0)
    for shard, part in parts:
        tx.update(shard_item(campaign_id, shard), actions=[field.add(part)],
                  condition=(basis == inside) & (field.does_not_exist() | (field <= parts_of[shard] - part)))
    return True


def adjust(tx: Any, campaign_id: str, source: str, delta: int, attribute: str) -> None:
    """Move the spend by `delta` on the home shard of `source`, unconditioned: a return (delta < 0)
    only frees room, and a campaign without this budget only keeps count. A spend counted so
    (no budget bound it) takes the shard's basis away: should a budget bind again, the shards
    are re-cut with this spend counted before any charge holds."""
    if delta:
        field, basis = getattr(BudgetUsage, attribute), getattr(BudgetUsage, BASIS[attribute])
        actions = [field.add(delta), BudgetUsage.type.set(BudgetUsage)]
        if delta > 0:
            actions.append(basis.remove())
        tx.update(shard_item(campaign_id, home(campaign_id, source)), actions=actions)
