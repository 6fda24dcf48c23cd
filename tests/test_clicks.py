"""Clicks: the redirect, the one write per click, and counters aggregated from the stream,
exact under redelivery (both backends)."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib import streams as stream_module
from chalicelib.campaigns import service as campaigns
from chalicelib.campaigns.rules import CampaignIn
from chalicelib.core import clock, ratelimit
from chalicelib.core.config import settings
from chalicelib.referrals import clicks, codes, counters
from chalicelib.referrals.models import Click, ClickCounter
from tests.helpers import count_dynamodb_calls

UA = "Mozilla/5.0 (iPhone; MicroMessenger/8.0.50) test-agent-7f3a"


def login(client, openid: str) -> str:
    response = client.post("/v1/auth/login", {"provider": "dev", "openid": openid, "display_name": "Lily"})
    assert response.status_code == 200, response.body
    return response.json_body["access_token"]


def code_of(client, token: str, campaign_id: str | None = None) -> str:
    path = "/v1/members/me/code" + (f"?campaign_id={campaign_id}" if campaign_id else "")
    return client.get(path, token=token).json_body["code"]


def follow(client, path: str, ua: str = UA):
    response = client.get(path, headers={"User-Agent": ua})
    assert response.status_code == 302, response.body
    assert response.headers["Cache-Control"] == "no-store"
    return response.headers["Location"]


def all_clicks() -> list[Click]:
    return list(Click.scan())


def counts(**key) -> dict:
    return counters.read(ClickCounter.key(**key))


def redeliver_everything(poller) -> int:
    """Forget every checkpoint, as after a crash or a replay from TRIM_HORIZON."""
    poller.replay_from_start()
    return poller.drain(ignore_backoff=True)


@contextmanager
def counter_updates():
    """UpdateItem calls per counter item (pk), made through botocore by anything."""
    from botocore.client import BaseClient

    seen: dict[str, int] = {}
    original = BaseClient._make_api_call

    def spy(self, operation, params):
        if operation == "UpdateItem" and self.meta.service_model.service_name == "dynamodb":
            pk = params.get("Key", {}).get("pk", {}).get("S", "")
            seen[pk] = seen.get(pk, 0) + 1
        return original(self, operation, params)

    BaseClient._make_api_call = spy
    try:
        yield seen
    finally:
        BaseClient._make_api_call = original


# -- the redirect -------------------------------------------------------------------------

def test_click_is_recorded_and_redirected_with_ref_and_click(client):
    code = code_of(client, login(client, "a"))
    location = follow(client, f"/r/{code.lower()}")
    target = urlsplit(location)
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://shop.example.com/welcome"
    query = parse_qs(target.query)
    assert query["ref"] == [code]
    click = Click.get(*Click.key(query["click"][0]))
    assert (click.code, click.campaign_id, click.channel, click.link_id) == (code, "default", "other", None)
    assert click.referrer_id == codes.resolve(code).member_id
    assert click.day == clicks.local_day(clock.parse(click.at), "Asia/Shanghai")
    assert click.expires_at > clock.epoch() + 30 * 86400  # kept for the attribution window


def test_click_stores_a_hash_never_the_ip_or_user_agent(client):
    code = code_of(client, login(client, "a"))
    follow(client, f"/r/{code}")
    follow(client, f"/r/{code}")
    follow(client, f"/r/{code}", ua="another browser")
    found = all_clicks()
    assert len(found) == 3
    for click in found:
        stored = " ".join(str(v) for v in click.attribute_values.values())
        assert "127.0.0.1" not in stored and "test-agent" not in stored
        assert len(click.fingerprint) == 32
    assert len({c.fingerprint for c in found}) == 2  # same visitor twice, another once
    assert clicks.fingerprint("1.2.3.4", UA) != clicks.fingerprint("1.2.3.5", UA)


def _add_campaign(campaign_id: str, **fields) -> None:
    spec = CampaignIn(campaign_id=campaign_id, name="x", landing_url="https://shop.example.com/x", **fields)
    campaigns._item(spec, 1, clock.now_iso()).save()


@pytest.mark.parametrize("case", ["unknown", "junk", "disabled", "ended", "paused", "over", "not_started"])
def test_unusable_code_goes_to_default_landing_without_a_click(client, case):
    token = login(client, "a")
    code = code_of(client, token)
    if case == "unknown":
        code = "NOSUCH2"
    elif case == "junk":
        code = "%27%20OR%201%3D1"
    elif case == "disabled":
        item = codes.resolve(code)
        item.status = "disabled"
        item.save()
    else:
        fields = {"ended": {"status": "ended"}, "paused": {"status": "paused"},
                  "over": {"ends_at": "2020-01-01T00:00:00Z"},
                  "not_started": {"starts_at": clock.iso(clock.now() + timedelta(days=3))}}[case]
        _add_campaign("c1")
        code = code_of(client, token, "c1")  # issued while it ran
        _add_campaign("c1", **fields)
        campaigns.clear_caches()
    assert follow(client, f"/r/{code}") == settings().default_landing_url
    assert all_clicks() == []


# -- cost ---------------------------------------------------------------------------------

def test_a_click_costs_one_write_and_one_read_call(client, monkeypatch):
    token = login(client, "a")
    code = code_of(client, token)
    link = client.post("/v1/links", {"channel": "qq"}, token=token).json_body
    monkeypatch.setattr(ratelimit, "FLUSH_SECONDS", 10**9)  # flush by count only: no clock in the test
    follow(client, f"/r/{code}")  # caches the campaign (a warm instance)
    n = 10
    with count_dynamodb_calls() as calls:
        for _ in range(n):
            follow(client, f"/r/{code}")
    assert calls.count("PutItem") == n  # the Click item, nothing else
    assert calls.count("UpdateItem") <= 1  # only a rate-limit flush if a new minute began meanwhile
    assert calls.writes == calls.count("PutItem", "UpdateItem")
    assert calls.count("GetItem") == n and calls.reads == n  # the code; the campaign is cached

    with count_dynamodb_calls() as calls:
        for _ in range(n):
            follow(client, f"/r/{code}?l={link['link_id']}")
    assert calls.count("PutItem") == n and calls.count("UpdateItem") <= 1
    assert calls.count("BatchGetItem") == n and calls.reads == n  # code + link in one call

    with count_dynamodb_calls() as calls:
        follow(client, "/r/NOSUCH2")
    assert calls.writes == 0 and calls.reads == 1


def test_a_campaign_ended_elsewhere_stops_clicks_within_the_cache_time(client, monkeypatch):
    """Another instance (or ops) ends the campaign: this instance's cached copy sends visitors
    to the campaign's landing for at most CAMPAIGN_CACHE_SECONDS, then to the default one."""
    import time

    token = login(client, "a")
    code = code_of(client, token)
    now = time.monotonic()
    monkeypatch.setattr(campaigns.time, "monotonic", lambda: now)  # the cache's clock, held from here
    assert follow(client, f"/r/{code}") != settings().default_landing_url
    item = campaigns.find("default")
    item.update(actions=[type(item).status.set("ended")])  # written by someone else
    monkeypatch.setattr(campaigns.time, "monotonic", lambda: now + settings().campaign_cache_seconds - 1)
    assert follow(client, f"/r/{code}") != settings().default_landing_url
    monkeypatch.setattr(campaigns.time, "monotonic", lambda: now + settings().campaign_cache_seconds + 1)
    assert follow(client, f"/r/{code}") == settings().default_landing_url


