"""Red packets (拼手气红包): random shares ≥ 1 fen summing to the total, one claim per member,
never the sender, never over-issued, the unclaimed rest returned to the budget once."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.core import clock
from chalicelib.engagement import red_packets
from chalicelib.rewards import budget
from tests.flows import OPS, login, member, spring_campaign
from tests.ledger_checks import entries
from tests.test_engagement import assert_error, concurrently


def _spent_fen(campaign_id: str = "spring") -> int:
    return budget.totals(campaign_id)["fen"]


def _in(hours: int) -> str:
    return clock.iso(clock.now() + timedelta(hours=hours))


def _ops_packet(client, total_fen=1000, count=5, hours=24, campaign_id="spring"):
    answer = client.post("/v1/red-packets", {"campaign_id": campaign_id, "total_fen": total_fen, "count": count,
                                             "expires_at": _in(hours)}, token=OPS)
    assert answer.status_code == 201, answer.body
    return answer.json_body


def _claim(client, packet_id, who, key="k"):
    return client.post(f"/v1/red-packets/{packet_id}/claims", token=who, headers={"Idempotency-Key": key})


def _friends(client, n, prefix="f"):
    return [login(client, f"{prefix}{i}", name=f"Friend{i}")[0:2] for i in range(n)]


def test_shares_are_random_at_least_a_fen_and_sum_to_the_total(client):
    spring_campaign(client, budget_fen=100_00)
    packet = _ops_packet(client, total_fen=1000, count=5)
    friends = _friends(client, 6)
    answers = [_claim(client, packet["packet_id"], tok) for tok, _ in friends[:5]]
    assert all(a.status_code == 200 for a in answers), [a.body for a in answers]
    amounts = [a.json_body["amount_fen"] for a in answers]
    assert sum(amounts) == 1000 and min(amounts) >= 1 and len(set(amounts)) > 1
    assert_error(_claim(client, packet["packet_id"], friends[5][0]), 409, "packet_empty")
    again = _claim(client, packet["packet_id"], friends[0][0], key="k2")  # a second claim by the same friend
    assert again.json_body == {"packet_id": packet["packet_id"], "amount_fen": amounts[0], "already_claimed": True}
    view = client.get(f"/v1/red-packets/{packet['packet_id']}").json_body
    assert view["claimed"] == 5 and view["claimed_fen"] == 1000
    assert [c["amount_fen"] for c in view["claims"]] == amounts
    assert all("Friend" not in c["display_name"] for c in view["claims"])  # masked
    coupons = [e for _, mid in friends[:5] for e in entries(mid) if e.rule == "red_packet"]
    assert sorted(int(e.amount) for e in coupons) == sorted(amounts) and {e.unit for e in coupons} == {"coupon_fen"}
    assert _spent_fen() == 1000  # reserved once, at creation


def test_a_packet_the_budget_cannot_fund_is_refused_and_writes_nothing(client):
    spring_campaign(client, budget_fen=500)
    answer = client.post("/v1/red-packets", {"campaign_id": "spring", "total_fen": 1000, "count": 5,
                                             "expires_at": _in(24)}, token=OPS)
    assert_error(answer, 409, "budget_exhausted")
    assert _spent_fen() == 0
    _ops_packet(client, total_fen=500, count=5)
    assert_error(client.post("/v1/red-packets", {"campaign_id": "spring", "total_fen": 5, "count": 5,
                                                 "expires_at": _in(24)}, token=OPS), 409, "budget_exhausted")


def test_the_unclaimed_rest_returns_to_the_budget_once_at_expiry(client):
    spring_campaign(client, budget_fen=100_00)
    packet = _ops_packet(client, total_fen=1000, count=5, hours=2)
    friends = _friends(client, 3)
    claimed = sum(_claim(client, packet["packet_id"], tok).json_body["amount_fen"] for tok, _ in friends[:2])
    assert red_packets.settle_due() == 0  # not yet due
    clock.advance(timedelta(hours=3))
    assert_error(_claim(client, packet["packet_id"], login(client, "f2", name="Friend2")[0]), 409, "packet_expired")
    assert red_packets.settle_due() == 1
    assert red_packets.settle_due() == 0  # a duplicated sweep changes nothing
    assert _spent_fen() == claimed
    view = client.get(f"/v1/red-packets/{packet['packet_id']}").json_body
    assert view["status"] == "settled" and view["claimed_fen"] == claimed


def test_member_packets_follow_the_campaign_rule(client):
    spring_campaign(client, budget_fen=100_00, red_packet_total_fen=300, red_packet_count=3,
                    red_packets_per_member_per_day=1)
    sender_token, sender_id, _ = login(client, "sender", name="Sally")
    sent = client.post("/v1/red-packets", {"campaign_id": "spring"}, token=sender_token)
    assert sent.status_code == 201, sent.body
    packet = sent.json_body
    assert (packet["total_fen"], packet["count"]) == (300, 3)
    assert_error(client.post("/v1/red-packets", {"campaign_id": "spring"}, token=sender_token),
                 429, "red_packet_limit_reached")
    assert_error(_claim(client, packet["packet_id"], sender_token), 409, "own_packet")
    # a friend who opens the packet and logs in for the first time is bound to the sender
    ref = parse_qs(urlsplit(packet["share_url"]).query)["ref"][0]
    friend_token, friend_id, _ = login(client, "newfriend", referral={"code": ref})
    assert member(friend_id).referrer_id == sender_id
    assert _claim(client, packet["packet_id"], friend_token).status_code == 200
    assert _spent_fen() == 300


def test_red_packets_refuse_bad_input_and_write_nothing(client):
    spring_campaign(client, budget_fen=100_00)
    member_token = login(client, "m")[0]
    ops_body = {"campaign_id": "spring", "total_fen": 1000, "count": 5, "expires_at": _in(24)}
    assert_error(client.post("/v1/red-packets", {"campaign_id": "spring", "total_fen": 1000}, token=OPS),
                 422, "fields_for_role")
    assert_error(client.post("/v1/red-packets", {**ops_body, "total_fen": 3}, token=OPS), 422, "total_below_count")
    assert_error(client.post("/v1/red-packets", {**ops_body, "count": 101}, token=OPS), 422, "validation_failed")
    assert_error(client.post("/v1/red-packets", {**ops_body, "expires_at": _in(-1)}, token=OPS), 422,
                 "expires_in_past")
    assert_error(client.post("/v1/red-packets", ops_body, token=member_token), 422, "fields_for_role")
    assert_error(client.post("/v1/red-packets", {"campaign_id": "spring"}, token=member_token), 409,
                 "red_packets_not_offered")
    assert_error(client.post("/v1/red-packets/nope/claims", token=member_token, headers={"Idempotency-Key": "k"}),
                 404, "packet_not_found")
    packet = _ops_packet(client)
    assert_error(client.post(f"/v1/red-packets/{packet['packet_id']}/claims", token=member_token), 428,
                 "idempotency_key_required")
    assert _spent_fen() == 1000  # only the one packet
    assert_error(client.put("/v1/campaigns/spring", {"rules": {"red_packet_total_fen": 2, "red_packet_count": 5}},
                            token=OPS), 422, "validation_failed")


@pytest.mark.ddblocal_only
def test_32_concurrent_claims_never_over_issue(client):
    spring_campaign(client, budget_fen=100_00)
    packet = _ops_packet(client, total_fen=1000, count=10)
    friends = _friends(client, 32)
    answers = concurrently(32, lambda i: _claim(client, packet["packet_id"], friends[i][0], key=f"k{i}"))
    won = [a.json_body["amount_fen"] for a in answers if a.status_code == 200]
    assert len(won) == 10 and sum(won) == 1000 and min(won) >= 1
    assert sorted({a.json_body["error"]["code"] for a in answers if a.status_code != 200}) == ["packet_empty"]
    view = client.get(f"/v1/red-packets/{packet['packet_id']}").json_body
    assert (view["claimed"], view["claimed_fen"], len(view["claims"])) == (10, 1000, 10)
