"""Tiered rewards and the ledger, end to end through the API and the stream."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chalicelib.core import clock
from chalicelib.rewards import sweeps
from tests.flows import code_of, member, purchase, refund, signup, spring_campaign
from tests.helpers import token
from tests.ledger_checks import assert_balances_match_entries, budget_spent, by_rule, entries, points

OPS, ADMIN = token("olivia", "ops"), token("root", "admin")


def key(value: str) -> dict[str, str]:
    return {"Idempotency-Key": value}



def test_worked_example_three_friends_and_a_refund(client, streams):
    """README's worked example: Alice invites Bob and Carol; Carol invites Dan."""
    signup(client, "alice", display_name="Alice")
    signup(client, "bob", code_of("alice"))
    signup(client, "carol", code_of("alice"))
    signup(client, "dan", code_of("carol"))
    purchase(client, "o-bob", "bob", 200_00)  # converts Bob: Alice +500, commission 3% = 600
    purchase(client, "o-dan", "dan", 100_00)  # converts Dan: Carol +500 +300; Alice second level 1% = 100
    purchase(client, "o-carol", "carol", 30_00)  # under the 50 yuan minimum: no conversion
    streams.drain()
    assert by_rule("alice") == {"conversion": 500, "commission": 600, "second_level": 100}
    # and every buyer earns their own purchase points (program: 1 point per yuan at bronze)
    assert by_rule("carol") == {"welcome": 100, "conversion": 500, "commission": 300, "purchase": 30}
    assert by_rule("bob") == {"welcome": 100, "purchase": 200} and by_rule("dan") == {"welcome": 100, "purchase": 100}
    assert points("alice") == {"available": 0, "pending": 1200}
    clock.advance(timedelta(days=3))  # past the 48 h in which a refund would open a fraud flag
    returned = client.post("/v1/events/refunds", {"order_id": "o-bob", "refund_id": "r1", "amount_fen": 50_00},
                           token=token("brand-backend", "service"))  # a quarter of Bob's order comes back
    assert returned.status_code == 200, returned.body
    streams.drain()
    assert by_rule("alice") == {"conversion": 500, "commission": 450, "second_level": 100}
    assert by_rule("bob")["purchase"] == 150
    clock.advance(timedelta(days=5))
    assert sweeps.release_due() > 0
    streams.drain()
    assert points("alice") == {"available": 1050, "pending": 0}
    assert [points(m)["available"] for m in ("bob", "carol", "dan")] == [250, 930, 200]
    notes = client.get("/v1/members/me/notifications", token=token("alice")).json_body["items"]
    assert "reward_available" in {n["kind"] for n in notes}
    assert_balances_match_entries(["alice", "bob", "carol", "dan"])


