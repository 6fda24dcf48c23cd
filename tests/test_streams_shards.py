"""Click counters across shards, with Lambda-shaped events: a stream with several shards has
one invocation per shard at a time, with sequence numbers that interleave across shards."""
from __future__ import annotations

from chalicelib.event_sources import MAPPINGS
from chalicelib.referrals import counters
from chalicelib.referrals.models import Click, ClickCounter
from infra.local.stream_poller import LambdaContext

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/referral-prod-clicks/stream/2026-11-01T00:00:00.000"
SHARD_A, SHARD_B = "shardId-00000001700000000000-aaaaaaaa", "shardId-00000001700000000000-bbbbbbbb"
CODE = "ABC2345"


def _record(sequence: int, n: int) -> dict:
    click = Click(*Click.key(f"k{n}"), click_id=f"k{n}", code=CODE, campaign_id="default", channel="wechat_friend",
                  at="2026-11-23T08:00:00.000000Z", day="2026-11-23")
    return {"eventID": f"e{n}", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1", "eventSourceARN": ARN,
            "dynamodb": {"ApproximateCreationDateTime": 1795000000.0, "Keys": {"pk": {"S": f"K#k{n}"}, "sk": {"S": "CLICK"}},
                         "NewImage": click.serialize(), "SequenceNumber": str(sequence), "SizeBytes": 200,
                         "StreamViewType": "NEW_IMAGE"}}


def _event(shard: str | None, records: list[dict]) -> dict:
    """What Lambda sends: with a tumbling window, the shard, window and state come along."""
    event: dict = {"Records": records}
    if shard:
        event.update(shardId=shard, eventSourceARN=ARN, state={}, isFinalInvokeForWindow=False,
                     isWindowTerminatedEarly=False,
                     window={"start": "2026-11-23T08:00:00Z", "end": "2026-11-23T08:00:30Z"})
    return event


# Seven clicks on two shards; sequence numbers interleave as two real shards' would.
SHARD_A_RECORDS = [_record(s, n) for n, s in enumerate((100000000000000000100, 100000000000000000300,
                                                         100000000000000000500, 100000000000000000700))]
SHARD_B_RECORDS = [_record(s, n + 10) for n, s in enumerate((100000000000000000200, 100000000000000000400,
                                                              100000000000000000600))]


def _deliver(app, shard_a: str | None, shard_b: str | None) -> None:
    handler = app.handler_map["on_click"]
    for shard, records in ((shard_a, SHARD_A_RECORDS[:2]), (shard_b, SHARD_B_RECORDS[:2]),
                           (shard_a, SHARD_A_RECORDS[2:]), (shard_b, SHARD_B_RECORDS[2:])):
        answer = handler(_event(shard, records), LambdaContext("on_click"))
        assert answer["batchItemFailures"] == []
        assert ("state" in answer) == bool(shard)  # a windowed mapping needs the state back


def test_two_shards_count_seven_clicks_as_seven_and_redelivery_changes_nothing(app):
    assert MAPPINGS["on_click"].tumbling_window_seconds, "the clicks mapping must name the shard"
    _deliver(app, SHARD_A, SHARD_B)
    key = ClickCounter.key(code=CODE)
    assert counters.read(key)["total"] == 7
    _deliver(app, SHARD_A, SHARD_B)  # at least once: everything again
    handler = app.handler_map["on_click"]
    handler(_event(SHARD_B, SHARD_B_RECORDS), LambdaContext("on_click"))  # re-batched differently
    handler(_event(SHARD_A, SHARD_A_RECORDS[1:3]), LambdaContext("on_click"))
    assert counters.read(key) == {"total": 7, "by_day": {"2026-11-23": 7}, "by_channel": {"wechat_friend": 7}}
    assert counters.read(ClickCounter.key(campaign_id="default"))["total"] == 7


def test_without_the_shard_in_the_event_two_shards_would_undercount(app):
    """Why the clicks mapping has a tumbling window: without one Lambda does not say which
    shard a batch is from, and the shards' interleaved sequence numbers look like replays."""
    _deliver(app, None, None)
    assert counters.read(ClickCounter.key(code=CODE))["total"] < 7


def test_events_carry_the_shard_only_where_the_mapping_has_a_window(client, streams):
    from tests.flows import code_of, signup
    from tests.test_foundation import _insert_member

    events: dict[str, list[dict]] = {}
    original = streams._invoke
    streams._invoke = lambda name, event: events.setdefault(name, []).append(event) or original(name, event)
    _insert_member("m1")
    signup(client, "a")
    assert client.get(f"/r/{code_of('a')}").status_code == 302
    streams.drain()
    [click_event] = events["on_click"]
    assert click_event["shardId"] and click_event["window"]["start"] < click_event["window"]["end"]
    assert click_event["state"] == {} and click_event["eventSourceARN"] == click_event["Records"][0]["eventSourceARN"]
    assert all("shardId" not in event and "window" not in event for event in events["on_main_change"])
