"""Facts → daily figures, exactly (the leaderboards' pattern, leaderboards/scores.py).

Each fact (a sign-up and its conversion, an order, a ledger entry, a share link) remembers what
it contributes to which cells (`Contribution`). A handler computes what the fact contributes now
from its latest image and ADDs only the difference to the cells' `DayFigures`, in one
transaction with the record, conditioned on the record's revision. A redelivered or replayed
record finds nothing to change; a refund or an undone conversion moves the figures back.

Cost: 1 strongly consistent GetItem (the record) + 1 TransactWriteItems of 1 + (cells changed)
items — normally 2 items, 2 WRU each while they stay under 1 KB. `add_once` (facts that never
change) skips the read: the record's put is conditioned on its absence.

`apply_many` takes a stream batch's facts together (ledger entries: a purchase pays several into
the same cell): each fact still writes its record, but a cell moved by several facts is added to
once, in one transaction (≤ 100 items, else split). New facts of a batch take one shard (the
smallest fact id's), so their cells meet in one item; a fact keeps the shard of its first write.
"""
from __future__ import annotations

import json
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..store.base import cancelled_by_condition, cancelled_by_conflict, transaction
from . import rules
from .models import Contribution, DayFigures

MAX_CONFLICTS = 8
MAX_ITEMS = 100  # DynamoDB's limit on one transaction

Desired = dict[rules.Cell, dict[str, int]]  # cell → figure → what the fact contributes


def apply(fact_id: str, desired: Desired) -> bool:
    """Make the fact contribute `desired`; True when anything changed."""
    for _ in range(MAX_CONFLICTS):
        record = _record(fact_id)
        had = json.loads(record.values) if record else {}
        wanted = _encode(desired)
        deltas = _deltas(had, wanted)
        if not deltas:
            return False
        shard = int(record.shard) if record else rules.shard_of(fact_id)
        try:
            _write(fact_id, shard, wanted, deltas,
                   (Contribution.rev == int(record.rev)) if record else Contribution.pk.does_not_exist(),
                   int(record.rev) + 1 if record else 1)
            return True
        except TransactWriteError as exc:
            if not (cancelled_by_condition(exc) or cancelled_by_conflict(exc)):
                raise
    raise RuntimeError(f"could not apply {fact_id} to the funnel: kept conflicting")


def apply_many(facts: dict[str, Desired]) -> int:
    """`apply` for many facts at once; how many changed."""
    for _ in range(MAX_CONFLICTS):
        records = {r.fact_id: r for r in Contribution.batch_get([Contribution.key(f) for f in facts],
                                                                consistent_read=True)} if facts else {}
        fresh_shard = rules.shard_of(min(facts)) if facts else 0
        plans, cells = {}, {}
        for fact_id, desired in facts.items():
            record = records.get(fact_id)
            wanted = _encode(desired)
            deltas = _deltas(json.loads(record.values) if record else {}, wanted)
            if not deltas:
                continue
            shard = int(record.shard) if record else fresh_shard
            plans[fact_id] = (record, shard, wanted)
            for cell, change in deltas.items():
                figures = cells.setdefault((shard, cell), {})
                for name, n in change.items():
                    figures[name] = figures.get(name, 0) + n
        cells = {key: {n: v for n, v in figures.items() if v} for key, figures in cells.items()}
        cells = {key: figures for key, figures in cells.items() if figures}
        if not plans:
            return 0
        if len(plans) + len(cells) > MAX_ITEMS and len(plans) > 1:
            ids = list(plans)
            half = len(ids) // 2
            return apply_many({i: facts[i] for i in ids[:half]}) + apply_many({i: facts[i] for i in ids[half:]})
        try:
            with transaction() as tx:
                for fact_id, (record, shard, wanted) in plans.items():
                    tx.save(Contribution(*Contribution.key(fact_id), fact_id=fact_id, shard=shard,
                                         values=json.dumps(wanted), rev=int(record.rev) + 1 if record else 1),
                            condition=(Contribution.rev == int(record.rev)) if record
                            else Contribution.pk.does_not_exist())
                for (shard, cell), figures in cells.items():
                    _add(tx, shard, cell, figures)
            return len(plans)
        except TransactWriteError as exc:
            if not (cancelled_by_condition(exc) or cancelled_by_conflict(exc)):
                raise
    raise RuntimeError(f"could not apply {sorted(facts)[:3]}… to the funnel: kept conflicting")


def add_once(fact_id: str, desired: Desired) -> bool:
    """For facts that never change (a share link): count once, without reading first."""
    wanted = _encode(desired)
    if not wanted:
        return False
    for _ in range(MAX_CONFLICTS):
        try:
            _write(fact_id, rules.shard_of(fact_id), wanted, _deltas({}, wanted), Contribution.pk.does_not_exist(), 1)
            return True
        except TransactWriteError as exc:
            if cancelled_by_condition(exc):
                return False  # counted before
            if not cancelled_by_conflict(exc):
                raise
    raise RuntimeError(f"could not add {fact_id} to the funnel: kept conflicting")


def _encode(desired: Desired) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for (campaign_id, day, channel), figures in desired.items():
        kept = {name: int(n) for name, n in figures.items() if n}
        if kept:
            out[f"{campaign_id}|{day}|{channel}"] = kept
    return out


def _deltas(had: dict[str, dict[str, int]], wanted: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    deltas = {}
    for cell in set(had) | set(wanted):
        before, after = had.get(cell, {}), wanted.get(cell, {})
        change = {name: after.get(name, 0) - before.get(name, 0) for name in set(before) | set(after)}
        change = {name: n for name, n in change.items() if n}
        if change:
            deltas[cell] = change
    return deltas


def _record(fact_id: str) -> Contribution | None:
    try:
        return Contribution.get(*Contribution.key(fact_id), consistent_read=True)
    except Contribution.DoesNotExist:
        return None


def _write(fact_id: str, shard: int, wanted: dict, deltas: dict, condition: Any, rev: int) -> None:
    with transaction() as tx:
        tx.save(Contribution(*Contribution.key(fact_id), fact_id=fact_id, shard=shard, values=json.dumps(wanted),
                             rev=rev), condition=condition)
        for cell, change in deltas.items():
            _add(tx, shard, cell, change)


def _add(tx: Any, shard: int, cell: str, change: dict[str, int]) -> None:
    campaign_id, day, channel = cell.split("|")
    item = DayFigures(rules.partition(campaign_id, shard), rules.sort_key(day, channel, "f"))
    actions = [getattr(DayFigures, name).add(n) for name, n in sorted(change.items())]
    tx.update(item, actions=actions + [DayFigures.type.set(DayFigures)])
