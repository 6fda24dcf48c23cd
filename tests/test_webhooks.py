"""Outbound events through signed webhooks, to real HTTP receivers on loopback: events derived
once from the stream whatever its redeliveries, signatures a receiver can check, retries with
backoff, `dead` after the retry window and re-drive, isolation of a failing receiver."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.core import clock
from chalicelib.rewards import sweeps as release
from chalicelib.webhooks import delivery, signing
from chalicelib.webhooks.events import TYPES
from tests.flows import code_of, login, spring_campaign
from tests.helpers import token
from tests.webhook_receiver import Receiver


def admin():
    return token("ada", "admin")


def subscribe(client, url: str, events=TYPES) -> dict:
    response = client.post("/v1/ops/webhooks", {"url": url, "events": list(events)}, token=admin())
    assert response.status_code == 201, response.body
    return response.json_body


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(answer=lambda n: 200) -> Receiver:
        made.append(Receiver(answer))
        return made[-1]

    yield make
    for r in made:
        r.close()


def purchase(client, order_id, member_id, amount_fen):
    response = client.post("/v1/events/purchases", {"order_id": order_id, "member_id": member_id,
                                                    "amount_fen": amount_fen}, token=token("brand", "service"))
    assert response.status_code in (200, 201), response.body


def refer_and_convert(client, streams):
    spring_campaign(client)
    _, ada, _ = login(client, "ada-openid", "Ada")
    _, lily, _ = login(client, "lily-openid", "Lily", referral={"code": code_of(ada, "spring")})
    purchase(client, "o-1", lily, 100_00)
    streams.drain()
    return ada, lily


def test_a_referral_reaches_a_subscriber_signed_and_once_per_event(client, streams, receiver):
    box = receiver()
    hook = subscribe(client, box.url)
    assert hook["secret"].startswith("whsec_")
    listed = client.get("/v1/ops/webhooks", token=admin()).json_body["items"]
    assert [h["webhook_id"] for h in listed] == [hook["webhook_id"]] and "secret" not in listed[0]

    ada, lily = refer_and_convert(client, streams)
    assert delivery.send_due() >= 5
    types = [e["type"] for e in box.events()]
    assert types.count("member.created") == 2
    assert "referral.bound" in types and "referral.converted" in types and "reward.pending" in types
    converted = next(e for e in box.events() if e["type"] == "referral.converted")
    assert converted["data"]["referee_id"] == lily and converted["data"]["referrer_id"] == ada
    for headers, body in box.requests:  # every request verifies with the secret shown once
        assert signing.verify(hook["secret"], headers["x-referral-signature"], body, now=clock.epoch())
        assert headers["x-referral-event-id"] == __import__("json").loads(body)["event_id"]
    assert not signing.verify("whsec_wrong", box.requests[0][0]["x-referral-signature"], box.requests[0][1],
                              now=clock.epoch())

    # the stream comes again from the start, the sweep runs again: nothing is sent twice
    streams.replay_from_start()
    streams.drain()
    assert delivery.send_due() == 0
    ids = [e["event_id"] for e in box.events()]
    assert len(ids) == len(set(ids))

    # a quick partial refund: the referral is flagged, the rewards it undoes are reversed
    refund = client.post("/v1/events/refunds", {"order_id": "o-1", "refund_id": "r-1", "amount_fen": 10_00},
                         token=token("brand", "service"))
    assert refund.status_code in (200, 201), refund.body
    streams.drain()
    delivery.send_due()
    flagged = [e for e in box.events() if e["type"] == "fraud.flagged"]
    assert [e["data"]["referee_id"] for e in flagged] == [lily]
    reversed_ = [e for e in box.events() if e["type"] == "reward.reversed"]
    assert reversed_ and all(e["data"]["reversed_now"] > 0 for e in reversed_)

    # the hold passes: the referee's own rewards become available, one event each; the
    # referrer's stay held by the open flag, and no event says otherwise
    clock.advance(timedelta(days=8))
    release.release_due()
    streams.drain()
    delivery.send_due()
    available = [e for e in box.events() if e["type"] == "reward.available"]
    assert available and {e["data"]["member_id"] for e in available} == {lily}
    log = client.get(f"/v1/ops/webhooks/{hook['webhook_id']}/deliveries?limit=100", token=admin()).json_body
    assert len(log["items"]) == len(box.requests)
    assert {d["status"] for d in log["items"]} == {"delivered"}


def test_only_subscribed_types_are_sent(client, streams, receiver):
    box = receiver()
    subscribe(client, box.url, events=["referral.converted"])
    refer_and_convert(client, streams)
    delivery.send_due()
    assert [e["type"] for e in box.events()] == ["referral.converted"]


def test_a_receiver_failing_at_first_gets_the_event_on_a_retry(client, streams, receiver):
    box = receiver(lambda n: 503 if n <= 2 else 204)
    hook = subscribe(client, box.url, events=["member.created"])
    login(client, "kim-openid", "Kim")
    streams.drain()
    assert delivery.send_due() == 0
    [item] = client.get(f"/v1/ops/webhooks/{hook['webhook_id']}/deliveries", token=admin()).json_body["items"]
    assert item["status"] == "pending" and item["attempts"] == 1 and item["last_status_code"] == 503
    assert delivery.send_due() == 0  # not due yet: backing off
    clock.advance(timedelta(minutes=1))
    assert delivery.send_due() == 0  # second failure
    clock.advance(timedelta(minutes=3))
    assert delivery.send_due() == 1
    [item] = client.get(f"/v1/ops/webhooks/{hook['webhook_id']}/deliveries", token=admin()).json_body["items"]
    assert item["status"] == "delivered" and item["attempts"] == 3
    bodies = {body for _, body in box.requests}
    assert len(bodies) == 1  # the same event, byte for byte, on every attempt


def test_a_receiver_that_never_answers_ends_dead_and_can_be_redriven(client, streams, receiver, monkeypatch):
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.3)
    answers = {"mode": "hang"}
    box = receiver(lambda n: answers["mode"])
    hook = subscribe(client, box.url, events=["member.created"])
    login(client, "kim-openid", "Kim")
    streams.drain()
    for _ in range(12):  # a day and a half, a sweep every four hours
        delivery.send_due()
        clock.advance(timedelta(hours=4))
    log_url = f"/v1/ops/webhooks/{hook['webhook_id']}/deliveries"
    [item] = client.get(log_url, token=admin()).json_body["items"]
    assert item["status"] == "dead" and item["next_attempt_at"] is None
    assert 5 <= item["attempts"] <= 14 and "timed out" in (item["last_error"] or "")
    assert client.get(log_url + "?status=dead", token=admin()).json_body["items"] == [item]
    assert delivery.send_due() == 0  # dead: not tried again

    answers["mode"] = 200
    response = client.post(f"{log_url}/{item['delivery_id']}/retry", {}, token=admin())
    assert response.status_code == 200 and response.json_body["status"] == "pending"
    assert delivery.send_due() == 1
    again = client.post(f"{log_url}/{item['delivery_id']}/retry", {}, token=admin())
    assert again.status_code == 409 and again.json_body["error"]["code"] == "delivery_not_dead"


def test_a_hanging_receiver_does_not_hold_up_another(client, streams, receiver, monkeypatch):
    # short, but long enough for the answering receiver on a loaded machine (at 0.5 s one of its
    # twelve once timed out in a full-suite run)
    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 2.0)
    slow, fine = receiver(lambda n: "hang"), receiver()
    subscribe(client, slow.url, events=["member.created"])
    subscribe(client, fine.url, events=["member.created"])
    for n in range(12):
        login(client, f"m{n}-openid", f"M{n}")
    streams.drain()
    assert delivery.send_due() == 12
    assert len(fine.requests) == 12
    assert len(slow.requests) <= delivery.DELIVERY_SHARDS * delivery.FAILURES_BEFORE_PAUSE


def test_urls_and_bodies_are_checked(client, configure):
    bad = client.post("/v1/ops/webhooks", {"url": "ftp://x.example.com/h", "events": ["member.created"]}, token=admin())
    assert bad.status_code == 422
    unknown = client.post("/v1/ops/webhooks", {"url": "https://x.example.com/h", "events": ["member.deleted"]},
                          token=admin())
    assert unknown.status_code == 422
    assert client.post("/v1/ops/webhooks", {"url": "https://x.example.com/h", "events": ["member.created"]},
                       token=token("olivia", "ops")).status_code == 403
    configure(STAGE="prod", JWT_SECRET="prod-secret-for-tests-0123456789abcdef-xyz")
    prod_admin = token("ada", "admin")
    for url in ("http://hooks.example.com/h", "https://127.0.0.1/h", "https://10.1.2.3/h", "https://localhost/h",
                "https://169.254.169.254/latest", "https://user:pw@hooks.example.com/h"):
        response = client.post("/v1/ops/webhooks", {"url": url, "events": ["member.created"]}, token=prod_admin)
        assert response.status_code == 422, (url, response.body)
        assert response.json_body["error"]["code"] in ("url_not_allowed", "validation_failed")
    ok = client.post("/v1/ops/webhooks", {"url": "https://hooks.example.com/h", "events": ["member.created"]},
                     token=prod_admin)
    assert ok.status_code == 201, ok.body


def test_delivery_refuses_private_addresses_outside_local(configure, monkeypatch):
    from chalicelib.webhooks import addresses

    configure(STAGE="prod")
    monkeypatch.setattr(addresses.socket, "getaddrinfo",
                        lambda host, port, type=0: [(2, 1, 6, "", ("10.0.0.7", port))])
    status, error = delivery.post("https://rebound.example.com/h", b"{}", {})
    assert status is None and "non-public" in error


def test_removing_a_webhook_stops_its_deliveries(client, streams, receiver):
    box = receiver()
    hook = subscribe(client, box.url, events=["member.created"])
    login(client, "kim-openid", "Kim")
    streams.drain()
    response = client.request("DELETE", f"/v1/ops/webhooks/{hook['webhook_id']}", token=admin())
    assert response.status_code == 204
    assert delivery.send_due() == 0 and box.requests == []
    assert client.request("DELETE", f"/v1/ops/webhooks/{hook['webhook_id']}", token=admin()).status_code == 404


def test_backoff_grows_with_jitter_and_stays_under_the_cap():
    assert 15 <= delivery.backoff_seconds(1) <= 30
    assert 30 <= delivery.backoff_seconds(2) <= 60
    assert delivery.backoff_seconds(30, rng=lambda: 1.0) == delivery.MAX_RETRY_SECONDS
    total = sum(delivery.backoff_seconds(n, rng=lambda: 1.0) for n in range(1, 14))
    assert 20 * 3600 < total < 40 * 3600  # about a day of retries


def test_points_expiring_and_expired_reach_a_subscriber(client, streams, receiver):
    from chalicelib.points import expiry
    from tests.flows import purchase as report_purchase, signup

    box = receiver()
    subscribe(client, box.url, events=["points.expiring", "points.expired"])
    signup(client, "ann")
    assert report_purchase(client, "o1", "ann", 100_00).status_code == 200
    streams.drain()
    clock.advance(timedelta(days=8))
    release.release_due()
    streams.drain()
    for days in (340, 30):  # inside the notice period, then past the expiry day
        clock.advance(timedelta(days=days))
        expiry.run_due()
        expiry.run_due()  # a duplicated run
        streams.drain()
        delivery.send_due()
    [expiring, expired] = box.events()
    assert expiring["type"] == "points.expiring" and expiring["data"]["points"] == 100
    assert expiring["data"]["member_id"] == "ann" and expiring["data"]["expires_at"]
    assert expired["type"] == "points.expired" and expired["data"]["points"] == 100


def test_a_receiver_dripping_its_answer_is_cut_at_the_deadline(monkeypatch):
    import socket
    import threading
    import time as wall

    monkeypatch.setattr(delivery, "TIMEOUT_SECONDS", 0.5)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def drip():
        conn, _ = server.accept()
        conn.recv(65536)
        for char in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 40:  # a byte every 0.2 s: 10 s in all
            try:
                conn.send(bytes([char]))
            except OSError:
                break
            wall.sleep(0.2)
        conn.close()

    threading.Thread(target=drip, daemon=True).start()
    started = wall.monotonic()
    status, error = delivery.post(f"http://127.0.0.1:{server.getsockname()[1]}/h", b"{}", {})
    assert status is None and "timed out" in error
    assert wall.monotonic() - started < 5  # cut near 0.5 s, long before the receiver's 10 s
    server.close()


def test_an_unsendable_url_fails_the_attempt_not_the_sweep(client):
    assert client.post("/v1/ops/webhooks", {"url": "https://crm.example.com/hooks/积分", "events": ["member.created"]},
                       token=admin()).status_code == 422
    status, error = delivery.post("http://127.0.0.1:9/hooks/积分", b"{}", {})  # as if stored before the check
    assert status is None and error


def test_an_undone_conversion_is_announced(client, streams, receiver):
    box = receiver()
    subscribe(client, box.url, events=["referral.converted", "referral.unconverted"])
    ada, lily = refer_and_convert(client, streams)
    clock.advance(timedelta(days=3))  # past the quick-refund window
    response = client.post("/v1/events/refunds", {"order_id": "o-1", "refund_id": "r-all", "amount_fen": 100_00},
                           token=token("brand", "service"))
    assert response.status_code in (200, 201), response.body
    streams.drain()
    delivery.send_due()
    streams.replay_from_start()
    streams.drain()
    delivery.send_due()
    events = sorted(box.events(), key=lambda e: e["type"])  # delivery order is not guaranteed
    assert [(e["type"], e["data"]["order_id"]) for e in events] == [
        ("referral.converted", "o-1"), ("referral.unconverted", "o-1")]
    assert events[1]["data"]["status"] == "signed_up"
