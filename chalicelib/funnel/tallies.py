"""Clicks, visitors and advocates, aggregated per stream batch (never a write per click).

One `DaySketch` item per (campaign, day, channel, kind, shard), read, merged and put back whole,
conditioned on its `version` (a conflict reads again and merges again):

- clicks (`c`): the clicks stream's INSERTs (TTL removals are not clicks). The count is exact
  under redelivery the way referrals/counters.py is: the item keeps, per stream lane, the highest
  sequence number applied, and only records above it are added. The lane's shard is
  crc32(lane) % SHARDS, so parallel stream shards write different items. The visitors' sketch
  (click fingerprints) needs no mark: a HyperLogLog merge is idempotent.
- advocates (`a`): the members who created a share link (main stream Link INSERTs). Only a
  sketch, so any shard will do; the main stream's batches carry no shard id, so the item is
  picked from the batch's first sequence number.

A day's items stop changing once the stream has delivered that day's records, so the `seen` map
holds only the lanes of that day. Cost per batch and cell: 1 consistent GetItem + 1 PutItem of
the item (about 0.1 to 1.2 KB: 1 or 2 WRU).
"""
from __future__ import annotations

import zlib
from collections import defaultdict
from typing import Iterable

from pynamodb.exceptions import PutError

from ..campaigns import service as campaigns
from ..referrals.counters import mark
from ..store.base import condition_failed
from ..streams import Batch, Change, on_batch
from . import hll, rules
from .models import DaySketch

MAX_CONFLICTS = 8




@on_batch("clicks", "click")
def tally_clicks(changes: list[Change], batch: Batch) -> None:
    groups: dict[rules.Cell, list[tuple[int, str]]] = defaultdict(list)
    for change in changes:
        click = change.new
        if change.event != "INSERT" or click is None or not click.campaign_id:
            continue
        day = click.day or rules.day_of(click.at, campaigns.zone_of(click.campaign_id))
        groups[(click.campaign_id, day, click.channel or "other")].append(
            (int(change.sequence), click.fingerprint or click.click_id))
    shard = zlib.crc32(batch.lane.encode()) % rules.SHARDS
    for cell, records in groups.items():
        merge(cell, "c", shard, records, lane=batch.lane)


@on_batch("main", "link")
def sketch_advocates(changes: list[Change], batch: Batch) -> None:
    groups: dict[rules.Cell, list[tuple[int, str]]] = defaultdict(list)
    for change in changes:
        link = change.new
        if change.event != "INSERT" or link is None:
            continue
        day = rules.day_of(link.created_at, campaigns.zone_of(link.campaign_id))
        groups[(link.campaign_id, day, link.channel)].append((int(change.sequence), link.member_id))
    if groups:
        shard = rules.shard_of(str(min(s for records in groups.values() for s, _ in records)))
        for cell, records in groups.items():
            merge(cell, "a", shard, records)


def merge(cell: rules.Cell, kind: str, shard: int, records: list[tuple[int, str]], lane: str | None = None) -> None:
    """Add `records` (sequence, value) to the sketch item; with a `lane`, also count them, each
    once (only those above the lane's mark)."""
    campaign_id, day, channel = cell
    key = (rules.partition(campaign_id, shard), rules.sort_key(day, channel, kind))
    for _ in range(MAX_CONFLICTS):
        item = _read(key)
        seen = (item.seen.as_dict() if item and item.seen else {})
        fresh = records if lane is None or lane not in seen else [r for r in records if mark(r[0]) > seen[lane]]
        registers = hll.unpack(item.registers if item else None)
        merged = hll.add(registers, _values(fresh))
        clicks = int(item.clicks or 0) if item else 0
        if lane is not None and fresh:
            clicks += len(fresh)
            seen[lane] = mark(max(s for s, _ in fresh))
        if merged == registers and (lane is None or not fresh):
            return  # nothing new: a redelivery
        version = int(item.version) if item else 0
        try:
            DaySketch(*key, clicks=clicks, registers=hll.pack(merged), seen=seen, version=version + 1).save(
                condition=(DaySketch.version == version) if item else DaySketch.pk.does_not_exist())
            return
        except PutError as exc:
            if not condition_failed(exc):
                raise
    raise RuntimeError(f"could not merge into {key}: kept conflicting")


def _values(records: Iterable[tuple[int, str]]) -> list[str]:
    return [value for _, value in records]


def _read(key: tuple[str, str]) -> DaySketch | None:
    try:
        return DaySketch.get(*key, consistent_read=True)
    except DaySketch.DoesNotExist:
        return None
