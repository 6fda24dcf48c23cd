"""Lambda's DynamoDB event source mapping, as far as it matters here, for DynamoDB Local
(and moto): read every shard of every table stream, hand batches to the very functions
registered with `@app.on_dynamodb_record`, checkpoint a shard only after its batch succeeded,
retry a failed batch with backoff. Every setting comes from `chalicelib.event_sources.MAPPINGS`,
the declaration the AWS template is generated from:

- Shards are discovered with DescribeStream (every round when draining, once a second when
  running), so splits are followed; a child shard is read only once its parent is finished
  (per-key order across a split).
- `report_batch_item_failures`: a `{"batchItemFailures": [...]}` answer checkpoints the shard
  just before the lowest failed record, and everything after it is delivered again, successes
  included. Without the setting the answer is ignored (the batch counts as a success), as
  Lambda ignores it. An exception fails the whole batch.
- `bisect_batch_on_error`: a batch whose invocation raised is split in two and the halves
  delivered in order (no retry used); a single record is retried.
- `maximum_retry_attempts`, `maximum_record_age_seconds`: then the batch goes to the failure
  destination — the on-failure message Lambda sends to SQS, delivered as an SQS event to the
  function subscribed to the failure queue (`FAILURE_QUEUE_PLACEHOLDER_ARN`) — and the shard is checkpointed past it.
- `tumbling_window_seconds`: events carry `shardId`, `window` and `state`, and a batch never
  spans two windows; without it they carry `Records` only.
- `parallelization_factor` N: a shard's records are dealt into N lanes by a hash of their
  item's keys (Lambda keeps order per item: partition and sort key), so one item's records
  stay in one lane, in order; the lanes' head batches are
  invoked side by side (in turn under moto: `run_lanes`), and each lane fails, bisects, retries
  and gives up on its own. The shard's checkpoint only moves past a record once every record
  before it is settled, whatever lane it is in.
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from chalice.app import DynamoDBEventConfig, SQSEventConfig

from chalicelib.core.config import logical_table_of
from chalicelib.core.logs import get_logger
from chalicelib.streams import lambda_record
from chalicelib.event_sources import FAILURE_QUEUE_PLACEHOLDER_ARN, MAPPINGS, StreamMapping, reads_failure_queue

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
class Lane:
    """One of a shard's `parallelization_factor` concurrent batch sequences."""
    failures: int = 0  # failed invocations of the current head batch (retries used)
    retry_at: float = 0.0
    # Records read but not yet settled, as the batches still to deliver (bisect splits the head).
    pending: list[list[dict]] = field(default_factory=list)


@dataclass
class Shard:
    stream_arn: str
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    finished: bool = False
    lanes: list[Lane] = field(default_factory=lambda: [Lane()])
    # The records read and not yet behind the checkpoint, in stream order, and those of them
    # settled (processed or handed to the failure destination) by whatever lane.
    unsettled: list[dict] = field(default_factory=list)
    settled: set[int] = field(default_factory=set)

    @property
    def key(self) -> str:
        return f"{self.stream_arn}|{self.shard_id}"

    @property
    def pending(self) -> bool:
        return any(lane.pending for lane in self.lanes)

    @property
    def failures(self) -> int:
        """Retries used by the shard's worst lane (0: nothing is waiting on a backoff)."""
        return max(lane.failures for lane in self.lanes)


@dataclass
class Source:
    function_name: str
    table: str
    table_name: str
    stream_arn: str = ""
    shards: dict[str, Shard] = field(default_factory=dict)

    @property
    def mapping(self) -> StreamMapping:
        """Read on every use: the declaration is the one place these settings live."""
        return MAPPINGS[self.function_name]


