"""Campaign dry run: rules played over given facts (what-ifs) or over a recorded period (equal
to what the ledger wrote for it when the rules are the ones in force), writing nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.core import clock, ratelimit
from chalicelib.dryrun import recorded
from tests.flows import code_of, purchase, refund, signup, spring_campaign
from tests.helpers import count_dynamodb_calls, token
from tests.ledger_checks import by_rule

OPS = token("olivia", "ops")


@pytest.fixture(autouse=True)
def rate_counts_flushed_by_count_only(monkeypatch):
    """The rate limiter's own counter write is the API's, not the dry run's: keep it out of the counts."""
    monkeypatch.setattr(ratelimit, "FLUSH_SECONDS", 10**9)


def dry_run(client, body: dict, campaign_id: str = "default", as_token: str | None = None):
    return client.post(f"/v1/campaigns/{campaign_id}/dry-run", body, token=as_token or token("olivia", "ops"))


def late_refund(client, order_id: str, refund_id: str, amount_fen: int):
    """A refund with a token issued now (the test moved the clock by days)."""
    return client.post("/v1/events/refunds", {"order_id": order_id, "refund_id": refund_id, "amount_fen": amount_fen},
                       token=token("brand-backend", "service"))


def at(minutes: int) -> str:
    return clock.iso(clock.now() - timedelta(days=1) + timedelta(minutes=minutes))


WORKED_EXAMPLE = [  # README: Alice invites Bob and Carol; Carol invites Dan; a quarter of Bob's order comes back
    {"kind": "signup", "member_id": "bob", "referrer_id": "alice", "occurred_at": at(1)},
    {"kind": "signup", "member_id": "carol", "referrer_id": "alice", "occurred_at": at(2)},
    {"kind": "signup", "member_id": "dan", "referrer_id": "carol", "occurred_at": at(3)},
    {"kind": "purchase", "order_id": "o-bob", "member_id": "bob", "amount_fen": 200_00, "occurred_at": at(4)},
    {"kind": "purchase", "order_id": "o-dan", "member_id": "dan", "amount_fen": 100_00, "occurred_at": at(5)},
    {"kind": "purchase", "order_id": "o-carol", "member_id": "carol", "amount_fen": 30_00, "occurred_at": at(6)},
    {"kind": "refund", "order_id": "o-bob", "refund_id": "r1", "amount_fen": 50_00, "occurred_at": at(7)},
]


