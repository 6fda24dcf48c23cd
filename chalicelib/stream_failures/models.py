"""Stream batches that Lambda (or the local poller) gave up on, kept for ops to see and re-drive.

Access patterns (control table: no stream, so storing a failure wakes no handler):
- failures, newest first: Query pk=STREAMFAIL, sk begins_with F# (descending; ids start with
  the batch's first arrival time). Few items by nature: one partition is plenty.
- a failure: GetItem pk=STREAMFAIL, sk=F#<failure_id>
- its records, in stream order: Query pk=STREAMFAIL#<failure_id> (sk R#<40-digit sequence>)
"""
from __future__ import annotations

import json
import zlib
from typing import Any

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute

from ..store.base import ControlItem

LIST_PK = "STREAMFAIL"


class StreamFailure(ControlItem, discriminator="stream_failure"):
    failure_id = UnicodeAttribute()
    function = UnicodeAttribute()
    table = UnicodeAttribute()  # logical: main | clicks
    stream_arn = UnicodeAttribute()
    shard_id = UnicodeAttribute()
    start_sequence = UnicodeAttribute()
    end_sequence = UnicodeAttribute()
    batch_size = NumberAttribute()
    condition = UnicodeAttribute()  # RetryAttemptsExhausted | RecordAgeExceeded | …
    first_arrival = UnicodeAttribute()
    received_at = UnicodeAttribute()
    records = NumberAttribute(default=0)  # how many were read back from the stream
    fetch_error = UnicodeAttribute(null=True)  # the records could not be read (e.g. trimmed)
    status = UnicodeAttribute(default="failed")  # failed | redriven
    last_error = UnicodeAttribute(null=True)
    redrives = NumberAttribute(default=0)
    redriven_at = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, failure_id: str) -> tuple[str, str]:
        return LIST_PK, f"F#{failure_id}"


class FailedRecord(ControlItem, discriminator="stream_failure_record"):
    """One stream record as Lambda delivered it, compressed (a record with both images of a
    large item would not fit an item uncompressed)."""

    failure_id = UnicodeAttribute()
    sequence = UnicodeAttribute()
    data = BinaryAttribute(legacy_encoding=False)

    @classmethod
    def key(cls, failure_id: str, sequence: str) -> tuple[str, str]:
        return f"{LIST_PK}#{failure_id}", f"R#{int(sequence):040d}"

    @classmethod
    def of(cls, failure_id: str, record: dict[str, Any], expires_at: int) -> "FailedRecord":
        sequence = record["dynamodb"]["SequenceNumber"]
        pk, sk = cls.key(failure_id, sequence)
        return cls(pk, sk, failure_id=failure_id, sequence=sequence, expires_at=expires_at,
                   data=zlib.compress(json.dumps(record, separators=(",", ":")).encode()))

    @property
    def record(self) -> dict[str, Any]:
        return json.loads(zlib.decompress(self.data))