class StreamPoller:
    def __init__(self, app: Any, ddb: Any, streams: Any, table_name: Callable[[str], str],
                 checkpoints: Checkpoints | None = None, invoke: Callable[[str, dict], Any] | None = None,
                 region: str = "us-east-1", now: Callable[[], float] = time.time):
        self.app, self.ddb, self.streams, self.region, self.now = app, ddb, streams, region, now
        self.monotonic: Callable[[], float] = time.monotonic  # the backoff clock (tests hold it still)
        self.checkpoints = checkpoints or Checkpoints()
        self.lock = threading.Lock()
        self.lane_cpu_seconds = 0.0  # CPU used by lanes run on the worker threads
        self._discovered_at = self._described_at = float("-inf")  # `poll_paced`: never yet
        self._workers: ThreadPoolExecutor | None = None
        self._invoke = invoke or (lambda name, event: app.handler_map[name](event, LambdaContext(name)))
        self.sources = [
            Source(source.name, logical_table_of(source.stream_arn), table_name(logical_table_of(source.stream_arn)))
            for source in app.event_sources if isinstance(source, DynamoDBEventConfig)
        ]
        # The function subscribed to the failure queue (SQS on AWS; here it is invoked directly).
        self.failure_function = next((source.name for source in app.event_sources
                                      if isinstance(source, SQSEventConfig) and reads_failure_queue(source)),
                                     None)

    def workers(self) -> ThreadPoolExecutor:
        """Threads for the lanes, made on first use, as many as the widest mapping's factor."""
        if self._workers is None:
            width = max((source.mapping.parallelization_factor for source in self.sources), default=1)
            self._workers = ThreadPoolExecutor(max_workers=max(1, width), thread_name_prefix="stream-lane")
        return self._workers

    # -- discovery -----------------------------------------------------------------------
    def _refresh(self, source: Source, table: bool = True) -> None:
        """Find the source's shards. `table` False: from the stream already known, unless it
        is gone or no longer enabled (its table was recreated): DescribeTable is the slow call
        (tens of ms on DynamoDB Local, growing with the table), DescribeStream a few ms."""
        if table or not source.stream_arn or not self._stream_shards(source, source.stream_arn):
            arn = self.ddb.describe_table(TableName=source.table_name)["Table"]["LatestStreamArn"]
            if arn != source.stream_arn:  # the table was recreated: a new stream
                source.stream_arn, source.shards = arn, {}
            self._stream_shards(source, arn)

    def _stream_shards(self, source: Source, arn: str) -> bool:
        """Add the stream's new shards; False when the stream is not (or no longer) enabled."""
        start: str | None = None
        while True:
            kwargs = {"StreamArn": arn, **({"ExclusiveStartShardId": start} if start else {})}
            try:
                description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            except self.streams.exceptions.ResourceNotFoundException:
                return False
            if description.get("StreamStatus", "ENABLED") not in ("ENABLED", "ENABLING"):
                return False
            for raw in description.get("Shards", []):
                if raw["ShardId"] not in source.shards:
                    source.shards[raw["ShardId"]] = Shard(arn, raw["ShardId"], raw.get("ParentShardId"))
            start = description.get("LastEvaluatedShardId")
            if not start:
                return True

    def _ready(self, source: Source, shard: Shard) -> bool:
        parent = source.shards.get(shard.parent_id) if shard.parent_id else None
        return not shard.finished and (parent is None or parent.finished)

    def _iterator(self, source: Source, shard: Shard) -> str:
        if shard.iterator:
            return shard.iterator
        checkpoint = self.checkpoints.get(shard.key)
        kwargs: dict[str, Any] = {"StreamArn": shard.stream_arn, "ShardId": shard.shard_id}
        if checkpoint:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=checkpoint)
        else:
            kwargs["ShardIteratorType"] = source.mapping.starting_position
        return self.streams.get_shard_iterator(**kwargs)["ShardIterator"]

    # -- delivery ------------------------------------------------------------------------
    def poll_once(self, discover: bool = True, tables: bool = True) -> int:
        """One round over every ready shard. Returns how many records were delivered.
        `discover` False: the shards known are read without describing the stream again;
        `tables` False: new shards are looked for in the streams known (see `_refresh`)."""
        delivered = 0
        for source in self.sources:
            if discover or not source.shards:
                self._refresh(source, table=tables or not source.shards)
            for shard in list(source.shards.values()):
                if self._ready(source, shard):
                    delivered += self._poll_shard(source, shard)
        return delivered

    def _get_records(self, source: Source, shard: Shard) -> dict:
        # Lambda reads ahead for every lane: up to a batch per lane in one read (1,000 at most).
        limit = min(1000, source.mapping.batch_size * max(1, source.mapping.parallelization_factor))
        try:
            return self.streams.get_records(ShardIterator=self._iterator(source, shard), Limit=limit)
        except self.streams.exceptions.ClientError as exc:
            # An iterator taken on an empty shard can go stale once records arrive (DynamoDB Local
            # answers TrimmedDataAccessException), and iterators expire after 15 minutes: take a
            # fresh one from the checkpoint and read again.
            if exc.response.get("Error", {}).get("Code") not in ("TrimmedDataAccessException",
                                                                  "ExpiredIteratorException"):
                raise
            shard.iterator = None
            return self.streams.get_records(ShardIterator=self._iterator(source, shard), Limit=limit)

    def _poll_shard(self, source: Source, shard: Shard) -> int:
        """Read once every lane is empty (a lane waiting on a backoff holds the next read, never
        the other lanes' records already read), then deliver each ready lane's head batch."""
        if not shard.pending:
            response = self._get_records(source, shard)
            records = response.get("Records", [])
            shard.iterator = response.get("NextShardIterator")
            if not records:
                shard.finished = shard.iterator is None
                return 0
            self._deal(source, shard, records)
        ready = [lane for lane in shard.lanes if lane.pending and self.monotonic() >= lane.retry_at]
        if not ready:
            return 0
        results = self._run_lanes([lambda lane=lane: self._deliver_head(source, shard, lane) for lane in ready])
        for _, settled in results:
            shard.settled.update(settled)
        self._advance(shard)
        return sum(delivered for delivered, _ in results)

    def _deal(self, source: Source, shard: Shard, records: list[dict]) -> None:
        """Records into lanes by item (stream order kept within each), batches of at most
        `batch_size`, one tumbling window each."""
        mapping = source.mapping
        factor = max(1, mapping.parallelization_factor)
        if len(shard.lanes) != factor:
            shard.lanes = [Lane() for _ in range(factor)]
        dealt: list[list[dict]] = [[] for _ in range(factor)]
        for record in records:
            dealt[lane_of(record, factor)].append(record)
        for lane, lane_records in zip(shard.lanes, dealt):
            for window in self._windows(mapping, lane_records):
                lane.pending += [window[i:i + mapping.batch_size] for i in range(0, len(window), mapping.batch_size)]
        shard.unsettled += records

    def _advance(self, shard: Shard) -> None:
        """Checkpoint past the longest run of settled records at the head of the shard."""
        done = 0
        while done < len(shard.unsettled) and _seq(shard.unsettled[done]) in shard.settled:
            done += 1
        if done:
            last = shard.unsettled[done - 1]
            self.checkpoints.set(shard.key, last["dynamodb"]["SequenceNumber"])
            shard.settled.difference_update(_seq(r) for r in shard.unsettled[:done])
            del shard.unsettled[:done]
        if not shard.pending:
            shard.finished = shard.iterator is None

    def _run_lanes(self, tasks: list[Callable[[], Any]]) -> list[Any]:
        return run_lanes(self, tasks) if len(tasks) > 1 else [tasks[0]()]

    def _deliver_head(self, source: Source, shard: Shard, lane: Lane) -> tuple[int, list[int]]:
        """Deliver the lane's first unsettled batch and settle it as Lambda would. Changes only
        the lane (it may run beside the shard's other lanes); returns how many records were
        delivered and the sequence numbers now settled."""
        mapping, batch = source.mapping, lane.pending[0]
        if self._too_old(mapping, batch):
            return len(batch), self._give_up(source, shard, lane, "RecordAgeExceeded")
        failed_from = self._deliver(source, shard, batch)
        if failed_from is None:
            return len(batch), self._settle(lane)
        settled: list[int] = []
        if failed_from == _RAISED:
            if mapping.bisect_batch_on_error and len(batch) > 1:  # split; does not use a retry
                middle = (len(batch) + 1) // 2
                lane.pending[0:1] = [batch[:middle], batch[middle:]]
                return len(batch), settled
        else:  # a partial answer: the records before the lowest failed one are done
            settled = [_seq(r) for r in batch if _seq(r) < failed_from]
            lane.pending[0] = [r for r in batch if _seq(r) >= failed_from]
        lane.failures += 1
        if 0 <= mapping.maximum_retry_attempts < lane.failures:
            return len(batch), settled + self._give_up(source, shard, lane, "RetryAttemptsExhausted")
        backoff = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** (lane.failures - 1))
        lane.retry_at = self.monotonic() + backoff
        log.warning("stream batch failed; will retry", extra={"function": source.function_name,
                    "shard": shard.shard_id, "attempt": lane.failures, "backoff_s": backoff,
                    "records": len(batch), "retrying": len(lane.pending[0])})
        return len(batch), settled

    def _settle(self, lane: Lane) -> list[int]:
        """The head batch is done (processed or handed on): the lane goes on to its next."""
        batch = lane.pending.pop(0)
        lane.failures, lane.retry_at = 0, 0.0
        return [_seq(r) for r in batch]

    def _deliver(self, source: Source, shard: Shard, batch: list[dict]) -> int | None:
        """Invoke the handler; None on success, `_RAISED` when it raised, else the lowest
        failed sequence number of its partial-batch answer (read only where the mapping says)."""
        event = self._event(source.mapping, shard, batch)
        try:
            result = self._invoke(source.function_name, event)
        except Exception:
            log.exception("stream handler raised", extra={"function": source.function_name})
            return _RAISED
        if not source.mapping.report_batch_item_failures or not isinstance(result, dict):
            return None  # Lambda reads nothing else from the answer
        failures = result.get("batchItemFailures") or []
        try:
            lowest = min(int(f["itemIdentifier"]) for f in failures) if failures else None
        except (KeyError, TypeError, ValueError):  # a malformed answer fails the whole batch
            return _RAISED
        if lowest is not None and lowest not in {_seq(r) for r in batch}:
            return _RAISED  # names no record of this batch: nothing can be checkpointed by it
        return lowest

    def _event(self, mapping: StreamMapping, shard: Shard, batch: list[dict]) -> dict:
        event: dict[str, Any] = {"Records": [self._lambda_record(record, shard.stream_arn) for record in batch]}
        if mapping.tumbling_window_seconds:
            start = self._window_of(mapping, batch[0])
            event.update(shardId=shard.shard_id, eventSourceARN=shard.stream_arn, state={},
                         window={"start": _iso(start), "end": _iso(start + mapping.tumbling_window_seconds)},
                         isFinalInvokeForWindow=False, isWindowTerminatedEarly=False)
        return event

    def _windows(self, mapping: StreamMapping, records: list[dict]) -> list[list[dict]]:
        """One batch per tumbling window (Lambda never mixes windows in one batch)."""
        if not mapping.tumbling_window_seconds:
            return [records]
        batches: list[list[dict]] = []
        for record in records:
            if batches and self._window_of(mapping, batches[-1][0]) == self._window_of(mapping, record):
                batches[-1].append(record)
            else:
                batches.append([record])
        return batches

    def _window_of(self, mapping: StreamMapping, record: dict) -> int:
        size = mapping.tumbling_window_seconds or 1
        return int(self._created(record) // size * size)

    def _created(self, record: dict) -> float:
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        if hasattr(created, "timestamp"):
            return created.timestamp()
        return float(created) if created is not None else self.now()

    def _too_old(self, mapping: StreamMapping, batch: list[dict]) -> bool:
        limit = mapping.maximum_record_age_seconds
        return 0 <= limit < self.now() - self._created(batch[0])

    # -- failure destination -------------------------------------------------------------
    def _give_up(self, source: Source, shard: Shard, lane: Lane, condition: str) -> list[int]:
        """Hand the lane's head batch to the failure destination and move past it, as Lambda
        does. It counts as settled only once the message was taken (on AWS, once SQS has it): if
        the consumer fails, the lane waits and offers it again, so a restart loses nothing."""
        batch = lane.pending[0]
        message = self.failure_message(source, shard, batch, condition, lane.failures)
        log.error("stream batch sent to the failure destination", extra={
            "function": source.function_name, "shard": shard.shard_id, "condition": condition,
            "records": len(batch), "start": message["DDBStreamBatchInfo"]["startSequenceNumber"]})
        if self.failure_function:
            try:
                self._invoke(self.failure_function, {"Records": [self._sqs_record(message)]})
            except Exception:
                log.exception("failure destination consumer raised; will offer again",
                              extra={"function": self.failure_function})
                lane.retry_at = self.monotonic() + MAX_BACKOFF_SECONDS
                return []
        return self._settle(lane)

    def failure_message(self, source: Source, shard: Shard, batch: list[dict], condition: str,
                        failures: int = 0) -> dict:
        """Lambda's on-failure record for a stream batch (the body of the SQS message)."""
        return {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{self.region}:000000000000:function:{source.function_name}",
                "condition": condition,
                "approximateInvokeCount": failures + 1,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": _iso(self.now(), millis=True),
            "DDBStreamBatchInfo": {
                "shardId": shard.shard_id,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(self._created(batch[0])),
                "approximateArrivalOfLastRecord": _iso(self._created(batch[-1])),
                "batchSize": len(batch),
                "streamArn": shard.stream_arn,
            },
        }

    def _sqs_record(self, message: dict) -> dict:
        body = json.dumps(message)
        return {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": uuid.uuid4().hex,
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(self.now() * 1000))},
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": FAILURE_QUEUE_PLACEHOLDER_ARN,
            "awsRegion": self.region,
        }

    def _lambda_record(self, record: dict, stream_arn: str) -> dict:
        return lambda_record(record, stream_arn, self.region)

    def replay_from_start(self) -> None:
        """Forget every checkpoint, as after a lost checkpoint store: the next round delivers
        every record still in the stream again, successes included."""
        self.checkpoints.values.clear()
        for source in self.sources:
            for shard in source.shards.values():
                shard.iterator, shard.finished, shard.lanes = None, False, [Lane()]
                shard.unsettled, shard.settled = [], set()

    # -- loops ---------------------------------------------------------------------------
    def drain(self, max_rounds: int = 50, ignore_backoff: bool = False) -> int:
        """Poll until a round delivers nothing (tests, and the simulator's settle step)."""
        total = 0
        for _ in range(max_rounds):
            if ignore_backoff:
                for source in self.sources:
                    for shard in source.shards.values():
                        for lane in shard.lanes:
                            lane.retry_at = 0.0
            delivered = self.poll_once()
            total += delivered
            if delivered == 0:
                return total
        return total

    DISCOVER_EVERY = 1.0  # seconds between looks for new shards (splits) in the known streams
    TABLES_EVERY = 30.0  # seconds between looks up of each table's stream

    def poll_paced(self) -> int:
        """One round, as Lambda's event source mapping reads: new shards are looked for once
        every DISCOVER_EVERY seconds, not before every read (two Describe calls per table per
        round were a call per purchase on top of the reads). A recreated table is noticed when
        its old stream stops (see `_refresh`), and its stream looked up again every
        TABLES_EVERY seconds anyway."""
        now = self.monotonic()
        discover = now - self._discovered_at >= self.DISCOVER_EVERY
        tables = now - self._described_at >= self.TABLES_EVERY
        if discover:
            self._discovered_at = now
        if tables:
            self._described_at = now
        return self.poll_once(discover, tables)

    def run(self, stop: threading.Event, idle_sleep: float = 0.25) -> None:
        """Poll until `stop` (`make run`), resting `idle_sleep` after a round that found nothing."""
        while not stop.is_set():
            try:
                delivered = self.poll_paced()
            except Exception:
                log.exception("stream poll round failed")
                delivered = 0
            if not delivered:
                stop.wait(idle_sleep)


