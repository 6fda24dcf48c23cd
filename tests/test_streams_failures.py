"""A poison record under the declared mapping, locally as on Lambda: bisect isolates it, the
retries run out, the batch goes to the failure destination (stored for ops), the shard moves
on, and a re-drive after the fix completes it."""
from __future__ import annotations

import json
import time

from chalicelib.event_sources import MAPPINGS
from chalicelib.lifecycle import handlers as lifecycle_handlers
from chalicelib.referrals import counters
from chalicelib.stream_failures.models import StreamFailure
from infra.local.stream_poller import LambdaContext
from tests.helpers import token
from tests.stream_rules import set_mapping
from tests.test_foundation import _insert_member, _notes

ADMIN = token("root", "admin")
MAX_RETRIES = MAPPINGS["on_main_change"].maximum_retry_attempts
ORIGINAL_POST, ORIGINAL_APPLY = lifecycle_handlers.outbox.post, counters.apply


def _poison(monkeypatch, member_id: str) -> list[str]:
    """The welcome note of `member_id` always fails (until the test fixes it)."""
    calls: list[str] = []
    original = lifecycle_handlers.outbox.post

    def post(target, *args, **kwargs):
        calls.append(target)
        if target == member_id:
            raise ValueError(f"cannot render a welcome for {target}")
        return original(target, *args, **kwargs)

    monkeypatch.setattr(lifecycle_handlers.outbox, "post", post)
    return calls


def _failures(client) -> list[dict]:
    response = client.get("/v1/ops/stream-failures", token=ADMIN)
    assert response.status_code == 200, response.body
    return response.json_body["items"]


def test_poison_record_goes_to_the_failure_store_and_its_shard_moves_on(client, streams, monkeypatch):
    # One lane, so the poison shares a batch with m1 and m2 and bisect has something to split
    # (a lane of its own is test_stream_lanes.py's poison test).
    set_mapping(monkeypatch, "on_main_change", parallelization_factor=1)
    streams.drain()  # the seeded campaign
    calls = _poison(monkeypatch, "poison")
    for member_id in ("m1", "poison", "m2"):
        _insert_member(member_id)
    streams.drain(ignore_backoff=True)
    # Bisect isolated the poison record: the good records of its batch were processed.
    assert len(_notes("m1")) == 1 and len(_notes("m2")) == 1
    # The first try, the try of the half it was split into (a split uses no retry), then each retry.
    assert calls.count("poison") == 2 + MAX_RETRIES
    [failure] = _failures(client)
    assert failure["table"] == "main" and failure["status"] == "failed"
    assert failure["condition"] == "RetryAttemptsExhausted"
    assert failure["batch_size"] == failure["record_count"] == 1
    detail = client.get(f"/v1/ops/stream-failures/{failure['failure_id']}", token=ADMIN).json_body
    assert [r["keys"]["pk"]["S"] for r in detail["records"]] == ["M#poison"]

    _insert_member("m3")  # later records flow: the shard is not blocked
    streams.drain(ignore_backoff=True)
    assert len(_notes("m3")) == 1 and _notes("poison") == []

    # A re-drive while the cause remains fails again and says why.
    path = f"/v1/ops/stream-failures/{failure['failure_id']}/redrive"
    again = client.post(path, token=ADMIN).json_body
    assert again["status"] == "failed" and "cannot render a welcome" in again["last_error"]

    monkeypatch.undo()  # the cause is fixed
    done = client.post(path, token=ADMIN).json_body
    assert done["status"] == "redriven" and done["redrives"] == 2
    assert [n.kind for n in _notes("poison")] == ["welcome"]
    assert client.post(path, token=ADMIN).json_body["status"] == "redriven"  # once is enough
    assert [n.kind for n in _notes("poison")] == ["welcome"]
    assert [n.kind for n in _notes("m1")] == ["welcome"]


def test_without_bisect_the_records_behind_the_poison_wait_in_the_store(client, streams, monkeypatch):
    set_mapping(monkeypatch, "on_main_change", bisect_batch_on_error=False, maximum_retry_attempts=2,
                parallelization_factor=1)  # one lane: the records behind the poison share its batch
    streams.drain()
    _poison(monkeypatch, "poison")
    for member_id in ("m1", "poison", "m2"):
        _insert_member(member_id)
    streams.drain(ignore_backoff=True)
    assert len(_notes("m1")) == 1 and _notes("m2") == []  # m1 was checkpointed before the poison
    [failure] = _failures(client)
    assert failure["record_count"] == 2
    monkeypatch.setattr(lifecycle_handlers.outbox, "post", ORIGINAL_POST)
    assert client.post(f"/v1/ops/stream-failures/{failure['failure_id']}/redrive",
                       token=ADMIN).json_body["status"] == "redriven"
    assert len(_notes("m2")) == 1 and len(_notes("poison")) == 1


def test_records_older_than_the_mapping_allows_go_to_the_store_unprocessed(client, streams, monkeypatch):
    streams.drain()
    _insert_member("late")
    age = MAPPINGS["on_main_change"].maximum_record_age_seconds
    streams.now = lambda: time.time() + age + 60
    invoked: list[str] = []
    original = streams._invoke
    streams._invoke = lambda name, event: invoked.append(name) or original(name, event)
    streams.drain()
    assert "on_main_change" not in invoked and _notes("late") == []
    [failure] = _failures(client)
    assert failure["condition"] == "RecordAgeExceeded"
    client.post(f"/v1/ops/stream-failures/{failure['failure_id']}/redrive", token=ADMIN)
    assert [n.kind for n in _notes("late")] == ["welcome"]


