"""Binding at sign-up, conversion by purchase, refunds, and the graph invariants."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chalicelib.core import clock
from tests.flows import SERVICE, code_of, login, member, purchase, refund, signed_up, signup
from tests.helpers import token


def test_login_with_referral_binds_once_and_stores_ancestors(client):
    _, alice, _ = login(client, "alice", "Alice")
    bob_token, bob, data = login(client, "bob", "张伟", referral={"code": code_of(alice)})
    assert data["created"] is True
    assert data["attribution"]["status"] == "bound"
    assert data["attribution"]["referrer"]["display_name"] == "A***e"
    _, carol, _ = login(client, "carol", "Carol", referral={"code": code_of(bob).lower()})
    assert (member(carol).referrer_id, member(carol).grandparent_id) == (bob, alice)
    # a second login, with another code, binds nothing
    again = login(client, "carol", referral={"code": code_of(alice)})[2]
    assert again["created"] is False
    assert again["attribution"] == {"status": "not_bound", "reason": "already_referred"}
    assert member(carol).referrer_id == bob

    me = client.get("/v1/members/me", token=bob_token).json_body
    assert me["referred_by"]["display_name"] == "A***e"
    assert me["advocate"]["referrals"] == {"signed_up": 1, "converted": 0}
    referrals = client.get("/v1/members/me/referrals", token=bob_token).json_body
    assert [(r["display_name"], r["status"]) for r in referrals["items"]] == [("C***l", "signed_up")]


def test_existing_member_is_not_rebound(client):
    _, alice, _ = login(client, "alice")
    _, bob, _ = login(client, "bob")
    answer = login(client, "bob", referral={"code": code_of(alice)})[2]
    assert answer["attribution"] == {"status": "not_bound", "reason": "existing_member"}
    assert member(bob).referrer_id is None
    assert signed_up(alice) == 0


def test_self_referral_and_unknown_code_are_refused(client):
    signup(client, "u1")
    own = code_of("u1")
    assert signup(client, "u1", own)["attribution"]["reason"] == "self_referral"
    assert signup(client, "u2", "ZZZZZZZ")["attribution"] == {"status": "not_bound", "reason": "unknown_code"}
    assert member("u2").referrer_id is None


def test_three_member_cycle_is_impossible(client):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    signup(client, "c", code_of("b"))
    answer = signup(client, "a", code_of("c"))["attribution"]
    assert answer["status"] == "not_bound" and answer["reason"] == "would_create_cycle"
    assert member("a").referrer_id is None
    assert signed_up("c") == 0


def test_ended_campaign_does_not_bind(client):
    signup(client, "a")
    code = code_of("a")
    current = client.get("/v1/campaigns/default", token=token("olivia", "ops")).json_body
    body = {k: current[k] for k in ("campaign_id", "name", "offer", "landing_url", "rules")}
    ended = client.put("/v1/campaigns/default", {**body, "ends_at": clock.now_iso()}, token=token("olivia", "ops"))
    assert ended.status_code == 200, ended.body
    assert signup(client, "b", code)["attribution"]["reason"] == "campaign_not_running"


def test_click_id_is_linked_when_recent_and_on_the_same_code(client):
    from chalicelib.referrals.models import Click

    signup(client, "a")
    code = code_of("a")
    Click(*Click.key("k1"), click_id="k1", code=code, channel="wechat", at=clock.now_iso()).save()
    Click(*Click.key("k2"), click_id="k2", code="OTHER22", at=clock.now_iso()).save()
    linked = client.post("/v1/events/signups", {"member_id": "b", "referral": {"code": code, "click_id": "k1"}},
                         token=SERVICE).json_body
    assert linked["attribution"]["click_linked"] is True and member("b").referral_click_id == "k1"
    assert member("b").referral_channel == "wechat"  # the funnel counts the sign-up on the click's channel
    other = client.post("/v1/events/signups", {"member_id": "c", "referral": {"code": code, "click_id": "k2"}},
                        token=SERVICE).json_body
    assert other["attribution"]["click_linked"] is False and member("c").referral_click_id is None
    assert member("c").referral_channel == "code"  # no usable click: the code was typed


def test_a_sign_up_through_a_click_waits_on_four_calls(client):
    """Identity, code and click are read in one BatchGetItem; then the referrer, the hour's
    sign-up window (one Query over its shards) and the transaction that creates the member."""
    from chalicelib.referrals.models import Click
    from tests.helpers import count_dynamodb_calls

    _, referrer, _ = login(client, "ada", "Ada")
    code = code_of(referrer)
    Click(*Click.key("k1"), click_id="k1", code=code, channel="wechat", at=clock.now_iso()).save()
    login(client, "warm-up", "Warm")  # the login rate limit's window written (one write per limit/20 logins)
    with count_dynamodb_calls() as calls:
        _, friend, answer = login(client, "bo", "Bo", referral={"code": code, "click_id": "k1"})
    assert answer["attribution"]["status"] == "bound" and answer["attribution"]["click_linked"] is True
    assert sorted(calls.calls) == ["BatchGetItem", "GetItem", "Query", "TransactWriteItems"]
    assert member(friend).referral_click_id == "k1" and member(friend).referrer_id == referrer


def test_purchase_converts_referral_once(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    first = purchase(client, "o1", "b", 120_00)
    assert first.status_code == 200
    assert purchase(client, "o1", "b", 120_00).json_body == first.json_body
    assert purchase(client, "o1", "b", 99_00).status_code == 409
    assert purchase(client, "o2", "nobody", 1_00).status_code == 404
    streams.drain()
    b = member("b")
    assert (b.referral_status, b.converting_order_id, b.orders, b.gmv_fen) == ("converted", "o1", 1, 120_00)
    assert member("a").referrals_converted == 1
    purchase(client, "o3", "b", 80_00)
    streams.drain()
    assert (member("b").orders, member("b").gmv_fen, member("a").referrals_converted) == (2, 200_00, 1)


def test_small_or_late_purchases_do_not_convert(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    signup(client, "c", code_of("a"))
    purchase(client, "small", "b", 10_00)  # the default campaign needs 50 yuan
    clock.advance(timedelta(days=31))  # a fact is never dated ahead of the clock: let the days pass
    late = client.post("/v1/events/purchases", {"order_id": "late", "member_id": "c", "amount_fen": 100_00},
                       token=token("brand-backend", "service"))
    assert late.status_code == 200, late.body
    streams.drain()
    assert member("b").referral_status == "signed_up" and member("b").orders == 1
    assert member("c").referral_status == "signed_up"
    assert member("a").referrals_converted == 0


def test_stream_redelivery_changes_nothing(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    refund(client, "o1", "r1", 10_00)
    streams.drain()
    before = (member("b").attribute_values, member("a").attribute_values)
    streams.replay_from_start()
    assert streams.drain() > 0
    assert (member("b").attribute_values, member("a").attribute_values) == before


def test_refund_rules(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    assert refund(client, "nope", "r1", 1_00).status_code == 404
    assert refund(client, "o1", "r1", 100_01).json_body["error"]["code"] == "refund_exceeds_order"
    assert refund(client, "o1", "r1", 30_00).status_code == 200
    assert refund(client, "o1", "r1", 30_00).status_code == 200  # a retry
    assert refund(client, "o1", "r1", 31_00).status_code == 409  # the same id, another story
    streams.drain()
    assert member("b").referral_status == "converted"  # 70 yuan left: still over the minimum
    assert refund(client, "o1", "r2", 30_00).status_code == 200
    streams.drain()
    assert member("b").referral_status == "signed_up"  # 40 yuan left: under the minimum
    assert member("a").referrals_converted == 0
    assert member("b").gmv_fen == 40_00
    assert refund(client, "o1", "r3", 40_01).status_code == 422


def test_refund_processed_before_its_purchase(client, streams):
    from chalicelib.referrals import attribution

    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 60_00)
    refund(client, "o1", "r1", 20_00)
    attribution.apply_refund("o1", "r1")  # the refund's record arrives first
    attribution.apply_purchase("o1")
    streams.drain()  # and then everything again, in stream order
    b = member("b")
    assert (b.referral_status, b.gmv_fen, b.orders) == ("signed_up", 40_00, 1)
    assert member("a").referrals_converted == 0


def _flags(client, status="open"):
    response = client.get(f"/v1/ops/fraud-flags?status={status}", token=token("olivia", "ops"))
    assert response.status_code == 200, response.body
    return response.json_body["items"]


def test_shared_device_is_flagged_and_resolution_is_audited(client, streams):
    _, alice, _ = login(client, "alice", device_id="dev-1")
    _, bob, data = login(client, "bob", referral={"code": code_of(alice)}, device_id="dev-1")
    assert data["attribution"]["held_for_review"] is True
    assert member(bob).referral_hold == "fraud_review"
    flags = _flags(client)
    assert [(f["referee_id"], f["reasons"]) for f in flags] == [(bob, ["shared_device"])]
    assert client.get("/v1/ops/fraud-flags", token=token(bob)).status_code == 403
    resolve = client.post(f"/v1/ops/fraud-flags/{bob}/resolve", {"action": "approve"}, token=token("olivia", "ops"))
    assert resolve.status_code == 200 and resolve.json_body["status"] == "approved"
    assert member(bob).referral_hold is None
    assert _flags(client) == [] and len(_flags(client, "approved")) == 1
    conflict = client.post(f"/v1/ops/fraud-flags/{bob}/resolve", {"action": "reject"}, token=token("olivia", "ops"))
    assert conflict.status_code == 409
    from chalicelib.insight.audit import AuditRecord

    records = [r for r in AuditRecord.by_gsi1.query("AUDIT") if r.action.startswith("fraud_flag")]
    assert [(r.actor, r.action) for r in records] == [("olivia", "fraud_flag.approve")]


def test_rejected_referral_stops_counting(client, streams):
    signup(client, "a", device_id="d")
    signup(client, "b", code_of("a"), device_id="d")
    assert signed_up("a") == 1
    response = client.post("/v1/ops/fraud-flags/b/resolve", {"action": "reject"}, token=token("olivia", "admin"))
    assert response.status_code == 200
    assert member("b").referral_status == "void" and signed_up("a") == 0
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    assert member("b").referral_status == "void" and member("a").referrals_converted == 0


def test_signup_velocity_and_quick_refund_are_flagged(client, streams):
    from chalicelib.campaigns.rules import default_campaign

    signup(client, "koc")
    code = code_of("koc")
    limit = default_campaign().rules.signups_per_hour_alert
    answers = [signup(client, f"f{i}", code)["attribution"] for i in range(limit + 1)]
    assert not any(a["held_for_review"] for a in answers[:limit])
    assert answers[limit]["held_for_review"] is True
    purchase(client, "o1", "f0", 100_00)
    streams.drain()
    refund(client, "o1", "r1", 100_00)
    streams.drain()
    reasons = {f["referee_id"]: f["reasons"] for f in _flags(client)}
    assert reasons == {f"f{limit}": ["signup_velocity"], "f0": ["quick_refund"]}


@pytest.mark.ddblocal_only
def test_concurrent_signups_with_two_codes_bind_exactly_once(client):
    signup(client, "r1")
    signup(client, "r2")
    codes = [code_of("r1"), code_of("r2")]
    for round_ in range(5):
        member_id = f"new{round_}"
        answers: list = []
        barrier = threading.Barrier(2)

        def attempt(code):
            barrier.wait()
            answers.append(client.post("/v1/events/signups", {"member_id": member_id, "referral": {"code": code}},
                                       token=SERVICE).json_body["attribution"])

        threads = [threading.Thread(target=attempt, args=(c,)) for c in codes]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert sorted(a["status"] for a in answers) == ["bound", "not_bound"], answers
        referrer = member(member_id).referrer_id
        assert referrer in ("r1", "r2")
    assert signed_up("r1") + signed_up("r2") == 5
