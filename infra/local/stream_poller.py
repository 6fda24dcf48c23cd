"""Lambda's DynamoDB event source mapping, as far as it matters here, for DynamoDB Local
(and moto): read every shard of every table stream, hand batches to the very functions
registered with `@app.on_dynamodb_record`, checkpoint a shard only after its batch succeeded,
retry a failed batch with backoff.

- Shards are discovered with DescribeStream on every round, so splits are followed; a child
  shard is read only once its parent is finished (per-key order across a split).
- A handler may answer `{"batchItemFailures": [...]}` (ReportBatchItemFailures): the shard is
  checkpointed just before the lowest failed record, and everything after it is delivered
  again, successes included — as Lambda does. An exception fails the whole batch.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from chalice.app import DynamoDBEventConfig

from chalicelib.core.config import logical_table_of
from chalicelib.core.logs import get_logger

log = get_logger("local.streams")

MAX_BACKOFF_SECONDS = 30.0


class Checkpoints:
    """Last processed sequence number per shard; in memory, or persisted in a JSON file."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.values: dict[str, str] = {}
        if path and path.exists():
            self.values = json.loads(path.read_text())

    def get(self, shard_key: str) -> str | None:
        return self.values.get(shard_key)

    def set(self, shard_key: str, sequence: str) -> None:
        self.values[shard_key] = sequence
        if self.path:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.values))
            tmp.replace(self.path)


@dataclass
class Shard:
    stream_arn: str
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    finished: bool = False
    failures: int = 0
    retry_at: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.stream_arn}|{self.shard_id}"


@dataclass
class Source:
    function_name: str
    table: str
    table_name: str
    batch_size: int
    starting_position: str
    stream_arn: str = ""
    shards: dict[str, Shard] = field(default_factory=dict)