def test_a_campaign_created_elsewhere_is_usable_at_once(client):
    token = login(client, "a")
    assert client.get("/v1/members/me/code?campaign_id=c2", token=token).status_code == 404
    _add_campaign("c2")  # written by another instance: this one never saw it created
    assert client.get("/v1/members/me/code?campaign_id=c2", token=token).status_code == 200


# -- counting through the stream ----------------------------------------------------------

def test_clicks_are_counted_after_the_stream_runs(client, streams):
    token = login(client, "a")
    code = code_of(client, token)
    link = client.post("/v1/links", {"channel": "weibo"}, token=token).json_body
    for _ in range(3):
        follow(client, f"/r/{code}")
    for _ in range(2):
        follow(client, f"/r/{code}?l={link['link_id']}")
    assert counts(code=code)["total"] == 0  # nothing is counted on the request path
    streams.drain()
    day = all_clicks()[0].day
    assert counts(code=code) == {"total": 5, "by_day": {day: 5}, "by_channel": {"other": 3, "weibo": 2}}
    assert counts(link_id=link["link_id"]) == {"total": 2, "by_day": {day: 2}, "by_channel": {"weibo": 2}}
    assert counts(campaign_id="default")["total"] == 5

    follow(client, f"/r/{code}")
    streams.drain()
    assert counts(code=code)["total"] == 6


