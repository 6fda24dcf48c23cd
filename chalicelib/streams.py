"""Decode DynamoDB stream records into `Change`s and hand each to the capability that owns
its item type. Handlers are registered per item type (`on_change("member")`).

Delivery is at least once and ordered only per item key, so every handler must be
idempotent (deterministic ids + conditional writes). On the first failure the rest of the
batch is reported as failed (`batchItemFailures`), which keeps per-key order: Lambda (and
the local poller) redeliver from the lowest failed sequence number. That answer counts only
where the mapping has ReportBatchItemFailures (event_sources.MAPPINGS); elsewhere Lambda would
read it as success and skip the records, so `process_batch` raises `BatchFailed` instead.

Batch handlers (`on_batch("clicks", "click")`) receive all of a batch's changes of one item
type at once, with the batch's `lane` (which stream shard they came from), so they can
aggregate: one write per counter per batch instead of one per record. They run after the
per-record handlers, on the records those handled; if one raises, the whole batch is
reported failed and comes again, so they must be exact under redelivery (see
referrals/counters.py: a per-lane high-water mark of sequence numbers).
"""
from __future__ import annotations

import hashlib
import importlib
import threading
import time
from datetime import datetime, timezone
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from .core import clock
from .core.logs import get_logger
from .event_sources import mapping_for_table

if TYPE_CHECKING:
    from pynamodb.models import Model

log = get_logger("streams")

ChangeHandler = Callable[["Change"], None]
BatchHandler = Callable[[list["Change"], "Batch"], None]
_handlers: dict[tuple[str, str], list[ChangeHandler]] = {}
_batch_handlers: dict[tuple[str, str], list[BatchHandler]] = {}
_sorted_count = 0  # handlers registered when load_handlers last put them in order
_load_lock = threading.Lock()

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


@dataclass
class Change:
    event: str  # INSERT | MODIFY | REMOVE
    item_type: str
    new: Any  # model instance or None
    old: Any
    sequence: str
    ttl_expired: bool  # a REMOVE made by TTL, not by our code
    recorded_at: str | None = None  # when the stream recorded the change (the same on every redelivery)
    replayed: bool = False  # out of order: re-driven from the failure store after later changes ran

    @property
    def item(self) -> Any:
        return self.new if self.new is not None else self.old


REDRIVE_LANE = "redrive:"  # shard ids of re-driven batches (stream_failures/service.py)


def latest(change: Change) -> Any:
    """The item as it stands, for handlers that mirror an item's state (scores, aggregates).

    In order (Lambda, the local poller, their retries) the new image is the latest one this
    handler sees next. A re-driven record may be older than changes already applied: its image
    would move a mirror back, so the item is read again (strongly consistent; None if gone)."""
    if not change.replayed:
        return change.new
    item = change.item
    try:
        return type(item).get(item.pk, item.sk, consistent_read=True)
    except type(item).DoesNotExist:
        return None


def latest_facts(changes: list[Change], fact_of: Callable[[Change], tuple[str, Any] | None]) -> dict[str, Any]:
    """A batch's facts by id, each from the last of its changes (one key's records arrive in
    stream order), for mirrors that apply a whole batch at once."""
    facts: dict[str, Any] = {}
    for change in changes:
        fact = fact_of(change)
        if fact is not None:
            facts.pop(fact[0], None)
            facts[fact[0]] = fact[1]
    return facts


@dataclass(frozen=True)
class Batch:
    """Where a batch came from. `lane` names the stream shard: Lambda (and the local poller)
    put `shardId` in the event only when the mapping has a tumbling window; without it the lane
    is the stream ARN alone, which is exact only while one shard of the stream is processed at a
    time (see referrals/counters.py)."""

    table: str
    lane: str
    shard_id: str | None = None


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record → the shape Lambda delivers (plain JSON: times as epoch seconds,
    the stream ARN on each record)."""
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime")
    if hasattr(created, "timestamp"):
        data["ApproximateCreationDateTime"] = created.timestamp()
    elif created is None:
        data["ApproximateCreationDateTime"] = time.time()
    out = {k: v for k, v in record.items() if k != "dynamodb"}
    out.update(dynamodb=data, eventSourceARN=stream_arn, awsRegion=record.get("awsRegion", region))
    return out


def lane_of(records: list[dict[str, Any]], shard_id: str | None) -> str:
    """A short stable id for (stream ARN, shard): it becomes a map key on counter items."""
    arn = (records[0].get("eventSourceARN") or "") if records else ""
    return hashlib.sha256(f"{arn}|{shard_id or ''}".encode()).hexdigest()[:16]


def on_batch(table: str, item_type: str) -> Callable[[BatchHandler], BatchHandler]:
    """Register `fn(changes, batch)` for the changes of `item_type` in each batch of `table`."""

    def register(fn: BatchHandler) -> BatchHandler:
        _batch_handlers.setdefault((table, item_type), []).append(fn)
        return fn

    return register


def on_change(table: str, item_type: str) -> Callable[[ChangeHandler], ChangeHandler]:
    def register(fn: ChangeHandler) -> ChangeHandler:
        _handlers.setdefault((table, item_type), []).append(fn)
        return fn

    return register


def load_handlers(table: str | None = None) -> None:
    """Import the handler modules (each registers its handlers) of `table`'s stream, or all:
    on a stream function's first batch, not at `import app` (chalicelib/stream_handlers.py)."""
    from .stream_handlers import MODULES, for_table

    with _load_lock:  # a shard's lanes may take their first batches side by side
        for module in for_table(table):
            importlib.import_module(module)
        # Routes modules import some handler modules too, so the import order varies with the first
        # requests: keep the order the handlers always ran in (the list's, then the source's).
        global _sorted_count
        count = sum(map(len, _handlers.values())) + sum(map(len, _batch_handlers.values()))
        if count != _sorted_count:
            rank = {module: position for position, module in enumerate(MODULES)}

            def place(fn: Callable) -> tuple[int, int]:
                return rank.get(fn.__module__, len(rank)), fn.__code__.co_firstlineno

            for registry in (_handlers, _batch_handlers):
                ordered = sorted(registry.items(), key=lambda item: min(map(place, item[1])))
                registry.clear()
                registry.update((key, sorted(handlers, key=place)) for key, handlers in ordered)
            _sorted_count = count