def standing(result: dict, member_id: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for entry in result["entries"]:
        if entry["member_id"] == member_id and entry["unit"] == "points":
            found[entry["kind"]] = found.get(entry["kind"], 0) + entry["standing"]
    return found


def test_worked_example_as_a_what_if_pays_the_documented_points(client, streams):
    with count_dynamodb_calls() as calls:
        response = dry_run(client, {"facts": WORKED_EXAMPLE})
    assert response.status_code == 200, response.body
    result = response.json_body
    assert calls.writes == 0
    assert result["mode"] == "facts" and result["facts"] == {"signup": 3, "purchase": 3, "refund": 1}
    assert standing(result, "alice") == {"conversion": 500, "commission": 450, "second_level": 100}
    assert standing(result, "carol") == {"welcome": 100, "conversion": 500, "commission": 300}
    assert standing(result, "dan") == {"welcome": 100}
    assert result["totals"]["points"] == {"welcome": 300, "conversion": 1000, "commission": 750, "second_level": 100}
    assert result["totals"]["coupon_fen"] == {"coupon": 3 * 20_00}
    assert result["budget"]["points"] == {"used": 2150, "budget": 10_000_000, "spent_before": 0}
    assert result["budget"]["coupon_fen"]["used"] == 60_00
    commission = next(e for e in result["entries"] if e["entry_id"] == "commission.o-bob")
    assert (commission["amount"], commission["reversed_amount"], commission["status"]) == (600, 150, "pending")


def test_a_rule_change_shows_in_the_what_if(client, streams):
    rules = client.get("/v1/campaigns/default", token=OPS).json_body["rules"]
    rules["advocate_levels"][0]["commission_bps"] = 500  # the first level pays 5 % instead of 3 %
    rules["referrer_conversion_points"] = 800
    result = dry_run(client, {"facts": WORKED_EXAMPLE, "rules": rules}).json_body
    assert result["rules"] == "given"
    assert standing(result, "alice") == {"conversion": 800, "commission": 750, "second_level": 100}
    capped = dict(rules, budget_points=1000)  # a budget that runs out: later awards are cut
    result = dry_run(client, {"facts": WORKED_EXAMPLE, "rules": capped}).json_body
    assert result["budget"]["points"]["used"] <= 1000
    assert any(e["capped_from"] for e in result["entries"])


def test_a_what_if_can_use_real_codes_and_skips_what_it_cannot_judge(client, streams):
    signup(client, "alice")
    facts = [{"kind": "signup", "member_id": "new1", "referral": {"code": code_of("alice")}, "occurred_at": at(1)},
             {"kind": "signup", "member_id": "new2", "referral": {"code": "NOSUCHCODE"}, "occurred_at": at(2)},
             {"kind": "purchase", "order_id": "p1", "member_id": "new1", "amount_fen": 100_00, "occurred_at": at(3)},
             {"kind": "purchase", "order_id": "p2", "member_id": "stranger", "amount_fen": 100_00,
              "occurred_at": at(4)},
             {"kind": "refund", "order_id": "p9", "refund_id": "r", "amount_fen": 1_00, "occurred_at": at(5)}]
    result = dry_run(client, {"facts": facts}).json_body
    assert standing(result, "alice") == {"conversion": 500, "commission": 300}
    assert [(s["id"], s["reason"]) for s in result["skipped"]] == [
        ("new2", "no_referrer"), ("p2", "buyer_not_referred"), ("r", "order_not_replayed")]
    assert by_rule("alice") == {}  # nothing was paid for real


def test_a_recorded_period_replays_to_what_the_ledger_wrote(client, streams):
    """Default campaign: second level, a milestone, a refund, an earlier order that does not
    qualify, and a rule version change in the middle of the period."""
    start = clock.iso(clock.now() - timedelta(minutes=1))
    signup(client, "koc")
    signup(client, "gp")
    signup(client, "mid", code_of("gp"))
    for i in range(3):
        signup(client, f"f{i}", code_of("koc"))
    streams.drain()
    purchase(client, "o0", "f0", 100_00)
    purchase(client, "small", "f1", 10_00)  # under the minimum: converts nothing, earns no commission,
    purchase(client, "o1", "f1", 150_00)  # even when handled in one batch with the order that converts
    streams.drain()
    current = client.get("/v1/campaigns/default", token=OPS).json_body
    body = {k: current[k] for k in ("campaign_id", "name", "offer", "landing_url")}
    body["rules"] = {**current["rules"], "referrer_conversion_points": 900, "referee_signup_points": 50}
    assert client.put("/v1/campaigns/default", body, token=OPS).status_code == 200
    signup(client, "late", code_of("mid"))  # bound under version 2
    streams.drain()
    purchase(client, "o2", "f2", 80_00)  # bound under version 1: judged by it
    purchase(client, "o3", "late", 120_00)
    streams.drain()
    assert refund(client, "o1", "r1", 50_00).status_code == 200
    streams.drain()
    assert by_rule("koc")["milestone"] == 300
    end = clock.iso(clock.now() + timedelta(minutes=1))
    with count_dynamodb_calls() as calls:
        response = dry_run(client, {"from": start, "to": end})
    assert response.status_code == 200, response.body
    assert calls.writes == 0
    result = response.json_body
    comparison = result["comparison"]
    assert comparison["equal"], comparison["differences"]
    assert comparison["recorded_entries"] == result["entries_total"] > 10
    assert standing(result, "mid") == {"welcome": 100, "conversion": 900, "commission": 360}  # late's order
    assert standing(result, "late") == {"welcome": 50}
    assert standing(result, "koc")["milestone"] == 300
    assert result["facts"] == {"signup": 5, "purchase": 5, "refund": 1}
    # the same period under other rules: a what-if, not compared
    raised = {**body["rules"], "referrer_conversion_points": 2000}
    other = dry_run(client, {"from": start, "to": end, "rules": raised}).json_body
    assert "comparison" not in other and other["totals"]["points"]["conversion"] == 4 * 2000


def test_a_period_starting_after_earlier_conversions_ranks_on_top_of_them(client, streams):
    """A spring campaign: five conversions before the period lift the advocate to 5 %; the
    period's own conversion and commission are replayed at that rate, the budget spent before
    the period is reported, and the replay still equals the ledger."""
    spring_campaign(client, advocate_levels=[{"name": "friend", "min_conversions": 0, "commission_bps": 300},
                                             {"name": "star", "min_conversions": 6, "commission_bps": 500}],
                    budget_points=100_000)
    signup(client, "koc")
    code = code_of("koc", "spring")
    for i in range(6):
        signup(client, f"f{i}", code)
    streams.drain()
    for i in range(5):
        purchase(client, f"o{i}", f"f{i}", 100_00)
    streams.drain()
    clock.advance(timedelta(hours=1))
    start = clock.iso(clock.now() - timedelta(minutes=1))
    purchase(client, "o5", "f5", 100_00)  # the 6th conversion: the star rate
    purchase(client, "again", "f0", 100_00)  # a converted friend buys again: 3 %, her rank is 1
    streams.drain()
    end = clock.iso(clock.now() + timedelta(minutes=1))
    result = dry_run(client, {"from": start, "to": end}, campaign_id="spring").json_body
    assert result["comparison"]["equal"], result["comparison"]["differences"]
    assert standing(result, "koc") == {"conversion": 500, "commission": 500 + 300}
    assert result["budget"]["points"]["spent_before"] == 5 * (500 + 300)
    streams.replay_from_start()  # every record delivered again: the fact index lists each fact once
    streams.drain()
    again = dry_run(client, {"from": start, "to": end}, campaign_id="spring").json_body
    assert again == result


def test_refunds_that_undo_and_move_conversions_replay_to_what_the_ledger_wrote(client, streams):
    """A full refund undoes the first conversion, so the next one drops to the first level's rate
    (its commission restated); a partial refund takes a converting order under the minimum, so
    the conversion moves to the friend's next qualifying order."""
    spring_campaign(client, advocate_levels=[{"name": "friend", "min_conversions": 0, "commission_bps": 300},
                                             {"name": "star", "min_conversions": 2, "commission_bps": 500}])
    start = clock.iso(clock.now() - timedelta(minutes=1))
    signup(client, "koc")
    for i in range(3):
        signup(client, f"f{i}", code_of("koc", "spring"))
    streams.drain()
    for order_id, member_id, amount in (("o0", "f0", 100_00), ("o1", "f1", 100_00), ("o2a", "f2", 60_00),
                                        ("o2b", "f2", 100_00)):
        clock.advance(timedelta(minutes=1))
        assert purchase(client, order_id, member_id, amount).status_code == 200
        streams.drain()
    assert by_rule("koc")["commission"] == 300 + 500 + 300 + 500
    clock.advance(timedelta(days=3))
    assert late_refund(client, "o0", "r0", 100_00).status_code == 200
    streams.drain()
    assert late_refund(client, "o2a", "r2", 20_00).status_code == 200  # 40 yuan left: under the minimum
    streams.drain()
    result = dry_run(client, {"from": start, "to": clock.iso(clock.now() + timedelta(minutes=1))},
                     campaign_id="spring").json_body
    assert result["comparison"]["equal"], result["comparison"]["differences"]
    entries = {e["entry_id"]: e for e in result["entries"] if e["member_id"] == "koc"}
    assert entries["commission.o1"]["standing"] == 300  # f1 is the first conversion now
    assert entries["conversion.o0"]["standing"] == 0 and entries["conversion.o2a"]["standing"] == 0
    assert entries["conversion.o2b"]["standing"] == 500


def test_bad_rules_periods_and_roles_are_refused(client, streams):
    rules = client.get("/v1/campaigns/default", token=OPS).json_body["rules"]
    now = clock.now()
    cases = [
        ({"facts": WORKED_EXAMPLE, "rules": dict(rules, hold_days=-1)}, "validation_failed"),
        ({"rules": dict(rules, advocate_levels=[{"name": "x", "min_conversions": 3, "commission_bps": 1}])},
         "validation_failed"),
        ({"rules": dict(rules, currency="USD")}, "currency_fixed"),
        ({"from": clock.iso(now - timedelta(days=93)), "to": clock.iso(now)}, "invalid_period"),
        ({"from": clock.iso(now), "to": clock.iso(now - timedelta(days=1))}, "invalid_period"),
        ({"facts": [], "from": clock.iso(now - timedelta(days=1))}, "facts_or_period"),
        ({"facts": [{"kind": "purchase", "order_id": "o", "member_id": "m", "amount_fen": -1,
                     "occurred_at": clock.iso(now)}]}, "validation_failed"),
    ]
    with count_dynamodb_calls() as calls:
        for body, code in cases:
            response = dry_run(client, body)
            assert response.status_code == 422, (body, response.body)
            assert response.json_body["error"]["code"] == code
    assert calls.writes == 0
    # the same rules validation as PUT /v1/campaigns/{id}
    current = client.get("/v1/campaigns/default", token=OPS).json_body
    put = {k: current[k] for k in ("campaign_id", "name", "landing_url")} | {"rules": dict(rules, hold_days=-1)}
    assert client.put("/v1/campaigns/default", put, token=OPS).json_body["error"]["code"] == "validation_failed"
    assert dry_run(client, {"facts": []}, as_token=token("lily")).status_code == 403
    assert dry_run(client, {"facts": []}, campaign_id="nope").status_code == 404


def test_a_period_with_too_many_facts_is_refused(client, streams, monkeypatch):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    monkeypatch.setattr(recorded, "MAX_FACTS", 1)
    response = dry_run(client, {})
    assert response.status_code == 422 and response.json_body["error"]["code"] == "too_many_facts"
