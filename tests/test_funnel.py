"""The campaign funnel from the streams: every figure equals what the test sent, per channel and
per day; refunds and undone conversions move it back; redelivery changes nothing (both backends)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from chalicelib.core import clock
from chalicelib.funnel import hll, report, rules, tallies
from chalicelib.referrals.clicks import local_day
from chalicelib.rewards.models import LedgerEntry
from tests.flows import login, spring_campaign
from tests.helpers import keep_main_records, redrive_main, token

ZONE = "Asia/Shanghai"


def ops() -> str:
    return token("olivia", "ops")  # issued when used: the clock moves by days here


def service(path: str, body: dict, client) -> int:
    return client.post(path, body, token=token("brand", "service")).status_code


def purchase(client, order_id: str, member_id: str, amount_fen: int) -> int:
    return service("/v1/events/purchases", {"order_id": order_id, "member_id": member_id, "amount_fen": amount_fen},
                   client)


def refund(client, order_id: str, refund_id: str, amount_fen: int) -> int:
    return service("/v1/events/refunds", {"order_id": order_id, "refund_id": refund_id, "amount_fen": amount_fen},
                   client)


@dataclass
class Sent:
    """What the test did, counted here independently of the service."""

    clicks: dict[str, int] = field(default_factory=dict)  # channel → clicks
    visitors: dict[str, set] = field(default_factory=dict)  # channel → user agents
    signups: dict[str, int] = field(default_factory=dict)
    first_purchases: dict[str, int] = field(default_factory=dict)
    gmv: dict[str, int] = field(default_factory=dict)
    invites: dict[str, int] = field(default_factory=dict)
    advocates: dict[str, set] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)

    def add(self, figure: str, channel: str, n: int = 1) -> None:
        getattr(self, figure)[channel] = getattr(self, figure).get(channel, 0) + n

    def total(self, figure: str, channel: str | None = None) -> int:
        return sum(n for c, n in getattr(self, figure).items() if channel in (None, c))

    def distinct(self, figure: str, channel: str | None = None) -> int:
        return len(set().union(*[s for c, s in getattr(self, figure).items() if channel in (None, c)]))


def funnel(client, query: str = "", as_token: str | None = None, campaign: str = "spring"):
    return client.get(f"/v1/analytics/campaigns/{campaign}/funnel{query}", token=as_token or ops())


def ok(client, query: str = "") -> dict:
    response = funnel(client, query)
    assert response.status_code == 200, response.body
    return response.json_body


class Campaign:
    """Advocates sharing links, friends clicking, signing up and buying, through the public API."""

    def __init__(self, client, sent: Sent | None = None):
        self.client, self.sent = client, sent or Sent()
        spring_campaign(client, referee_signup_points=100, referee_coupon_fen=10_00)
        self.ids: dict[str, str] = {}
        self.codes: dict[str, str] = {}

    def advocate(self, name: str) -> str:
        access_token, member_id, _ = login(self.client, f"{name}-openid", name)
        self.ids[name] = member_id
        self.codes[name] = self.client.get("/v1/members/me/code?campaign_id=spring",
                                           token=access_token).json_body["code"]
        self.sent.members.append(member_id)
        return member_id

    def link(self, name: str, channel: str) -> str:
        response = self.client.post("/v1/links", {"channel": channel, "campaign_id": "spring"},
                                    token=token(self.ids[name]))  # issued now: the clock moves by days here
        assert response.status_code in (200, 201), response.body
        self.sent.add("invites", channel)
        self.sent.advocates.setdefault(channel, set()).add(name)
        return response.json_body["link_id"]

    def click(self, name: str, link_id: str | None, channel: str, visitor: str) -> str:
        path = f"/r/{self.codes[name]}" + (f"?l={link_id}" if link_id else "")
        response = self.client.get(path, headers={"User-Agent": f"Mozilla/5.0 visitor-{visitor}"})
        assert response.status_code == 302, response.body
        self.sent.add("clicks", channel)
        self.sent.visitors.setdefault(channel, set()).add(visitor)
        return parse_qs(urlsplit(response.headers["Location"]).query)["click"][0]

    def signup(self, friend: str, name: str, channel: str, click_id: str | None = None) -> None:
        referral = {"code": self.codes[name], **({"click_id": click_id} if click_id else {})}
        response = self.client.post("/v1/events/signups", {"member_id": friend, "display_name": friend,
                                                           "referral": referral}, token=token("brand", "service"))
        assert response.status_code == 200 and response.json_body["attribution"]["status"] == "bound", response.body
        self.sent.add("signups", channel)
        self.sent.members.append(friend)

    def buy(self, order_id: str, friend: str, channel: str, amount_fen: int, first: bool) -> None:
        assert purchase(self.client, order_id, friend, amount_fen) == 200
        self.sent.add("gmv", channel, amount_fen)
        if first:
            self.sent.add("first_purchases", channel)


def cost(members: list[str]) -> tuple[int, int]:
    """Points and coupon fen the ledger holds for the campaign, net of reversals (read directly)."""
    points = coupon = 0
    for member_id in members:
        for entry in LedgerEntry.query(f"M#{member_id}", LedgerEntry.sk.startswith("LEDGER#"), consistent_read=True):
            if entry.campaign_id != "spring" or entry.rule in ("redemption", "adjustment", "expiry") or entry.voided:
                continue
            net = int(entry.amount) - int(entry.reversed_amount or 0)
            points, coupon = (points + net, coupon) if entry.unit == "points" else (points, coupon + net)
    return points, coupon


def grow(client) -> Campaign:
    """Two advocates, four channels (with the typed code), clicks by repeat visitors, sign-ups,
    a converting purchase, one under the minimum (GMV, no first purchase), one outside the
    window is impossible here; a second purchase (GMV only)."""
    c = Campaign(client)
    c.advocate("Ada"), c.advocate("Bob")
    moments, weibo = c.link("Ada", "wechat_moments"), c.link("Ada", "weibo")
    c.link("Ada", "wechat_moments")  # a second moments link: two invites, one advocate
    friend = c.link("Bob", "wechat_friend")
    k1 = c.click("Ada", moments, "wechat_moments", "v1")
    c.click("Ada", moments, "wechat_moments", "v1")  # the same visitor again
    k2 = c.click("Ada", moments, "wechat_moments", "v2")
    k3 = c.click("Ada", weibo, "weibo", "v3")
    c.click("Ada", weibo, "weibo", "v1")  # v1 again, on another channel
    k4 = c.click("Bob", friend, "wechat_friend", "v4")
    c.click("Bob", None, "other", "v5")  # the bare code: channel "other"
    c.signup("f1", "Ada", "wechat_moments", k1)
    c.signup("f2", "Ada", "wechat_moments", k2)
    c.signup("f3", "Ada", "weibo", k3)
    c.signup("f4", "Bob", "wechat_friend", k4)
    c.signup("f5", "Bob", "code")  # a typed code: no click
    c.buy("o1", "f1", "wechat_moments", 120_00, first=True)
    c.buy("o2", "f1", "wechat_moments", 30_00, first=False)  # a second purchase: GMV only
    c.buy("o3", "f3", "weibo", 20_00, first=False)  # under the ¥50 minimum: GMV, no conversion
    c.buy("o4", "f4", "wechat_friend", 80_00, first=True)
    c.buy("o5", "f5", "code", 60_00, first=True)
    assert purchase(client, "o6", c.ids["Ada"], 90_00) == 200  # an advocate's own order: not referred GMV
    return c


def assert_matches(body: dict, sent: Sent, channel: str | None = None) -> None:
    got = (body["clicks"], body["unique_visitors"], body["signups"], body["first_purchases"], body["gmv_fen"],
           body["invites"], body["advocates"])
    assert got == (sent.total("clicks", channel), sent.distinct("visitors", channel), sent.total("signups", channel),
                   sent.total("first_purchases", channel), sent.total("gmv", channel),
                   sent.total("invites", channel), sent.distinct("advocates", channel))


def test_the_funnel_counts_what_was_sent(client, streams):
    c = grow(client)
    assert ok(client)["clicks"] == 0  # nothing on the request path
    streams.drain()
    body = ok(client)
    assert_matches(body, c.sent)
    assert (body["clicks"], body["unique_visitors"], body["signups"], body["first_purchases"]) == (7, 5, 5, 3)
    points, coupon = cost(c.sent.members)
    assert points > 0 and coupon == 5 * 10_00  # a welcome coupon for each referee
    assert body["rewards_cost"] == {"points": points, "coupon_fen": coupon, "channels": "all"}
    assert body["rewards_cost_fen"] == coupon  # points have no value in fen in the rules
    assert body["rates"]["signup_per_click"] == round(5 / 7, 4)
    assert body["rates"]["purchase_per_signup"] == round(3 / 5, 4)
    assert body["rates"]["purchase_per_click"] == round(3 / 7, 4)
    assert body["k_factor"] == round(5 / 2, 4)  # (4 invites / 2 advocates) × (5 sign-ups / 4 invites)
    today = local_day(clock.now(), ZONE)
    assert body["to"] == today and len(body["by_day"]) == 30 and body["by_day"][-1]["day"] == today
    assert sum(day["gmv_fen"] for day in body["by_day"]) == body["gmv_fen"]
    rows = list(report.daily_rows("spring", today, today))
    assert {row["channel"] for row in rows} == {"wechat_moments", "weibo", "wechat_friend", "other", "code", "all"}
    assert sum(row["clicks"] for row in rows) == 7 and sum(row["coupon_fen"] for row in rows) == coupon
    moments = next(row for row in rows if row["channel"] == "wechat_moments")
    assert (moments["clicks"], moments["unique_visitors"], moments["signups"], moments["invites"]) == (3, 2, 2, 2)


def test_a_channel_shows_its_own_figures_and_the_campaign_cost(client, streams):
    c = grow(client)
    streams.drain()
    for channel in ("wechat_moments", "weibo", "wechat_friend", "other", "code"):
        body = ok(client, f"?channel={channel}")
        assert body["channel"] == channel
        assert_matches(body, c.sent, channel)
        assert body["rewards_cost"]["points"] == cost(c.sent.members)[0]  # not kept per channel
    code = ok(client, "?channel=code")
    assert (code["signups"], code["invites"], code["k_factor"]) == (1, 0, None)  # no links: no advocates
    assert code["rates"]["signup_per_click"] is None  # no clicks to divide by
    assert ok(client, "?channel=wechat_moments")["k_factor"] == round(2 / 1, 4)


def test_a_range_covers_only_its_days(client, streams):
    c = Campaign(client)
    c.advocate("Ada")
    day_one = local_day(clock.now(), ZONE)
    k1 = c.click("Ada", c.link("Ada", "weibo"), "weibo", "v1")
    c.signup("f1", "Ada", "weibo", k1)
    c.buy("o1", "f1", "weibo", 100_00, first=True)
    streams.drain()
    clock.advance(timedelta(days=1))
    day_two = local_day(clock.now(), ZONE)
    k2 = c.click("Ada", c.link("Ada", "qq"), "qq", "v2")
    c.click("Ada", None, "other", "v3")
    c.signup("f2", "Ada", "qq", k2)
    c.buy("o2", "f1", "weibo", 40_00, first=False)  # f1's later order: day two's GMV
    streams.drain()
    first = ok(client, f"?from={day_one}&to={day_one}")
    second = ok(client, f"?from={day_two}&to={day_two}")
    both = ok(client, f"?from={day_one}&to={day_two}")
    figures = ("clicks", "signups", "first_purchases", "gmv_fen", "invites", "advocates", "unique_visitors")
    assert [first[f] for f in figures] == [1, 1, 1, 100_00, 1, 1, 1]
    assert [second[f] for f in figures] == [2, 1, 0, 40_00, 1, 1, 2]
    assert [both[f] for f in figures] == [3, 2, 1, 140_00, 2, 1, 3]  # one advocate both days, counted once
    assert [day["day"] for day in both["by_day"]] == [day_one, day_two]
    assert [day["clicks"] for day in both["by_day"]] == [1, 2]
    assert both["rewards_cost"]["points"] == first["rewards_cost"]["points"] + second["rewards_cost"]["points"]


def test_a_refund_lowers_gmv_and_an_undone_conversion_its_first_purchase(client, streams):
    c = Campaign(client)
    c.advocate("Ada")
    link = c.link("Ada", "weibo")
    for friend in ("f1", "f2"):
        c.signup(friend, "Ada", "weibo", c.click("Ada", link, "weibo", friend))
    c.buy("o1", "f1", "weibo", 100_00, first=True)
    c.buy("o2", "f2", "weibo", 100_00, first=True)
    streams.drain()
    day = local_day(clock.now(), ZONE)
    before = ok(client, f"?from={day}&to={day}")
    assert (before["first_purchases"], before["gmv_fen"]) == (2, 200_00)
    clock.advance(timedelta(days=3))  # past the quick-refund window: no fraud flag
    assert refund(client, "o1", "r1", 30_00) == 200  # partial: GMV only
    assert refund(client, "o2", "r2", 100_00) == 200  # full: the conversion is undone
    streams.drain()
    after = ok(client, f"?from={day}&to={day}")
    assert (after["first_purchases"], after["gmv_fen"], after["signups"]) == (1, 70_00, 2)
    points, coupon = cost(c.sent.members)
    assert after["rewards_cost"]["points"] == points < before["rewards_cost"]["points"]  # reversed rewards


def test_a_rejected_referral_leaves_the_funnel(client, streams):
    spring_campaign(client)
    _, ada, _ = login(client, "ada-openid", "Ada", device_id="dev-1")
    code = client.get("/v1/members/me/code?campaign_id=spring", token=token(ada)).json_body["code"]
    for friend, device in (("f1", "dev-1"), ("f2", "dev-2")):  # f1 signs up on Ada's device: flagged
        body = {"member_id": friend, "display_name": friend, "referral": {"code": code}, "device_id": device}
        assert client.post("/v1/events/signups", body, token=token("brand", "service")).status_code == 200
        assert purchase(client, f"o-{friend}", friend, 100_00) == 200
    streams.drain()
    assert (ok(client)["signups"], ok(client)["first_purchases"], ok(client)["gmv_fen"]) == (2, 2, 200_00)
    resolve = client.post("/v1/ops/fraud-flags/f1/resolve", {"action": "reject"}, token=ops())
    assert resolve.status_code == 200, resolve.body
    streams.drain()
    assert (ok(client)["signups"], ok(client)["first_purchases"], ok(client)["gmv_fen"]) == (1, 1, 100_00)


def test_a_redriven_old_record_moves_no_figure_back(client, streams, monkeypatch):
    """A batch re-driven from the failure store after later changes: the figures follow the
    items as they stand (an undone conversion stays undone, a refund stays refunded)."""
    seen = keep_main_records(monkeypatch)
    c = Campaign(client)
    c.advocate("Ada")
    link = c.link("Ada", "weibo")
    c.signup("f1", "Ada", "weibo", c.click("Ada", link, "weibo", "f1"))
    c.buy("o1", "f1", "weibo", 100_00, first=True)
    streams.drain()
    day = local_day(clock.now(), ZONE)
    assert (ok(client, f"?from={day}&to={day}")["first_purchases"], ok(client, f"?from={day}&to={day}")["gmv_fen"]) \
        == (1, 100_00)
    before_refund = list(seen)
    clock.advance(timedelta(days=3))
    assert refund(client, "o1", "r1", 100_00) == 200  # undoes the conversion
    streams.drain()
    after = ok(client, f"?from={day}&to={day}")
    assert (after["first_purchases"], after["gmv_fen"]) == (0, 0)
    redrive_main(before_refund)
    assert ok(client, f"?from={day}&to={day}") == after


def test_a_campaign_whose_stored_rules_no_longer_validate_still_counts_and_answers(client, streams):
    """Its days fall back to the default zone: no 500 for ops, no stream shard stopped."""
    import json

    from chalicelib.campaigns import service as campaigns
    from chalicelib.campaigns.models import Campaign as Stored

    c = Campaign(client)
    c.advocate("Ada")
    c.link("Ada", "weibo")
    stored = Stored.get(*Stored.key("spring"), consistent_read=True)
    broken = {**json.loads(stored.rules), "time_zone": "Mars/Olympus"}
    stored.update(actions=[Stored.rules.set(json.dumps(broken))])
    campaigns._recent.clear()
    streams.drain()
    assert ok(client)["invites"] == 1  # the link's handler counted it (on the default zone's day)
    for path in ("/v1/analytics/campaigns/spring/quality", "/v1/leaderboards/spring",
                 "/v1/ops/exports/funnel.csv?campaign_id=spring"):
        assert client.get(path, token=ops()).status_code == 200, path


def test_redelivery_and_replay_change_nothing(client, streams):
    grow(client)
    clock.advance(timedelta(days=3))
    assert refund(client, "o4", "r1", 80_00) == 200
    streams.drain()
    before = (ok(client), ok(client, "?channel=wechat_moments"))
    streams.replay_from_start()
    assert streams.drain(ignore_backoff=True) > 0  # every record came again
    assert (ok(client), ok(client, "?channel=wechat_moments")) == before


def test_who_may_ask_and_what_is_refused(client):
    spring_campaign(client)
    assert funnel(client, as_token=token("m-1")).status_code == 403
    assert funnel(client, as_token=token("ann", "admin")).status_code == 200
    assert funnel(client, as_token=token("brand", "service")).status_code == 403
    missing = funnel(client, campaign="nope")
    assert missing.status_code == 404 and missing.json_body["error"]["code"] == "campaign_not_found"
    for query in ("?from=2026-11-02&to=2026-11-01", "?from=2025-01-01&to=2026-01-02", "?from=2026-02-30",
                  "?to=26-11-01", "?channel=telegram", "?from=2099-01-01"):
        response = funnel(client, query)
        assert response.status_code == 422, (query, response.body)
        assert response.json_body["error"]["code"] == "validation_failed"
    assert ok(client, "?from=2025-01-01&to=2026-01-01")["by_day"][-1]["day"] == "2026-01-01"  # 366 days


def test_an_overlapping_click_batch_adds_only_its_new_clicks(backend):
    """A batch redelivered with new records behind it (a retry after a partial failure) adds only
    the records above its lane's mark; another lane counts on its own; visitors merge."""
    cell = ("spring", "2026-11-23", "weibo")
    tallies.merge(cell, "c", 1, [(11, "v1"), (12, "v2")], lane="lane-a")
    tallies.merge(cell, "c", 1, [(12, "v2"), (13, "v3")], lane="lane-a")
    tallies.merge(cell, "c", 1, [(11, "v1")], lane="lane-a")  # an old batch again
    tallies.merge(cell, "c", 1, [(5, "v1")], lane="lane-b")
    tallies.merge(cell, "c", 2, [(7, "v4")], lane="lane-c")  # another shard's item
    (row,) = report.daily_rows("spring", "2026-11-23", "2026-11-23")
    assert (row["channel"], row["clicks"], row["unique_visitors"]) == ("weibo", 5, 4)