def handlers_for(table: str, item_type: str) -> list[ChangeHandler]:
    return _handlers.get((table, item_type), [])


def _image(root: type[Model], raw: dict[str, Any] | None) -> Any:
    if not raw:
        return None
    try:
        return root.from_raw_data(raw)
    except Exception:  # an item of a type this code does not know: nothing to do
        return None


def item_type_of(record: dict[str, Any]) -> str:
    data = record["dynamodb"]
    raw = data.get("NewImage") or data.get("OldImage") or {}
    return (raw.get("type") or {}).get("S", "")


def handled(table: str, item_type: str) -> bool:
    """Whether any handler reads this item type's records (more than half of a purchase's
    records are aggregates nobody follows, and decoding an image is a model built per attribute)."""
    return bool(_handlers.get((table, item_type)) or _batch_handlers.get((table, item_type)))


def decode(root: type[Model], record: dict[str, Any]) -> Change:
    data = record["dynamodb"]
    identity = record.get("userIdentity") or {}
    return Change(
        event=record["eventName"],
        item_type=item_type_of(record),
        new=_image(root, data.get("NewImage")),
        old=_image(root, data.get("OldImage")),
        sequence=data["SequenceNumber"],
        ttl_expired=identity.get("principalId") == TTL_PRINCIPAL,
        recorded_at=_recorded_at(data.get("ApproximateCreationDateTime")),
    )


def _recorded_at(value: Any) -> str | None:
    if value is None:
        return None
    moment = value if hasattr(value, "timestamp") else datetime.fromtimestamp(float(value), timezone.utc)
    return clock.iso(moment)


class BatchFailed(Exception):
    """Raised instead of answering `batchItemFailures` when the mapping does not read that
    answer: Lambda would take the list as success and skip the failed records, so the batch
    must fail as a whole and come again (see event_sources.StreamMapping)."""

    def __init__(self, table: str, failed: list[str], error: str):
        super().__init__(f"{table}: {len(failed)} record(s) from sequence {failed[0]} not processed: {error}")
        self.failed, self.error = failed, error


@dataclass
class Outcome:
    """What became of a batch: the sequence numbers to deliver again (the first failed record
    and everything after it), and the first error, for logs and the failure store."""

    failed: list[str]
    error: str | None = None


def run_records(table: str, root: type[Model], records: Iterable[dict[str, Any]],
                shard_id: str | None = None) -> Outcome:
    """Run the handlers of every record, then the batch handlers."""
    load_handlers(table)
    records = list(records)
    failed_at, error = len(records), None
    changes: list[Change] = []
    for position, record in enumerate(records):
        if not handled(table, item_type_of(record)):
            continue
        try:
            change = decode(root, record)
            change.replayed = bool(shard_id and shard_id.startswith(REDRIVE_LANE))
            for handler in handlers_for(table, change.item_type):
                handler(change)
        except Exception as exc:
            log.exception("stream record failed", extra={"table": table,
                                                         "sequence": record["dynamodb"]["SequenceNumber"]})
            failed_at, error = position, _describe(exc)
            break
        changes.append(change)
    if changes:
        batch_error = _run_batch_handlers(table, changes, Batch(table, lane_of(records, shard_id), shard_id))
        if batch_error:  # batch handlers are exact under redelivery: the whole batch comes again
            failed_at, error = 0, error or batch_error
    return Outcome([r["dynamodb"]["SequenceNumber"] for r in records[failed_at:]], error)


def process_batch(table: str, root: type[Model], records: Iterable[dict[str, Any]],
                  shard_id: str | None = None) -> dict[str, Any]:
    """A stream function's answer under its mapping (event_sources.MAPPINGS): the partial-batch
    response when the mapping reports item failures, else success or `BatchFailed`.

    A batch that failed from its first record raises too: the answer would mean the same
    (retry all), but only an error lets a bisecting mapping split the batch and isolate a
    poison record instead of retiring the good records behind it with it."""
    records = list(records)
    outcome = run_records(table, root, records, shard_id)
    whole = len(outcome.failed) == len(records)
    if outcome.failed and (whole or not mapping_for_table(table).report_batch_item_failures):
        raise BatchFailed(table, outcome.failed, outcome.error or "failed")
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in outcome.failed]}


def process_event(table: str, root: type[Model], event: dict[str, Any]) -> dict[str, Any]:
    """`process_batch` for a whole Lambda event: takes the shard id a tumbling-window mapping
    sends, and answers with the `state` such a mapping requires (else Lambda counts a failure)."""
    result = process_batch(table, root, event.get("Records") or [], shard_id=event.get("shardId"))
    if "window" in event:
        result["state"] = {}
    return result


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _run_batch_handlers(table: str, changes: list[Change], batch: Batch) -> str | None:
    """Run the batch handlers; the first error, or None."""
    for (handled_table, item_type), handlers in _batch_handlers.items():
        if handled_table != table:
            continue
        selected = [c for c in changes if c.item_type == item_type]
        if not selected:
            continue
        try:
            for handler in handlers:
                handler(selected, batch)
        except Exception as exc:
            log.exception("stream batch handler failed", extra={"table": table, "item_type": item_type,
                                                               "records": len(selected)})
            return _describe(exc)
    return None
