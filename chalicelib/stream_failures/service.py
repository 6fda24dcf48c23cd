"""Failed stream batches: stored from the failure destination, listed and re-driven by ops.

The failure message names a shard and a sequence range only; the records are read back from
the stream at once (it keeps them 24 h) and copied into the control table for `KEEP_DAYS`.
Re-driving runs them through the same handlers again: harmless for whatever already took
effect, since every handler is idempotent.
"""
from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from ..core import aws, clock
from ..core.config import logical_table_of, settings
from ..core.errors import NotFound
from ..core.logs import get_logger
from ..core.pagination import PageQuery, page
from ..store.base import ROOTS, condition_failed
from .. import streams
from ..i18n import t
from .models import LIST_PK, FailedRecord, StreamFailure
from .rules import KEEP_DAYS, BatchInfo

log = get_logger("stream_failures")

MAX_EMPTY_READS = 5  # an open shard answers empty pages at its end; stop there


def receive(event: dict[str, Any]) -> int:
    """The failure queue's SQS event: store each batch it names. Returns how many were stored.
    Raises on a storage error so SQS delivers the messages again (storing is idempotent)."""
    stored = 0
    for message in event.get("Records") or []:
        try:
            info = BatchInfo.from_message(json.loads(message.get("body") or ""))
        except (KeyError, ValueError, TypeError):
            log.error("not a stream failure message; dropped", extra={"message_id": message.get("messageId")})
            continue
        stored += store(info)
    return stored


def store(info: BatchInfo) -> int:
    """Copy the batch's records and record the failure, once. Returns 1 if it was new."""
    failure_id = info.failure_id
    try:
        StreamFailure.get(*StreamFailure.key(failure_id), consistent_read=True)
        return 0  # a redelivered message: already stored (and maybe already re-driven)
    except StreamFailure.DoesNotExist:
        pass
    expires_at = clock.epoch(clock.now() + timedelta(days=KEEP_DAYS))
    fetch_error = None
    try:
        records = read_range(info)
    except Exception as exc:  # trimmed or expired: keep the failure visible all the same
        log.exception("stream failure: records not readable", extra={"failure_id": failure_id})
        records, fetch_error = [], f"{type(exc).__name__}: {exc}"[:500]
    with FailedRecord.batch_write() as batch:
        for record in records:
            batch.save(FailedRecord.of(failure_id, record, expires_at))
    pk, sk = StreamFailure.key(failure_id)
    failure = StreamFailure(
        pk, sk, failure_id=failure_id, function=info.function, table=logical_table_of(info.stream_arn),
        stream_arn=info.stream_arn, shard_id=info.shard_id, start_sequence=info.start_sequence,
        end_sequence=info.end_sequence, batch_size=info.batch_size, condition=info.condition,
        first_arrival=info.first_arrival, received_at=clock.now_iso(), records=len(records),
        fetch_error=fetch_error, expires_at=expires_at)
    try:
        failure.save(condition=StreamFailure.pk.does_not_exist())
    except Exception as exc:
        if condition_failed(exc):
            return 0
        raise
    log.error("stream batch stored for re-drive", extra={"failure_id": failure_id, "records": len(records),
                                                          "condition": info.condition})
    return 1


def read_range(info: BatchInfo) -> list[dict[str, Any]]:
    """The records from `start_sequence` to `end_sequence` of the shard, as Lambda delivers them."""
    client = aws.streams()
    iterator = client.get_shard_iterator(StreamArn=info.stream_arn, ShardId=info.shard_id,
                                         ShardIteratorType="AT_SEQUENCE_NUMBER",
                                         SequenceNumber=info.start_sequence)["ShardIterator"]
    records: list[dict[str, Any]] = []
    empty = 0
    while iterator and len(records) < info.batch_size and empty < MAX_EMPTY_READS:
        response = client.get_records(ShardIterator=iterator, Limit=1000)
        page_records = response.get("Records", [])
        empty = 0 if page_records else empty + 1
        for record in page_records:
            sequence = record["dynamodb"]["SequenceNumber"]
            if int(sequence) > int(info.end_sequence):
                return records
            if info.holds(sequence):
                records.append(streams.lambda_record(record, info.stream_arn, settings().region))
        iterator = response.get("NextShardIterator")
    return records


def list_failures(query: PageQuery) -> dict[str, Any]:
    now = clock.epoch()
    return page(StreamFailure.query, query, "stream-failures", render, hash_key=LIST_PK,
                range_key_condition=StreamFailure.sk.startswith("F#"), scan_index_forward=False,
                filter_condition=StreamFailure.expires_at > now)  # TTL deletes lag (up to 48 h)


def get(failure_id: str) -> dict[str, Any]:
    failure = _get(failure_id)
    return {**render(failure), "records": [_summary(item.record) for item in _records(failure_id)]}


def redrive(failure_id: str, by: str) -> dict[str, Any]:
    """Run the stored records through their handlers again. A failure that fails again stays
    `failed`, with the error; one that was re-driven already is answered as it stands."""
    failure = _get(failure_id)
    if failure.status == "redriven":
        return render(failure)
    records = [item.record for item in _records(failure_id)]
    if not records:
        error = failure.fetch_error or "no records were stored for this failure"
    else:
        # Its own lane: the shard's counters moved past these records while they waited.
        outcome = streams.run_records(failure.table, ROOTS[failure.table], records,
                                      shard_id=f"{streams.REDRIVE_LANE}{failure_id}")
        error = outcome.error if outcome.failed else None
    actions = [StreamFailure.redrives.add(1)]
    if error:
        actions.append(StreamFailure.last_error.set(error))
    else:
        actions += [StreamFailure.status.set("redriven"), StreamFailure.redriven_at.set(clock.now_iso()),
                    StreamFailure.last_error.remove()]
    failure.update(actions=actions)
    log.warning("stream failure re-driven", extra={"failure_id": failure_id, "by": by, "ok": not error})
    return render(failure)


def _get(failure_id: str) -> StreamFailure:
    try:
        failure = StreamFailure.get(*StreamFailure.key(failure_id), consistent_read=True)
    except StreamFailure.DoesNotExist:
        failure = None
    if failure is None or (failure.expires_at or 0) <= clock.epoch():
        raise NotFound(t("no such stream failure"), code="stream_failure_not_found",
                       details={"failure_id": failure_id})
    return failure


def _records(failure_id: str) -> list[FailedRecord]:
    return list(FailedRecord.query(f"{LIST_PK}#{failure_id}", consistent_read=True))


def _summary(record: dict[str, Any]) -> dict[str, Any]:
    data = record.get("dynamodb") or {}
    image = data.get("NewImage") or data.get("OldImage") or {}
    return {"sequence": data.get("SequenceNumber"), "event": record.get("eventName"),
            "keys": data.get("Keys"), "item_type": (image.get("type") or {}).get("S")}


def render(failure: StreamFailure) -> dict[str, Any]:
    return {
        "failure_id": failure.failure_id, "function": failure.function, "table": failure.table,
        "shard_id": failure.shard_id, "start_sequence": failure.start_sequence,
        "end_sequence": failure.end_sequence, "batch_size": int(failure.batch_size),
        "condition": failure.condition, "first_arrival": failure.first_arrival,
        "received_at": failure.received_at, "record_count": int(failure.records or 0),
        "fetch_error": failure.fetch_error, "status": failure.status, "last_error": failure.last_error,
        "redrives": int(failure.redrives or 0), "redriven_at": failure.redriven_at,
    }