class StreamPoller:
    def __init__(self, app: Any, ddb: Any, streams: Any, table_name: Callable[[str], str],
                 checkpoints: Checkpoints | None = None, invoke: Callable[[str, dict], Any] | None = None,
                 region: str = "us-east-1"):
        self.app, self.ddb, self.streams, self.region = app, ddb, streams, region
        self.checkpoints = checkpoints or Checkpoints()
        self._invoke = invoke or (lambda name, event: app.handler_map[name](event, _Context(name)))
        self.sources = [
            Source(source.name, logical_table_of(source.stream_arn), table_name(logical_table_of(source.stream_arn)),
                   source.batch_size, source.starting_position)
            for source in app.event_sources if isinstance(source, DynamoDBEventConfig)
        ]

    # -- discovery -----------------------------------------------------------------------
    def _refresh(self, source: Source) -> None:
        arn = self.ddb.describe_table(TableName=source.table_name)["Table"]["LatestStreamArn"]
        if arn != source.stream_arn:  # the table was recreated: a new stream
            source.stream_arn, source.shards = arn, {}
        start: str | None = None
        while True:
            kwargs = {"StreamArn": arn, **({"ExclusiveStartShardId": start} if start else {})}
            description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            for raw in description.get("Shards", []):
                if raw["ShardId"] not in source.shards:
                    source.shards[raw["ShardId"]] = Shard(arn, raw["ShardId"], raw.get("ParentShardId"))
            start = description.get("LastEvaluatedShardId")
            if not start:
                break

    def _ready(self, source: Source, shard: Shard) -> bool:
        parent = source.shards.get(shard.parent_id) if shard.parent_id else None
        return not shard.finished and (parent is None or parent.finished) and time.monotonic() >= shard.retry_at

    def _iterator(self, source: Source, shard: Shard) -> str:
        if shard.iterator:
            return shard.iterator
        checkpoint = self.checkpoints.get(shard.key)
        kwargs: dict[str, Any] = {"StreamArn": shard.stream_arn, "ShardId": shard.shard_id}
        if checkpoint:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=checkpoint)
        else:
            kwargs["ShardIteratorType"] = source.starting_position
        return self.streams.get_shard_iterator(**kwargs)["ShardIterator"]

    # -- delivery ------------------------------------------------------------------------
    def poll_once(self) -> int:
        """One round over every ready shard. Returns how many records were delivered."""
        delivered = 0
        for source in self.sources:
            self._refresh(source)
            for shard in list(source.shards.values()):
                if self._ready(source, shard):
                    delivered += self._poll_shard(source, shard)
        return delivered

    def _get_records(self, source: Source, shard: Shard) -> dict:
        try:
            return self.streams.get_records(ShardIterator=self._iterator(source, shard), Limit=source.batch_size)
        except self.streams.exceptions.ClientError as exc:
            # An iterator taken on an empty shard can go stale once records arrive (DynamoDB Local
            # answers TrimmedDataAccessException), and iterators expire after 15 minutes: take a
            # fresh one from the checkpoint and read again.
            if exc.response.get("Error", {}).get("Code") not in ("TrimmedDataAccessException",
                                                                  "ExpiredIteratorException"):
                raise
            shard.iterator = None
            return self.streams.get_records(ShardIterator=self._iterator(source, shard), Limit=source.batch_size)

    def _poll_shard(self, source: Source, shard: Shard) -> int:
        response = self._get_records(source, shard)
        records = response.get("Records", [])
        if not records:
            shard.iterator = response.get("NextShardIterator")
            shard.finished = shard.iterator is None
            return 0
        # `shardId` is what Lambda adds for tumbling-window mappings; batch handlers key on it.
        event = {"Records": [self._lambda_record(record, shard.stream_arn) for record in records],
                 "shardId": shard.shard_id}
        failed_from = self._deliver(source, event)
        if failed_from is None:
            self.checkpoints.set(shard.key, records[-1]["dynamodb"]["SequenceNumber"])
            shard.iterator, shard.failures, shard.retry_at = response.get("NextShardIterator"), 0, 0.0
            shard.finished = shard.iterator is None
            return len(records)
        # Checkpoint just before the lowest failed record; re-read from there after a backoff.
        done = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) < failed_from]
        if done:
            self.checkpoints.set(shard.key, done[-1]["dynamodb"]["SequenceNumber"])
        shard.iterator = None
        shard.failures += 1
        backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (shard.failures - 1))
        shard.retry_at = time.monotonic() + backoff
        log.warning("stream batch failed; will retry", extra={"function": source.function_name,
                    "shard": shard.shard_id, "attempt": shard.failures, "backoff_s": backoff,
                    "records": len(records), "delivered_ok": len(done)})
        return len(records)

    def _deliver(self, source: Source, event: dict) -> int | None:
        """Invoke the handler; return the lowest failed sequence number, or None on success."""
        try:
            result = self._invoke(source.function_name, event)
        except Exception:
            log.exception("stream handler raised", extra={"function": source.function_name})
            return int(event["Records"][0]["dynamodb"]["SequenceNumber"])
        failures = (result or {}).get("batchItemFailures") if isinstance(result, dict) else None
        if failures:
            return min(int(f["itemIdentifier"]) for f in failures)
        return None

    def _lambda_record(self, record: dict, stream_arn: str) -> dict:
        """GetRecords output → the record shape Lambda delivers."""
        data = dict(record["dynamodb"])
        created = data.get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            data["ApproximateCreationDateTime"] = created.timestamp()
        elif created is None:
            data["ApproximateCreationDateTime"] = time.time()
        out = {k: v for k, v in record.items() if k != "dynamodb"}
        out.update(dynamodb=data, eventSourceARN=stream_arn, awsRegion=record.get("awsRegion", self.region))
        return out

    def replay_from_start(self) -> None:
        """Forget every checkpoint, as after a lost checkpoint store: the next round delivers
        every record still in the stream again, successes included."""
        self.checkpoints.values.clear()
        for source in self.sources:
            for shard in source.shards.values():
                shard.iterator, shard.finished = None, False

    # -- loops ---------------------------------------------------------------------------
    def drain(self, max_rounds: int = 50, ignore_backoff: bool = False) -> int:
        """Poll until a round delivers nothing (tests, and the simulator's settle step)."""
        total = 0
        for _ in range(max_rounds):
            if ignore_backoff:
                for source in self.sources:
                    for shard in source.shards.values():
                        shard.retry_at = 0.0
            delivered = self.poll_once()
            total += delivered
            if delivered == 0:
                return total
        return total

    def run(self, stop: threading.Event, idle_sleep: float = 0.25) -> None:
        while not stop.is_set():
            try:
                delivered = self.poll_once()
            except Exception:
                log.exception("stream poll round failed")
                delivered = 0
            if not delivered:
                stop.wait(idle_sleep)


class _Context:
    """The bits of a Lambda context that handlers may read."""

    def __init__(self, name: str):
        self.function_name = name
        self.aws_request_id = f"local-{time.time_ns()}"
        self.memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
