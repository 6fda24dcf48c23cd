"""A shard read by several lanes (`parallelization_factor`), as Lambda does: one item's records
stay in one lane and in order, lanes run side by side on DynamoDB Local (in turn on moto,
which is not thread-safe), a failing record holds back only its own lane, and the shard's
checkpoint never passes a record that is not settled."""
from __future__ import annotations

import threading
import time

from chalicelib.core import aws
from chalicelib.store.base import table_name
from infra.local.stream_poller import StreamPoller, lane_of
from tests.conftest import BACKEND
from tests.stream_rules import set_mapping

FACTOR = 4


class Recorder:
    """Stands in for the main table's function: logs each delivery (key, sequence, thread,
    start, end), optionally slow, optionally failing a record a few times."""

    def __init__(self, delay: float = 0.0):
        self.delay, self.lock = delay, threading.Lock()
        self.calls: list[dict] = []
        self.fail: dict[str, int] = {}  # "pk/n" → failures left

    def __call__(self, name: str, event: dict):
        started = time.monotonic()
        time.sleep(self.delay)
        records = [r for r in event["Records"] if r["dynamodb"]["Keys"]["pk"]["S"].startswith("T#")]
        failed = None
        with self.lock:
            for record in records:
                label = _label(record)
                if self.fail.get(label, 0) > 0:
                    self.fail[label] -= 1
                    failed = record["dynamodb"]["SequenceNumber"]
                    break
            delivered = records if failed is None else [r for r in records
                                                        if int(r["dynamodb"]["SequenceNumber"]) < int(failed)]
            self.calls.append({"labels": [_label(r) for r in delivered], "failed": failed,
                               "start": started, "end": time.monotonic(), "thread": threading.get_ident()})
        return {"batchItemFailures": [{"itemIdentifier": failed}] if failed else []}

    def delivered(self) -> list[str]:
        return [label for call in self.calls for label in call["labels"]]


def _label(record: dict) -> str:
    image = record["dynamodb"]["NewImage"]
    return f"{image['pk']['S']}/{image['n']['N']}"


def _put(pk: str, n: int) -> None:
    aws.dynamodb().put_item(TableName=table_name("main"),
                            Item={"pk": {"S": pk}, "sk": {"S": "LANE"}, "n": {"N": str(n)}})


def _lane(pk: str) -> int:
    return lane_of({"dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": "LANE"}}}}, FACTOR)


def _keys_in_distinct_lanes(count: int) -> list[str]:
    """Partition keys that land in `count` different lanes."""
    keys, lanes = [], set()
    for i in range(100):
        pk = f"T#{i}"
        lane = _lane(pk)
        if lane not in lanes:
            keys.append(pk)
            lanes.add(lane)
        if len(keys) == count:
            return keys
    raise AssertionError("no such keys")


def _poller(app, recorder: Recorder) -> StreamPoller:
    poller = StreamPoller(app, aws.dynamodb(), aws.streams(), table_name, invoke=recorder)
    poller.drain()  # what the fixture seeded
    recorder.calls.clear()
    return poller


def test_one_items_records_stay_in_order_across_lanes_and_each_is_delivered_once(app, monkeypatch):
    set_mapping(monkeypatch, "on_main_change", parallelization_factor=FACTOR, batch_size=2)
    recorder = Recorder()
    poller = _poller(app, recorder)
    keys = [f"T#{i}" for i in range(6)]
    for n in range(5):
        for pk in keys:
            _put(pk, n)  # interleaved: each key's updates are spread over the stream
    poller.drain()
    delivered = recorder.delivered()
    assert sorted(delivered) == sorted(f"{pk}/{n}" for pk in keys for n in range(5))  # each once
    for pk in keys:  # one item: its updates in the order they were made
        assert [label for label in delivered if label.startswith(f"{pk}/")] == [f"{pk}/{n}" for n in range(5)]
    # lanes really took part: a batch never mixes items of two lanes
    for call in recorder.calls:
        lanes = {_lane(label.split("/")[0]) for label in call["labels"]}
        assert len(lanes) <= 1
    assert len({_lane(pk) for pk in keys}) > 1