_RAISED = -1  # `_deliver`: the invocation failed as a whole


def lane_of(record: dict, factor: int) -> int:
    """The lane of a record: a stable hash of its item's keys. With a parallelization factor
    Lambda "still ensures in-order processing at the item (partition and sort key) level"
    (Lambda guide, with-ddb): one lane per item does the same here, and no more, so a handler
    relying on order across items of one partition would fail locally as it would on AWS."""
    if factor <= 1:
        return 0
    value = record["dynamodb"].get("Keys", {})
    digest = hashlib.blake2b(json.dumps(value, sort_keys=True).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % factor


def in_threads(poller: "StreamPoller", tasks: list[Callable[[], Any]]) -> list[Any]:
    """Lanes side by side, on the poller's own workers; their CPU is added to
    `poller.lane_cpu_seconds` (the poller thread's clock does not see it)."""
    context = contextvars.copy_context()

    def timed(task: Callable[[], Any]) -> Any:
        cpu = time.thread_time()
        try:
            return context.copy().run(task)  # each lane in a copy of the poller's context
        finally:
            with poller.lock:
                poller.lane_cpu_seconds += time.thread_time() - cpu
    return list(poller.workers().map(timed, tasks))


def in_turn(poller: "StreamPoller", tasks: list[Callable[[], Any]]) -> list[Any]:
    """Lanes one after the other: for an emulator that is not thread-safe (moto)."""
    return [task() for task in tasks]


# How a round's lanes run; the moto tests set `in_turn` (moto is not thread-safe).
run_lanes: Callable[["StreamPoller", list[Callable[[], Any]]], list[Any]] = in_threads


def _seq(record: dict) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


def _iso(epoch: float, millis: bool = False) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds" if millis else "seconds").replace("+00:00", "Z")


class LambdaContext:
    """The bits of a Lambda context that handlers may read."""

    def __init__(self, name: str):
        self.function_name = name
        self.aws_request_id = f"local-{time.time_ns()}"
        self.memory_limit_in_mb = 512

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