def test_full_refund_reverses_everything_for_that_order(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    refund(client, "o1", "r1", 100_00)
    streams.drain()
    assert by_rule("a") == {"conversion": 0, "commission": 0}
    assert points("a") == {"available": 0, "pending": 0}
    assert_balances_match_entries(["a", "b"])


def test_stream_replay_pays_nothing_twice(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    refund(client, "o1", "r1", 20_00)
    streams.drain()
    before = {m: [(e.entry_id, e.amount, e.reversed_amount, e.status) for e in entries(m)] for m in ("a", "b")}
    streams.replay_from_start()
    streams.drain()
    after = {m: [(e.entry_id, e.amount, e.reversed_amount, e.status) for e in entries(m)] for m in ("a", "b")}
    assert after == before
    assert_balances_match_entries(["a", "b"])


def test_ledger_page_redemption_and_adjustment(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    assert client.post("/v1/redemptions", {"points": 100, "item": "mug"}, token=token("a"),
                       headers=key("r0")).status_code == 409
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    member_token = token("a")  # minted on the moved clock
    page = client.get("/v1/members/me/ledger?limit=1", token=member_token).json_body
    assert len(page["items"]) == 1 and page["next_cursor"]
    rest = client.get(f"/v1/members/me/ledger?cursor={page['next_cursor']}", token=member_token).json_body
    assert {e["kind"] for e in page["items"] + rest["items"]} == {"conversion", "commission"}
    spent = client.post("/v1/redemptions", {"points": 700, "item": "mug"}, token=member_token, headers=key("r1"))
    assert spent.status_code == 200 and spent.json_body["points"]["available"] == 100
    assert client.post("/v1/redemptions", {"points": 101, "item": "mug"}, token=member_token,
                       headers=key("r2")).status_code == 409
    assert client.post("/v1/redemptions", {"points": 1.5, "item": "mug"}, token=member_token,
                       headers=key("r3")).status_code == 422
    ops, admin = token("olivia", "ops"), token("root", "admin")
    assert client.post("/v1/ops/adjustments", {"member_id": "a", "points": 50, "reason": "sorry"},
                       token=ops).status_code == 403
    adjusted = client.post("/v1/ops/adjustments", {"member_id": "a", "points": -150, "reason": "x"}, token=admin)
    assert adjusted.status_code == 409  # would go negative
    adjusted = client.post("/v1/ops/adjustments", {"member_id": "a", "points": 50, "reason": "goodwill"},
                           token=admin)
    assert adjusted.status_code == 200
    assert client.post("/v1/ops/adjustments", {"member_id": "ghost", "points": 5, "reason": "x"},
                       token=admin).status_code == 404
    log = client.get("/v1/ops/audit-log", token=admin).json_body["items"]
    assert log[0]["action"] == "points.adjust" and log[0]["details"] == {"points": 50, "reason": "goodwill"}
    assert client.get("/v1/ops/audit-log", token=ops).status_code == 403
    me = client.get("/v1/members/me", token=member_token).json_body
    assert (me["points"]["available"], me["points"]["pending"]) == (150, 0)
    assert me["points"]["expiring"]["points"] == 150  # one lot: released and adjusted today, less what was spent
    assert_balances_match_entries(["a", "b"])


def test_budget_is_never_exceeded(client, streams):
    spring_campaign(client, budget_points=1200, referee_signup_points=0)
    signup(client, "koc")
    code = code_of("koc", "spring")
    for i in range(4):
        signup(client, f"f{i}", code)
        purchase(client, f"o{i}", f"f{i}", 100_00)  # each: 500 + 300 wanted
    streams.drain()
    assert budget_spent("spring") == 1200
    assert sum(e.standing for e in entries("koc") if e.campaign_id == "spring") == 1200
    assert_balances_match_entries(["koc"] + [f"f{i}" for i in range(4)])


def test_monthly_cap_limits_advocate_rewards(client, streams):
    spring_campaign(client, monthly_cap_points=1000)
    signup(client, "koc")
    code = code_of("koc", "spring")
    for i in range(3):
        signup(client, f"f{i}", code)
        purchase(client, f"o{i}", f"f{i}", 100_00)
    streams.drain()
    assert sum(e.standing for e in entries("koc") if e.campaign_id == "spring") == 1000
    capped = [e for e in entries("koc") if e.capped_from is not None]
    assert capped, "a capped entry records what it was cut from"


def test_milestone_and_level_from_defaultspring_campaign(client, streams):
    signup(client, "koc")
    code = code_of("koc")
    for i in range(3):
        signup(client, f"f{i}", code)
        purchase(client, f"o{i}", f"f{i}", 100_00)
    streams.drain()
    assert by_rule("koc")["milestone"] == 300
    me = client.get("/v1/members/me", token=token("koc")).json_body
    assert me["advocate"] == {"level": "friend", "referrals": {"signed_up": 3, "converted": 3}}
    notes = client.get("/v1/members/me/notifications", token=token("koc")).json_body["items"]
    assert [n["kind"] for n in notes].count("milestone") == 1
    assert "level_up" not in {n["kind"] for n in notes}  # 3 conversions: still the first level


def test_level_up_is_told_once(client, streams):
    signup(client, "koc")
    code = code_of("koc")
    for i in range(6):
        signup(client, f"f{i}", code)
        purchase(client, f"o{i}", f"f{i}", 100_00)
        streams.drain()
    streams.replay_from_start()
    streams.drain()
    notes = client.get("/v1/members/me/notifications?limit=100", token=token("koc")).json_body["items"]
    assert [(n["kind"], n["payload"].get("level")) for n in notes if n["kind"] == "level_up"] == [("level_up", "advocate")]
    # the level counts the conversion being paid: orders 5 and 6 earn the advocate rate (5 %)
    assert by_rule("koc")["commission"] == 4 * 300 + 2 * 500


def test_held_rewards_wait_for_review(client, streams):
    signup(client, "a", device_id="shared")
    signup(client, "b", code_of("a"), device_id="shared")
    signup(client, "c", code_of("a"), device_id="shared")
    purchase(client, "ob", "b", 100_00)
    purchase(client, "oc", "c", 100_00)
    streams.drain()
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    assert points("a")["available"] == 0 and points("a")["pending"] == 1600
    ops = token("olivia", "ops")
    assert client.post("/v1/ops/fraud-flags/b/resolve", {"action": "approve"}, token=ops).status_code == 200
    assert client.post("/v1/ops/fraud-flags/c/resolve", {"action": "reject"}, token=ops).status_code == 200
    streams.drain()
    sweeps.release_due()
    assert points("a") == {"available": 800, "pending": 0}
    assert by_rule("c") == {"welcome": 0, "purchase": 100}  # her own purchase points stand
    assert_balances_match_entries(["a", "b", "c"])


def test_campaign_change_applies_to_new_referrals_only(client, streams):
    created = spring_campaign(client)
    signup(client, "a")
    code = code_of("a", "spring")
    signup(client, "old", code)
    body = {k: created[k] for k in ("campaign_id", "name", "landing_url")}
    body["rules"] = {**created["rules"], "referrer_conversion_points": 900}
    changed = client.put("/v1/campaigns/spring", body, token=OPS)
    assert changed.status_code == 200 and changed.json_body["version"] == 2
    signup(client, "new", code)
    purchase(client, "o-old", "old", 100_00)
    purchase(client, "o-new", "new", 100_00)
    streams.drain()
    conversions = sorted(e.amount for e in entries("a") if e.rule == "conversion")
    assert conversions == [500, 900]
    assert client.get("/v1/campaigns/spring", token=token("a")).status_code == 403
    listed = client.get("/v1/campaigns", token=OPS).json_body["items"]
    assert {c["campaign_id"] for c in listed} == {"default", "spring"}
    bad = dict(body, rules={**body["rules"], "hold_days": -1})
    assert client.put("/v1/campaigns/spring", bad, token=OPS).status_code == 422


@pytest.mark.ddblocal_only
def test_32_concurrent_deliveries_of_one_purchase_pay_once(client, streams, app):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    streams.drain()
    captured = []
    original = streams._invoke
    streams._invoke = lambda name, event: captured.append((name, event)) or {"batchItemFailures": []}
    purchase(client, "o1", "b", 100_00)
    streams.drain()  # capture the order's record without handling it
    streams._invoke = original
    (name, event), = [c for c in captured if c[0] == "on_main_change"]
    barrier = threading.Barrier(32)
    errors = []

    def deliver():
        barrier.wait()
        try:
            app.handler_map[name](event, None)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(32)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    streams.drain()  # the follow-up records (order counted, conversion) each delivered once more
    assert by_rule("a") == {"conversion": 500, "commission": 300}
    assert member("b").orders == 1 and member("a").referrals_converted == 1
    assert_balances_match_entries(["a", "b"])


def test_what_a_converting_purchase_costs(client, streams, monkeypatch):
    """The report is a read and a conditional write; the stream then attributes it in one
    transaction and pays conversion, commission and second-level share with one transaction
    each (the transaction's own conditions guard the cap, the budget and replays); ranking the
    conversion among the advocate's conversions costs the strongly consistent reads below."""
    from chalicelib.campaigns import service as campaign_service
    from tests.helpers import count_dynamodb_calls
    from tests.stream_rules import set_mapping

    # One lane: with the main mapping's two, a purchase's entries span two batches, so handlers
    # grouping a batch (leaderboards, funnel) write once per lane, and how the records fall
    # depends on the lanes' timing: 16-18 transactions and 19 batch reads were seen.
    set_mapping(monkeypatch, "on_main_change", parallelization_factor=1)
    signup(client, "gp")
    signup(client, "ref", code_of("gp"))
    signup(client, "friend", code_of("ref"))
    streams.drain()
    with count_dynamodb_calls() as api:
        assert purchase(client, "o1", "friend", 120_00).status_code == 200
    assert (api.reads, api.writes) == (1, 1)
    # Counted from cold caches: campaigns are cached for a while (30 s) and rule snapshots per
    # instance, so what the sign-ups above left cached would make the count depend on timing.
    campaign_service.clear_caches()
    with count_dynamodb_calls() as stream:
        streams.drain()
    # attribution, conversion, commission, second level; then the lifecycle: the buyer's own
    # purchase points, and her stage (new → active) with its thank-you message; then the
    # leaderboards, one transaction per kind of fact in a stream batch (the conversion; the referred
    # order; the three campaign points entries together, scores moved by several written once); the
    # second-level downline count of the buyer's grandparent (her contribution record and the count);
    # then the quality tallies: the referee's contribution with its cohort and advocate tallies;
    # then the funnel, one transaction per fact it counts (the conversion, the referred order) and
    # one for the batch's three entries (their reward cost added to the day's cell once);
    # and the conversion's restatement, which pays every order from the converting one on, may
    # meet the order's commission and second-level share not yet paid by the order's own handler:
    # that handler reads both entries first and pays only what is missing (each used to be tried
    # blind, and one of the two tries refused by the entry's condition: 16 transactions)
    assert stream.count("TransactWriteItems") == 14  # was 20 with one leaderboard and one funnel transaction per fact
    # attribution: order + referee; commission: order + referee + the conversion's rank item;
    # conversion: referee; the rank item (new, then its rate set once): item + rank count each,
    # on restating the referee's commissions (conversion new, then its rate set): the referee, her
    # orders in the window (index, then one consistent batch read) and their commission and
    # second-level entries (one batch read); the later conversions (count + query), the
    # milestones (one batch read), and
    # the referee's hold re-read after each of the three entries tied to the referral is written;
    # the lifecycle reads the buyer and the referrer whose conversions changed (GetItem each), the
    # buyer's orders and purchase entries and the referrer's conversions (Query each)
    # the leaderboards read the buyer for her order's referral and the campaign for its time zone
    # (GetItem), and per batch and kind of fact the facts' contribution records, then the scores
    # they move (BatchGetItem each; a fact changed twice in a batch is read once); the
    # second-level count reads the buyer and her contribution record (one consistent BatchGetItem);
    # quality reads the buyer on her order, and on her conversion its contribution record and the
    # buyer again (GetItem), the converting order (BatchGetItem) and her orders in the window (Query);
    # the funnel reads the conversion's and the order's contribution records and the buyer for her
    # order's referral (GetItem), and the entries' records together (BatchGetItem); the order's
    # commission handler reads its two entries together (BatchGetItem) instead of re-reading each
    # after a refused award (GetItem)
    assert (stream.count("GetItem"), stream.count("Query"), stream.count("BatchGetItem")) == (26, 11, 16)  # from cold caches: the campaign and its rules snapshot are read once here
    assert stream.count("UpdateItem") == 1  # the conversion's rate
    # the exports keep one row per campaign ledger entry written (conversion, commission, second level);
    # the dry run's fact index lists the purchase of a referred member under its campaign (one row)
    assert stream.count("PutItem") == 4
    assert sorted(e.rule for e in entries("ref") + entries("gp") if e.order_id == "o1") == \
        ["commission", "conversion", "second_level"]
    with count_dynamodb_calls() as api:
        assert refund(client, "o1", "r1", 10_00).status_code == 200
        assert refund(client, "o1", "r1", 10_00).status_code == 200  # a retry: told by the condition
    assert (api.reads, api.writes) == (3, 2)


def test_release_from_a_stale_index_copy_moves_what_stands_now(client, streams):
    """The sweep releases straight from the index copy of an entry; when the entry changed after
    that copy was taken (part of it reversed), the release is refused and decided on the item."""
    from chalicelib.rewards import ledger
    from chalicelib.rewards.models import LedgerEntry

    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    clock.advance(timedelta(days=8))
    stale = {hit.entry_id: hit for shard in range(4)
             for hit in LedgerEntry.by_gsi2.query(f"RELEASE#{shard}") if hit.member_id == "a"}
    commission = stale["commission.o1"]
    ledger.reverse_to("a", commission.entry_id, 100)  # after the copy was read: 300 → 200 stand
    now = clock.now_iso()
    assert all(sweeps._release(hit, now) for hit in stale.values())
    assert not sweeps._release(commission, now)  # already released: nothing twice
    assert points("a") == {"available": 500 + 200, "pending": 0}
    assert_balances_match_entries(["a", "b"])


def test_release_sweep_keeps_threads_off_an_emulator_that_is_not_thread_safe(client, streams, monkeypatch):
    """On moto the shards run in turn on the caller's thread (moto's backend breaks under
    threads); on DynamoDB Local they still run side by side."""
    from tests.conftest import BACKEND

    seen: set[str] = set()
    work = sweeps._release_shard
    monkeypatch.setattr(sweeps, "_release_shard",
                        lambda *args: seen.add(threading.current_thread().name) or work(*args))
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "ob", "b", 100_00)
    streams.drain()
    clock.advance(timedelta(days=8))
    assert sweeps.release_due() > 0
    if BACKEND == "moto":
        assert seen == {threading.current_thread().name}
    else:
        assert all(name.startswith("release") for name in seen) and len(seen) > 1
    assert points("a")["pending"] == 0


def test_a_redemption_needs_an_idempotency_key_and_a_retry_never_spends_twice(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    member_token = token("a")
    before = points("a")["available"]
    blind = client.post("/v1/redemptions", {"points": 100, "item": "mug"}, token=member_token)
    assert blind.status_code == 428 and blind.json_body["error"]["code"] == "idempotency_key_required"
    assert points("a")["available"] == before
    keyed = [client.post("/v1/redemptions", {"points": 100, "item": "mug"}, token=member_token,
                         headers={"Idempotency-Key": "mug-1"}) for _ in range(2)]
    assert [r.status_code for r in keyed] == [200, 200]
    assert keyed[0].json_body["redemption_id"] == keyed[1].json_body["redemption_id"]
    assert points("a")["available"] == before - 100
    operation = client.get("/openapi.json").json_body["paths"]["/v1/redemptions"]["post"]
    header = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
    assert header and header[0]["required"] is True
