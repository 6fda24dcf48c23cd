"""Pure rules for failed stream batches: their identity and the message that names them."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..core.clock import parse

KEEP_DAYS = 14  # long enough for ops to look after a holiday; the records are copied, not referenced


@dataclass(frozen=True)
class BatchInfo:
    """`DDBStreamBatchInfo` of Lambda's on-failure message (SQS body), plus its context."""

    stream_arn: str
    shard_id: str
    start_sequence: str
    end_sequence: str
    batch_size: int
    first_arrival: str
    function: str
    condition: str

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "BatchInfo":
        """Raises KeyError/ValueError/TypeError for a message that is not an on-failure record."""
        info = message["DDBStreamBatchInfo"]
        context = message.get("requestContext") or {}
        return cls(
            stream_arn=str(info["streamArn"]),
            shard_id=str(info["shardId"]),
            start_sequence=_sequence(info["startSequenceNumber"]),
            end_sequence=_sequence(info["endSequenceNumber"]),
            batch_size=int(info["batchSize"]),
            first_arrival=str(info.get("approximateArrivalOfFirstRecord") or message.get("timestamp") or ""),
            function=str(context.get("functionArn", "")).rsplit(":", 1)[-1],
            condition=str(context.get("condition", "")),
        )

    @property
    def failure_id(self) -> str:
        """Deterministic: a redelivered message (or the same batch reported twice) is one failure.
        Starts with the first record's arrival so ids sort by time.

        >>> BatchInfo("arn", "s1", "100", "105", 6, "2026-11-23T08:00:00Z", "f", "c").failure_id[:16]
        '20261123T080000Z'
        """
        digest = hashlib.sha256(f"{self.stream_arn}|{self.shard_id}|{self.start_sequence}|{self.end_sequence}"
                                .encode()).hexdigest()[:12]
        try:
            stamp = parse(self.first_arrival).strftime("%Y%m%dT%H%M%SZ")
        except ValueError:
            stamp = "00000000T000000Z"
        return f"{stamp}-{digest}"

    def holds(self, sequence: str) -> bool:
        return int(self.start_sequence) <= int(sequence) <= int(self.end_sequence)


def _sequence(value: object) -> str:
    """A sequence number exactly as the stream spells it (DynamoDB Local pads it with zeros,
    and GetShardIterator wants it verbatim); it must be digits."""
    text = str(value)
    if not text.isdigit():
        raise ValueError(f"not a sequence number: {text!r}")
    return text
