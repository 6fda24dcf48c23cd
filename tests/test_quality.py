"""Quality of referred members from the stream: repeat purchases within 30 and 90 days (only
once a cohort's window has closed), refunds, by channel and for the top advocates; the figures
are those of the facts, whenever and however often the stream delivers them."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from chalicelib.core import clock
from tests.flows import code_of, login, spring_campaign
from tests.helpers import token

T0 = clock.parse("2027-03-01T04:00:00Z")  # noon in Shanghai (the campaign's zone): cohort day 2027-03-01
MIN_FEN = 50_00  # spring_campaign's minimum purchase for a conversion
# referee → (advocate, how it arrived, sign-up day)
REFERRALS = {"m1": ("Ada", "wechat_moments", 0), "m2": ("Ada", "wechat_moments", 0), "c1": ("Ada", "code", 0),
             "b1": ("Bob", "code", 0), "b2": ("Bob", "code", 0), "b3": ("Bob", "code", 0),
             "n1": ("Bob", "code", 0), "m3": ("Ada", "wechat_moments", 45)}
ORDERS = [  # (day, referee, order id, amount)
    (0, "m1", "m1-a", 100_00), (0, "m2", "m2-a", 80_00), (0, "c1", "c1-a", 60_00), (0, "b1", "b1-a", 100_00),
    (0, "b2", "b2-a", 100_00), (0, "b3", "b3-a", 100_00), (0, "n1", "n1-a", 10_00),  # n1: under the minimum
    (10, "m1", "m1-b", 30_00),  # a repeat at 10 days
    (10, "b1", "b1-b", 20_00),  # refunded in full below: no repeat
    (45, "c1", "c1-b", 40_00),  # a repeat at 45 days
    (45, "m3", "m3-a", 70_00),  # a second cohort, 45 days later
    (120, "b2", "b2-b", 50_00),  # at 120 days: beyond both windows
]
REFUNDS = [(3, "b3-a", "r-b3", 100_00),  # the converting order refunded in full: the conversion is undone
           (5, "m2-a", "r-m2", 20_00), (11, "b1-b", "r-b1", 20_00)]
DAYS = sorted({day for _, _, day in REFERRALS.values()} | {o[0] for o in ORDERS} | {r[0] for r in REFUNDS})


def service():
    return token("brand", "service")  # issued at the moved clock


def ops():
    return token("olivia", "ops")


def move_to(day: int) -> None:
    clock.advance(T0 + timedelta(days=day) - clock.now())


def day_of(day: int) -> str:
    return (T0 + timedelta(days=day)).strftime("%Y-%m-%d")


def sent(response):
    assert response.status_code == 200, response.body
    return response.json_body


def advocates(client) -> dict:
    """Ada and Bob, Ada with a WeChat Moments link; returns name → (member id, link path)."""
    spring_campaign(client)
    out = {}
    for name in ("Ada", "Bob"):
        member_token, member_id, _ = login(client, f"{name.lower()}-openid", name)
        link = client.post("/v1/links", {"campaign_id": "spring", "channel": "wechat_moments"}, token=member_token)
        assert link.status_code == 201, link.body
        out[name] = (member_id, link.json_body["url"].removeprefix("https://ref.example.com"))
    return out


def sign_up(client, people: dict, referee: str) -> None:
    advocate, channel, _ = REFERRALS[referee]
    member_id, link_path = people[advocate]
    referral = {"code": code_of(member_id, "spring")}
    if channel != "code":  # followed the advocate's link: the sign-up carries the click
        followed = client.get(link_path)
        referral["click_id"] = parse_qs(urlsplit(followed.headers["Location"]).query)["click"][0]
    sent(client.post("/v1/events/signups", {"member_id": referee, "display_name": referee, "referral": referral},
                     token=service()))


def play(client, streams, people: dict, first: int, last: int, drain: bool = True) -> None:
    """Send the facts of days first..last, each on its day; the stream runs after each day."""
    for day in [d for d in DAYS if first <= d <= last]:
        move_to(day)
        for referee, (_, _, signup_day) in REFERRALS.items():
            if signup_day == day:
                sign_up(client, people, referee)
        for _, referee, order_id, amount in [o for o in ORDERS if o[0] == day]:
            sent(client.post("/v1/events/purchases", {"order_id": order_id, "member_id": referee,
                                                      "amount_fen": amount}, token=service()))
        for _, order_id, refund_id, amount in [r for r in REFUNDS if r[0] == day]:
            sent(client.post("/v1/events/refunds", {"order_id": order_id, "refund_id": refund_id,
                                                    "amount_fen": amount}, token=service()))
        if drain:
            streams.drain()


# -- what the figures must be, worked out from the facts above (independently of the service) --

def _rate(part, whole):
    return round(part / whole, 4) if whole else None


def _figures(rows: list[dict]) -> dict:
    out = {"members": len(rows)}
    for n in (30, 90):
        eligible = [r for r in rows if r[f"closed_{n}"]]
        repeated = sum(r[f"repeat_{n}"] for r in eligible)
        out[f"repeat_{n}d"] = {"eligible": len(eligible), "repeated": repeated, "rate": _rate(repeated, len(eligible))}
    gmv, refunded = sum(r["gmv"] for r in rows), sum(r["refunded"] for r in rows)
    refunders = sum(1 for r in rows if r["refunded"])
    out["refunds"] = {"gmv_fen": gmv, "refunded_fen": refunded, "rate": _rate(refunded, gmv),
                      "members_with_refund": refunders, "member_rate": _rate(refunders, len(rows))}
    return out


def expected(now: int, first_day: int, last_day: int) -> dict:
    refunded = {o[2]: sum(r[3] for r in REFUNDS if r[1] == o[2] and r[0] <= now) for o in ORDERS}
    rows = []
    for referee, (advocate, channel, _) in REFERRALS.items():
        orders = [(day, order_id, amount) for day, who, order_id, amount in ORDERS if who == referee and day <= now]
        converting = [o for o in orders if o[2] - refunded[o[1]] >= MIN_FEN]
        if not converting:
            continue  # never converted, or its conversion was undone
        start = min(converting)[0]
        if not first_day <= start <= last_day:
            continue
        window = [o for o in orders if start <= o[0] <= start + 90]
        row = {"advocate": advocate, "channel": channel, "gmv": sum(o[2] for o in window),
               "refunded": sum(refunded[o[1]] for o in window)}
        for n in (30, 90):
            # the cohort day ends 12 h after noon; its window closes n days later
            row[f"closed_{n}"] = now > start + n
            row[f"repeat_{n}"] = int(any(o[0] - start <= n and refunded[o[1]] < o[2]
                                         for o in window if o[1] != min(converting)[1]))
        rows.append(row)
    channels = sorted({r["channel"] for r in rows})
    return {"cohort": _figures(rows),
            "by_channel": [{"channel": c, **_figures([r for r in rows if r["channel"] == c])} for c in channels],
            "advocates": {a: _figures([r for r in rows if r["advocate"] == a]) for a in ("Ada", "Bob")}}


def quality(client, **query) -> dict:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return sent(client.get(f"/v1/analytics/campaigns/spring/quality?{qs}", token=ops()))


def shown(body: dict) -> dict:
    """The figures of a response, in the shape `expected` gives (advocates by name)."""
    return {"cohort": body["cohort"], "by_channel": body["by_channel"],
            "advocates": {row["member"]["display_name"]: {k: row[k] for k in ("members", "repeat_30d", "repeat_90d",
                                                                              "refunds")}
                          for row in body["top_advocates"]}}


def test_repeats_refunds_channels_and_advocates_mature_with_the_cohort(client, streams):
    people = advocates(client)
    play(client, streams, people, 0, 5)
    young = quality(client)  # 5 days in: no 30-day window has closed yet
    assert (young["from"], young["to"]) == (day_of(5 - 89), day_of(5))
    assert young["cohort"]["members"] == 5  # b3's conversion was undone by its refund; n1 never converted
    assert young["cohort"]["repeat_30d"] == {"eligible": 0, "repeated": 0, "rate": None}
    assert shown(young) == expected(5, 0, 0)

    play(client, streams, people, 6, 60)
    move_to(60)
    body = quality(client)  # the last 90 days: both cohorts
    assert shown(body) == expected(60, 0, 45)
    assert body["cohort"]["repeat_30d"]["eligible"] == 5 and body["cohort"]["repeat_90d"]["eligible"] == 0
    assert [row["channel"] for row in body["by_channel"]] == ["code", "wechat_moments"]
    assert [(row["member"]["display_name"], row["referrals"]) for row in body["top_advocates"]] == \
        [("Ada", 4), ("Bob", 2)]
    second = quality(client, **{"from": day_of(45), "to": day_of(45)})  # the young cohort alone
    assert shown(second) == expected(60, 45, 45)
    assert second["cohort"]["members"] == 1 and second["cohort"]["repeat_30d"]["eligible"] == 0

    play(client, streams, people, 61, 140)
    move_to(140)
    final = quality(client, **{"from": day_of(0), "to": day_of(45)})
    assert shown(final) == expected(140, 0, 45)
    assert final["cohort"]["repeat_90d"] == {"eligible": 6, "repeated": 2, "rate": round(2 / 6, 4)}  # m1 and c1
    assert final["cohort"]["repeat_30d"]["repeated"] == 1  # m1 only: b1's second order was refunded in full
    assert final["cohort"]["refunds"]["refunded_fen"] == 40_00  # m2's partial refund and b1's second order
    assert quality(client, top=1)["top_advocates"][0]["member"]["display_name"] == "Ada"

    streams.replay_from_start()  # every record delivered again
    assert streams.drain() > 0
    assert shown(quality(client, **{"from": day_of(0), "to": day_of(45)})) == shown(final)


def test_the_figures_do_not_depend_on_when_the_stream_runs(client, streams):
    people = advocates(client)
    play(client, streams, people, 0, 140, drain=False)  # 140 days of facts, then the stream at once
    move_to(140)
    streams.drain()
    assert shown(quality(client, **{"from": day_of(0), "to": day_of(45)})) == expected(140, 0, 45)


def test_members_are_refused_and_bad_queries_answered(client):
    spring_campaign(client)
    path = "/v1/analytics/campaigns/spring/quality"
    assert client.get(path, token=token("m-1")).status_code == 403
    assert client.get(path).status_code == 401
    missing = client.get("/v1/analytics/campaigns/nope/quality", token=ops())
    assert missing.status_code == 404 and missing.json_body["error"]["code"] == "campaign_not_found"
    for query in ("from=2027-03-02&to=2027-03-01", "from=2027-02-30", "to=2027-3-1", "from=2025-01-01&to=2026-06-01",
                  "top=51", "top=0"):
        response = client.get(f"{path}?{query}", token=ops())
        assert response.status_code == 422, (query, response.body)
        assert set(response.json_body["error"]) == {"code", "message", "details"}
    empty = sent(client.get(f"{path}?from=2027-03-01&to=2027-03-31", token=ops()))
    assert empty["cohort"]["members"] == 0 and empty["cohort"]["refunds"]["rate"] is None
    assert empty["by_channel"] == [] and empty["top_advocates"] == []


def test_an_order_past_the_window_costs_one_read_and_no_write(client, streams):
    """A loyal referee keeps buying for years: orders past the 90 days that count are not
    recomputed (each would re-read every order in the window)."""
    from chalicelib.facts.models import Order
    from chalicelib.quality import handlers
    from chalicelib.streams import Change
    from tests.helpers import count_dynamodb_calls

    service = token("brand", "service")
    spring_campaign(client)
    _, ada, _ = login(client, "ada-openid", "Ada")
    assert client.post("/v1/events/signups", {"member_id": "r1", "display_name": "r1",
                                              "referral": {"code": code_of(ada, "spring")}}, token=service).status_code == 200
    assert client.post("/v1/events/purchases", {"order_id": "o1", "member_id": "r1", "amount_fen": 100_00},
                       token=service).status_code == 200
    streams.drain()
    clock.advance(timedelta(days=200))
    service = token("brand", "service")
    assert client.post("/v1/events/purchases", {"order_id": "o2", "member_id": "r1", "amount_fen": 10_00},
                       token=service).status_code == 200
    order = Order.get(*Order.key("o2"), consistent_read=True)
    with count_dynamodb_calls() as calls:
        handlers.order_changed(Change("INSERT", "order", order, None, "1", False))
    assert (calls.reads, calls.writes) == (1, 0), calls.calls