def test_redelivery_and_replay_add_nothing(client, streams):
    code = code_of(client, login(client, "a"))
    for _ in range(4):
        follow(client, f"/r/{code}")
    streams.drain()
    before = counts(code=code)
    assert before["total"] == 4
    assert redeliver_everything(streams) >= 4  # the clicks really came again
    assert counts(code=code) == before
    assert counts(campaign_id="default")["total"] == 4


def test_a_batch_that_failed_half_way_is_counted_once(client, streams, monkeypatch):
    token = login(client, "a")
    code = code_of(client, token)
    link = client.post("/v1/links", {"channel": "qq"}, token=token).json_body
    # No drain before the clicks: DynamoDB Local refuses the iterator an empty read returned
    # (TrimmedDataAccessException), which the local poller does not recover from yet.
    real_apply = counters.apply
    failures = []

    def fail_link_once(key, records, lane):
        if key == ClickCounter.key(link_id=link["link_id"]) and not failures:
            failures.append(key)
            raise RuntimeError("throttled")
        return real_apply(key, records, lane)

    monkeypatch.setattr(counters, "apply", fail_link_once)
    for _ in range(3):
        follow(client, f"/r/{code}?l={link['link_id']}")
    streams.drain(ignore_backoff=True)
    assert failures  # the code's counter was written, then the batch failed and came again
    assert counts(code=code)["total"] == 3
    assert counts(link_id=link["link_id"])["total"] == 3
    assert counts(campaign_id="default")["total"] == 3


def _click(code: str, channel: str = "other", day: str = "2026-11-23") -> Click:
    click_id = uuid.uuid4().hex
    return Click(*Click.key(click_id), click_id=click_id, code=code, campaign_id="default", channel=channel,
                 at=f"{day}T08:00:00.000000Z", day=day)


def test_overlapping_redelivery_applies_only_the_new_records(backend):
    key = ClickCounter.key(code="ABC2345")
    records = [(seq, _click("ABC2345")) for seq in range(100000000000000000001, 100000000000000000009)]
    counters.apply(key, records[:5], "lane-a")
    counters.apply(key, records[3:], "lane-a")  # 3 already applied, 3 new
    counters.apply(key, records[:2], "lane-a")  # all old
    assert counters.read(key)["total"] == 8
    counters.apply(key, records[:2], "lane-b")  # another shard's numbers are its own
    assert counters.read(key)["total"] == 10


def test_sequence_numbers_compare_as_numbers_up_to_40_digits(backend):
    key = ClickCounter.key(code="ABC2345")
    counters.apply(key, [(9 * 10**20, _click("ABC2345"))], "lane")  # 21 digits
    counters.apply(key, [(10**39, _click("ABC2345"))], "lane")  # 40 digits: larger, though "1" < "9"
    counters.apply(key, [(10**39, _click("ABC2345"))], "lane")  # again: nothing
    assert counters.read(key)["total"] == 2


def test_lanes_the_stream_can_no_longer_redeliver_are_forgotten(backend):
    key = ClickCounter.key(code="ABC2345")
    counters.apply(key, [(10**20 + 1, _click("ABC2345"))], "old-shard")
    clock.advance(timedelta(hours=47))
    counters.apply(key, [(10**20 + 2, _click("ABC2345"))], "new-shard")
    assert set(ClickCounter.get(*key).seen.as_dict()) == {"old-shard", "new-shard"}  # may still redeliver
    clock.advance(timedelta(hours=2))
    counters.apply(key, [(10**20 + 3, _click("ABC2345"))], "newer-shard")
    assert set(ClickCounter.get(*key).seen.as_dict()) == {"new-shard", "newer-shard"}
    assert counters.read(key)["total"] == 3