def test_a_redelivered_failure_message_is_stored_once(app, client, streams, monkeypatch):
    set_mapping(monkeypatch, "on_main_change", maximum_retry_attempts=0)
    streams.drain()
    _poison(monkeypatch, "poison")
    messages: list[dict] = []
    original = streams._invoke

    def spy(name, event):
        if name == "on_stream_failure":
            messages.append(event)
        return original(name, event)

    streams._invoke = spy
    _insert_member("poison")
    streams.drain(ignore_backoff=True)
    [event] = messages
    body = json.loads(event["Records"][0]["body"])
    assert set(body["DDBStreamBatchInfo"]) == {"shardId", "startSequenceNumber", "endSequenceNumber", "streamArn",
                                                "batchSize", "approximateArrivalOfFirstRecord",
                                                "approximateArrivalOfLastRecord"}
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    [failure] = _failures(client)
    monkeypatch.undo()
    client.post(f"/v1/ops/stream-failures/{failure['failure_id']}/redrive", token=ADMIN)
    # SQS delivers the same message again: nothing new, and the re-drive stands.
    assert app.handler_map["on_stream_failure"](event, LambdaContext("on_stream_failure")) == {"stored": 0}
    [again] = _failures(client)
    assert again["failure_id"] == failure["failure_id"] and again["status"] == "redriven"


def test_failure_routes_are_admin_only_and_unknown_ids_are_404(client):
    assert client.get("/v1/ops/stream-failures", token=token("olivia", "ops")).status_code == 403
    assert client.get("/v1/ops/stream-failures", token=token("m1")).status_code == 403
    missing = client.post("/v1/ops/stream-failures/nope/redrive", token=ADMIN)
    assert missing.status_code == 404 and missing.json_body["error"]["code"] == "stream_failure_not_found"


def test_expired_failures_are_not_listed(client, backend):
    from chalicelib.stream_failures import service
    from chalicelib.stream_failures.rules import BatchInfo

    info = BatchInfo("arn:aws:dynamodb:us-east-1:1:table/x-main/stream/1", "shard-1", "1", "2", 2,
                     "2026-11-01T00:00:00Z", "on_main_change", "RetryAttemptsExhausted")
    assert service.store(info) == 1  # the range is not in the stream: kept, with why
    [failure] = _failures(client)
    assert failure["record_count"] == 0 and failure["fetch_error"]
    item = StreamFailure.get(*StreamFailure.key(failure["failure_id"]))
    item.update(actions=[StreamFailure.expires_at.set(int(time.time()) - 1)])  # TTL deletes lag
    assert _failures(client) == []


def test_a_failing_failure_consumer_holds_the_shard_until_it_takes_the_batch(client, streams, monkeypatch):
    from chalicelib.stream_failures import service
    from tests.stream_rules import throttle_first

    set_mapping(monkeypatch, "on_main_change", maximum_retry_attempts=0)
    streams.drain()
    _poison(monkeypatch, "poison")
    refused = throttle_first(monkeypatch, service, "receive", lambda event: True)
    _insert_member("poison")
    _insert_member("m1")
    streams.drain(ignore_backoff=True)
    assert len(refused) >= 2  # refused once, then offered again and taken
    [failure] = _failures(client)
    assert failure["record_count"] == 1 and len(_notes("m1")) == 1


def test_redriven_click_batches_are_counted_once(client, streams, monkeypatch):
    from chalicelib.referrals.models import ClickCounter
    from tests.flows import code_of, signup
    from tests.stream_rules import throttle_first

    set_mapping(monkeypatch, "on_click", maximum_retry_attempts=1)
    signup(client, "a")
    code = code_of("a")
    streams.drain()
    throttle_first(monkeypatch, counters, "apply", lambda *a, **k: True, times=1000)  # counters are down
    for _ in range(3):
        assert client.get(f"/r/{code}").status_code == 302
    streams.drain(ignore_backoff=True)
    failures = [f for f in _failures(client) if f["table"] == "clicks"]
    assert sum(f["record_count"] for f in failures) == 3
    monkeypatch.setattr(counters, "apply", ORIGINAL_APPLY)
    for _ in range(2):  # the second round finds them re-driven already
        for failure in failures:
            client.post(f"/v1/ops/stream-failures/{failure['failure_id']}/redrive", token=ADMIN)
    assert counters.read(ClickCounter.key(code=code))["total"] == 3


def test_a_malformed_partial_answer_fails_the_whole_batch(client, streams):
    """Lambda treats an empty, missing or unknown item identifier as a failure of the batch."""
    streams.drain()
    original = streams._invoke
    answers = iter([{"batchItemFailures": [{"itemIdentifier": ""}]},
                    {"batchItemFailures": [{"itemIdentifier": "9" * 39}]},
                    {"batchItemFailures": [{}]}])

    def answer_badly_three_times(name, event):
        bad = next(answers, None) if name == "on_main_change" else None
        return bad if bad is not None else original(name, event)

    streams._invoke = answer_badly_three_times
    _insert_member("m1")
    streams.drain(ignore_backoff=True)
    assert [n.kind for n in _notes("m1")] == ["welcome"]  # delivered again each time, not skipped
    assert _failures(client) == []