def test_the_sketch_is_within_its_error_and_merges_idempotently():
    rng = random.Random(7)
    values = [f"visitor-{rng.random()}" for _ in range(20_000)]
    one = hll.add(hll.empty(), values[:12_000])
    two = hll.add(hll.empty(), values[8_000:])
    merged = hll.merge(one, two)
    assert abs(hll.estimate(merged) - 20_000) <= 3 * hll.RELATIVE_ERROR * 20_000
    assert hll.merge(merged, one) == merged == hll.merge(two, one)  # again, or in another order: the same
    assert hll.unpack(hll.pack(merged)) == merged and hll.estimate(hll.empty()) == 0
    a, b = (bytes(rng.randint(0, 54) for _ in range(hll.M)) for _ in range(2))
    assert hll.merge(a, b) == bytes(map(max, a, b))  # the big-integer merge is the register-wise max
    assert rules.k_factor(0, 0, 3)["k_factor"] is None


def test_a_batch_of_entries_adds_each_cost_once_and_exactly(backend):
    """A batch's ledger entries are applied together: the day's cost is their sum, a batch too
    large for one transaction is split, and applying it again, or an entry's reversal, moves the
    cost by exactly what changed."""
    from chalicelib.funnel import facts

    cell = ("spring", "2026-11-30", rules.ALL_CHANNELS)

    def cost() -> int:
        return report.cells("spring", "2026-11-30", "2026-11-30")[("2026-11-30", rules.ALL_CHANNELS)].figures["points"]

    entries = {f"entry.m{n}.e": {cell: {"points": 10}} for n in range(150)}
    assert facts.apply_many(entries) == 150 and cost() == 1500
    assert facts.apply_many(entries) == 0 and cost() == 1500
    assert facts.apply_many({"entry.m0.e": {cell: {"points": 4}}, "entry.m1.e": {cell: {"points": 0}}}) == 2
    assert cost() == 1500 - 6 - 10