def test_lanes_run_side_by_side_on_dynamodb_local_and_in_turn_on_moto(app, monkeypatch):
    set_mapping(monkeypatch, "on_main_change", parallelization_factor=FACTOR)
    recorder = Recorder(delay=0.4)
    poller = _poller(app, recorder)
    for pk in _keys_in_distinct_lanes(3):
        _put(pk, 1)
    poller.drain()
    calls = sorted((c for c in recorder.calls if c["labels"]), key=lambda c: c["start"])
    assert sorted(recorder.delivered()) == sorted(f"{pk}/1" for pk in _keys_in_distinct_lanes(3))
    assert len(calls) == 3  # one batch per lane
    overlapping = any(a["end"] > b["start"] for a, b in zip(calls, calls[1:]))
    if BACKEND == "ddblocal":
        assert overlapping and len({c["thread"] for c in calls}) > 1
    else:  # moto is not thread-safe: the lanes take turns
        assert not overlapping


def test_a_failing_record_holds_back_its_own_lane_only_and_the_checkpoint_waits_for_it(app, monkeypatch):
    set_mapping(monkeypatch, "on_main_change", parallelization_factor=FACTOR, report_batch_item_failures=True)
    recorder = Recorder()
    poller = _poller(app, recorder)
    poller.monotonic = lambda: 0.0  # the backoff clock stands still until the test moves it
    stuck, free = _keys_in_distinct_lanes(2)
    for n in range(3):
        _put(stuck, n)
        _put(free, n)
    recorder.fail[f"{stuck}/1"] = 2  # fails twice, then goes through
    shard = next(iter(next(s for s in poller.sources if s.table == "main").shards.values()))

    poller.poll_once()
    # The free lane is done; the stuck lane did its first record and waits on a backoff.
    assert sorted(recorder.delivered()) == sorted([f"{stuck}/0"] + [f"{free}/{n}" for n in range(3)])
    stuck_seq = int(next(c["failed"] for c in recorder.calls if c["failed"]))
    checkpoint = int(poller.checkpoints.get(shard.key))
    assert checkpoint < stuck_seq  # the shard's position has not passed the unsettled record
    assert poller.poll_once() == 0  # backing off: nothing delivered, the free lane not re-run

    for hour in (1, 2):  # past each backoff
        poller.monotonic = lambda hour=hour: hour * 3600.0
        poller.poll_once()
    assert recorder.fail[f"{stuck}/1"] == 0
    delivered = recorder.delivered()
    # The free lane's records were delivered once, never again for the other lane's failure.
    assert [label for label in delivered if label.startswith(f"{free}/")] == [f"{free}/{n}" for n in range(3)]
    assert [label for label in delivered if label.startswith(f"{stuck}/")] == [f"{stuck}/{n}" for n in range(3)]
    assert int(poller.checkpoints.get(shard.key)) > stuck_seq
    assert poller.drain() == 0


def test_a_poison_record_in_one_lane_reaches_the_failure_destination_and_the_others_go_on(app, monkeypatch):
    set_mapping(monkeypatch, "on_main_change", parallelization_factor=FACTOR, maximum_retry_attempts=1)
    recorder = Recorder()
    poller = _poller(app, recorder)
    messages: list[dict] = []
    poller.failure_function = "failures"
    original = poller._invoke
    poller._invoke = lambda name, event: messages.append(event) if name == "failures" else original(name, event)
    poison, other = _keys_in_distinct_lanes(2)
    _put(poison, 0)
    _put(other, 0)
    _put(other, 1)
    recorder.fail[f"{poison}/0"] = 99
    poller.drain(ignore_backoff=True)
    assert len(messages) == 1 and '"batchSize": 1' in messages[0]["Records"][0]["body"]
    assert recorder.delivered() == [f"{other}/0", f"{other}/1"]
    _put(poison, 1)  # the shard moved on past the poison record
    poller.drain(ignore_backoff=True)
    assert recorder.delivered()[-1] == f"{poison}/1"