def test_batch_lane_names_the_shard_when_the_event_does(backend):
    records = [{"eventSourceARN": "arn:aws:dynamodb:x:1:table/clicks/stream/1"}]
    assert stream_module.lane_of(records, "shardId-1") != stream_module.lane_of(records, "shardId-2")
    assert stream_module.lane_of(records, None) == stream_module.lane_of(records, None)
    windowed = stream_module.process_event("clicks", Click, {"Records": [], "shardId": "s", "window": {}})
    assert windowed == {"batchItemFailures": [], "state": {}}  # a tumbling-window mapping needs `state`


def _counting_click_batches(monkeypatch) -> list[int]:
    """How many click batches the stream delivers (windows and batch sizes decide, not the test)."""
    delivered = [0]
    original = stream_module.process_event

    def counting(table, *args, **kwargs):
        if table == "clicks":
            delivered[0] += 1
        return original(table, *args, **kwargs)

    monkeypatch.setattr(stream_module, "process_event", counting)
    return delivered


def test_a_thousand_clicks_on_one_code_are_exact_with_few_counter_writes(app, streams, monkeypatch):
    batches = _counting_click_batches(monkeypatch)
    code = "VIRAL234"
    channels = ["wechat_friend", "wechat_moments", "douyin", "other"]
    with Click.batch_write() as batch:
        for i in range(1000):
            batch.save(_click(code, channels[i % 4], day="2026-11-23" if i < 600 else "2026-11-24"))
    with counter_updates() as updates:
        assert streams.drain() >= 1000
    result = counts(code=code)
    assert result == {"total": 1000, "by_day": {"2026-11-23": 600, "2026-11-24": 400},
                      "by_channel": {c: 250 for c in channels}}
    writes = updates.get(ClickCounter.key(code=code)[0], 0)
    print(f"\nUpdateItem calls on the code's counter for 1,000 clicks: {writes}")
    assert 1 <= writes <= 10  # one per stream batch (+1 failed attempt when the item is new)
    batches[0] = 0
    with counter_updates() as updates:
        redeliver_everything(streams)
    assert counts(code=code)["total"] == 1000
    # at most one refused conditional update a batch; how many batches the 1,000 records make
    # depends on the 30 s tumbling windows their write times fall in
    assert 1 <= batches[0] <= 10
    assert updates.get(ClickCounter.key(code=code)[0], 0) <= batches[0]


# -- abuse: never refuse a person, never count a crawler ------------------------------------

def test_over_the_limit_a_click_still_redirects_but_is_not_counted(client, configure):
    code = code_of(client, login(client, "a"))
    configure(RATE_LIMIT_PER_MINUTE="3")
    ratelimit.reset()
    locations = [follow(client, f"/r/{code}") for _ in range(6)]  # one busy NAT: one IP for everyone
    assert all(parse_qs(urlsplit(loc).query)["ref"] == [code] for loc in locations)
    assert ["click" in parse_qs(urlsplit(loc).query) for loc in locations] == [True] * 3 + [False] * 3
    assert len(all_clicks()) == 3


@pytest.mark.parametrize("agent", [
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "TelegramBot (like TwitterBot)",
    "WhatsApp/2.23.20.0",
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
])
def test_link_preview_crawlers_get_the_preview_and_are_never_counted(client, agent):
    code = code_of(client, login(client, "a"))
    response = client.get(f"/r/{code}", headers={"User-Agent": agent})
    assert response.status_code == 200 and b'property="og:title"' in response.body  # tests/test_share_pages.py
    assert all_clicks() == []
    assert clicks.record(code, None, "1.2.3.4", agent).click is None  # record() refuses them too
    assert all_clicks() == []
    follow(client, f"/r/{code}")  # a person with a phone still counts
    assert len(all_clicks()) == 1
