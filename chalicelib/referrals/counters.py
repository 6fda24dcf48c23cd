"""Click counters, aggregated from the clicks stream: one UpdateItem per counter item per
batch (a code, its link, its campaign), never one per click.

Exact under redelivery and replay: each counter keeps, per stream lane (shard), the highest
sequence number it has applied (`seen`). A batch's update is conditioned on
`seen[lane] < lowest sequence of this batch's records for that counter`; when that fails
(the batch, or part of it, came before), the counter is read and only records above the mark
are applied, conditioned on the mark being unchanged.

This needs records of one lane to arrive in order and one batch at a time per lane: true per
shard for Lambda with ParallelizationFactor 1 (the default), and for the local poller. Lambda
names the shard only when the mapping has a tumbling window (`shardId` in the event), so the
clicks mapping declares one (event_sources.MAPPINGS); without it the lane would be the stream
ARN alone and two shards' interleaved sequence numbers would look like replays
(tests/test_streams_shards.py). A batch re-driven from the failure store is counted in a lane
of its own (`redrive:<failure id>`): the shard's mark moved past its records meanwhile.

Cost: 1 UpdateItem per counter per batch; the first batch for a new counter adds a failed
update + 1 PutItem (nested map paths need the maps to exist); a redelivered batch adds 1 read.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from ..core import clock
from ..store.base import condition_failed
from ..streams import Batch, Change, on_batch
from .models import Click, ClickCounter

SEQUENCE_DIGITS = 40  # DynamoDB Streams sequence numbers have 21 to 40 digits
# Streams keep records 24 h: a lane silent for twice that can never redeliver, so its mark goes.
LANE_RETENTION_SECONDS = 48 * 3600

Key = tuple[str, str]


def mark(sequence: int | str) -> str:
    """A sequence number as a fixed-width string, so DynamoDB's `<` compares it as a number.

    >>> mark("9") < mark("10")
    True
    """
    return str(int(sequence)).zfill(SEQUENCE_DIGITS)


@dataclass
class Tally:
    total: int = 0
    by_day: Counter = field(default_factory=Counter)
    by_channel: Counter = field(default_factory=Counter)
    low: int | None = None
    high: int | None = None

    def add(self, sequence: int, click: Click) -> None:
        self.total += 1
        self.by_day[click.day or click.at[:10]] += 1
        self.by_channel[click.channel or "other"] += 1
        self.low = sequence if self.low is None else min(self.low, sequence)
        self.high = sequence if self.high is None else max(self.high, sequence)


def keys_of(click: Click) -> list[Key]:
    keys = [ClickCounter.key(code=click.code)]
    if click.link_id:
        keys.append(ClickCounter.key(link_id=click.link_id))
    if click.campaign_id:
        keys.append(ClickCounter.key(campaign_id=click.campaign_id))
    return keys


@on_batch("clicks", "click")
def count_clicks(changes: list[Change], batch: Batch) -> None:
    groups: dict[Key, list[tuple[int, Click]]] = defaultdict(list)
    for change in changes:
        if change.event != "INSERT" or change.new is None:  # TTL removals are not clicks
            continue
        for key in keys_of(change.new):
            groups[key].append((int(change.sequence), change.new))
    for key, records in groups.items():
        apply(key, records, batch.lane)


def apply(key: Key, records: list[tuple[int, Click]], lane: str) -> None:
    """Add `records` (sequence, click) of one lane to the counter `key`, each exactly once."""
    tally = _tally(records)
    seen = ClickCounter.seen[lane]
    try:
        _update(key, tally, lane, seen.does_not_exist() | (seen < mark(tally.low)))
        return
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
    # Some of these records were applied before: keep only those above the mark.
    counter = ClickCounter.get(*key, consistent_read=True)
    applied = (counter.seen.as_dict() if counter.seen else {}).get(lane)
    fresh = [(s, c) for s, c in records if applied is None or mark(s) > applied]
    if fresh:
        _update(key, _tally(fresh), lane, seen.does_not_exist() if applied is None else seen == applied)


def _tally(records: list[tuple[int, Click]]) -> Tally:
    tally = Tally()
    for sequence, click in records:
        tally.add(sequence, click)
    return tally


def _actions(tally: Tally, lane: str) -> list[Any]:
    # ADD works on top-level attributes only; map entries use SET x = if_not_exists(x, 0) + n.
    actions = [ClickCounter.total.add(tally.total)]
    for attribute, counts in ((ClickCounter.by_day, tally.by_day), (ClickCounter.by_channel, tally.by_channel)):
        for name, n in sorted(counts.items()):
            actions.append(attribute[name].set((attribute[name] | 0) + n))
    actions.append(ClickCounter.seen[lane].set(mark(tally.high)))
    actions.append(ClickCounter.seen_at[lane].set(clock.epoch()))
    return actions


def _update(key: Key, tally: Tally, lane: str, condition: Any) -> None:
    counter = ClickCounter(*key)
    try:
        counter.update(actions=_actions(tally, lane), condition=condition)
    except UpdateError as exc:
        if not _maps_missing(exc):
            raise
        _create(key)
        counter.update(actions=_actions(tally, lane), condition=condition)
    _forget_silent_lanes(counter, lane)


def _maps_missing(exc: UpdateError) -> bool:
    """A SET on `by_day.<day>` of an item that does not exist yet fails this way."""
    return (getattr(exc, "cause_response_code", None) == "ValidationException"
            and "document path" in (getattr(exc, "cause_response_message", None) or ""))


def _create(key: Key) -> None:
    try:
        ClickCounter(*key, total=0, by_day={}, by_channel={}, seen={}, seen_at={}).save(
            condition=ClickCounter.pk.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):  # created meanwhile by another lane: fine
            raise


def _forget_silent_lanes(counter: ClickCounter, lane: str) -> None:
    """Drop marks of lanes the stream can no longer redeliver from (the update returned the
    whole item, so finding them costs no read). Guarded on the lane's time being unchanged."""
    now = clock.epoch()
    stale = {name: at for name, at in (counter.seen_at.as_dict() if counter.seen_at else {}).items()
             if name != lane and now - int(at) > LANE_RETENTION_SECONDS}
    if not stale:
        return
    condition = None
    actions = []
    for name, at in stale.items():
        actions += [ClickCounter.seen[name].remove(), ClickCounter.seen_at[name].remove()]
        check = ClickCounter.seen_at[name] == at
        condition = check if condition is None else condition & check
    try:
        ClickCounter(counter.pk, counter.sk).update(actions=actions, condition=condition)
    except UpdateError as exc:
        if not condition_failed(exc):
            raise


def read(key: Key) -> dict[str, Any]:
    """`{total, by_day, by_channel}` of a counter (zeros when nothing was counted yet)."""
    try:
        counter = ClickCounter.get(*key)
    except ClickCounter.DoesNotExist:
        return {"total": 0, "by_day": {}, "by_channel": {}}
    return {"total": int(counter.total or 0),
            "by_day": {k: int(v) for k, v in (counter.by_day.as_dict() if counter.by_day else {}).items()},
            "by_channel": {k: int(v) for k, v in (counter.by_channel.as_dict() if counter.by_channel else {}).items()}}
