"""Money and attribution: rewards are a function of the facts (when they happened, in which
currency, against which budget), never of the order in which handlers ran."""
from __future__ import annotations

from datetime import timedelta

from chalicelib.core import clock
from chalicelib.rewards import sweeps
from chalicelib.rewards.models import LedgerEntry
from tests.flows import change_rules, code_of, member, purchase, refund, signup, spring_campaign
from tests.helpers import token
from tests.ledger_checks import assert_balances_match_entries, budget_spent, budget_spent_fen, by_rule, entries, points

OPS = token("olivia", "ops")



def test_a_purchase_dated_before_the_referral_does_not_convert_it(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    assert purchase(client, "old", "b", 100_00, occurred_at="2020-01-01T00:00:00Z").status_code == 200
    streams.drain()
    assert member("b").referral_status == "signed_up"
    assert by_rule("a") == {}
    purchase(client, "new", "b", 100_00)  # after the binding: converts
    streams.drain()
    assert member("b").converting_order_id == "new"
    assert by_rule("a") == {"conversion": 500, "commission": 300}
    assert_balances_match_entries(["a", "b"])


def test_commission_only_for_orders_inside_the_window(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "first", "b", 100_00)
    purchase(client, "before", "b", 100_00, occurred_at="2020-01-01T00:00:00Z")
    streams.drain()
    assert [e.order_id for e in entries("a") if e.rule == "commission"] == ["first"]


def test_an_order_in_another_currency_is_refused_and_writes_nothing(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    signup(client, "solo")  # not referred: the default campaign's currency applies
    for who in ("b", "solo"):
        jpy = purchase(client, f"jpy-{who}", who, 10_000_000, currency="JPY")
        assert jpy.status_code == 422, jpy.body
        error = jpy.json_body["error"]
        assert error["code"] == "currency_mismatch"
        assert error["details"] == {"currency": "JPY", "campaign_currency": "CNY"}
    for code in ("XXX", "XTS", "ABC"):
        refused = purchase(client, f"odd-{code}", "b", 100_00, currency=code)
        assert refused.status_code == 422 and refused.json_body["error"]["details"], refused.body
    streams.drain()
    assert by_rule("a") == {} and member("b").orders == 0 and int(member("b").gmv_fen) == 0
    ok = purchase(client, "cny", "b", 100_00, currency="CNY")
    assert ok.status_code == 200 and ok.json_body["currency"] == "CNY"
    implicit = purchase(client, "implicit", "b", 20_00)  # no currency: the campaign's
    assert implicit.json_body["currency"] == "CNY"
    streams.drain()
    assert int(member("b").gmv_fen) == 120_00
    assert by_rule("a") == {"conversion": 500, "commission": 300 + 60}


def test_a_campaign_in_another_currency_takes_orders_in_it(client, streams):
    created = spring_campaign(client, "hk", currency="HKD")
    changed = client.put("/v1/campaigns/hk", {**{k: created[k] for k in ("campaign_id", "name", "landing_url")},
                                              "rules": {**created["rules"], "currency": "CNY"}}, token=OPS)
    assert changed.status_code == 422 and changed.json_body["error"]["code"] == "currency_fixed"
    signup(client, "a")
    signup(client, "b", code_of("a", "hk"))
    assert purchase(client, "cny", "b", 100_00, currency="CNY").status_code == 422
    hkd = purchase(client, "hkd", "b", 100_00, currency="HKD")
    assert hkd.status_code == 200 and hkd.json_body["currency"] == "HKD"
    bad = client.post("/v1/campaigns", {"campaign_id": "bad", "name": "x", "landing_url": "https://shop.example.com",
                                        "rules": {"currency": "XXX"}}, token=OPS)
    assert bad.status_code == 422


def _coupons(member_id):
    return [(e.amount, e.capped_from) for e in entries(member_id) if e.unit == "coupon_fen"]


def test_coupons_count_against_the_budget_in_fen(client, streams):
    spring_campaign(client, "tight", budget_points=10, referee_coupon_fen=100_00)  # no money budget: no coupons
    spring_campaign(client, "some", budget_fen=150_00, referee_coupon_fen=100_00)
    signup(client, "a")
    signup(client, "b", code_of("a", "tight"))
    for friend in ("c", "d"):
        signup(client, friend, code_of("a", "some"))
    streams.drain()
    assert _coupons("b") == [(0, 100_00)]  # the ¥100 coupon did not issue
    issued = sorted(_coupons("c") + _coupons("d"))
    assert issued == [(0, 100_00), (100_00, None)]  # ¥150 covers one whole coupon, never half of one
    assert budget_spent("tight") == 0
    from chalicelib.rewards import budget

    assert budget.totals("some")["fen"] == 100_00


# -- commission by conversion rank (README: the k-th conversion earns the level reached at k) ---

def _burst(client, streams, app, friends: int, seed: int | None, drain_each: bool) -> dict[str, int]:
    """`friends` referees of one advocate buy ¥100 each, one second apart; the purchase records
    reach the handlers in a shuffled order (or newest first when `seed` is None)."""
    import random

    signup(client, "koc")
    code = code_of("koc")
    for i in range(friends):
        signup(client, f"f{i:02d}", code)
    streams.drain()
    start = clock.now()
    for i in range(friends):
        at = clock.iso(start + timedelta(seconds=i))
        assert purchase(client, f"o{i:02d}", f"f{i:02d}", 100_00, occurred_at=at).status_code == 200
    captured = []
    original = streams._invoke
    streams._invoke = lambda name, event: captured.append((name, event)) or {"batchItemFailures": []}
    streams.drain()  # capture the purchase records without handling them
    streams._invoke = original
    records = [(name, record) for name, event in captured for record in event["Records"]]
    assert len(records) == friends
    if seed is None:
        records.reverse()
    else:
        random.Random(seed).shuffle(records)
    for name, record in records:
        app.handler_map[name]({"Records": [record]}, None)
        if drain_each:
            streams.drain()
    streams.drain()
    commissions = {e.order_id: e.standing for e in entries("koc") if e.rule == "commission"}
    assert_balances_match_entries(["koc"])
    return commissions


def test_commission_rate_follows_the_rank_in_time_not_the_handling_order(client, streams, app):
    """30 friends convert; whatever order their purchases are handled in, the k-th conversion in
    time earns the level reached at k: 4×300 + 15×500 + 11×800 (levels at 0/5/20 conversions)."""
    paid = _burst(client, streams, app, 30, seed=None, drain_each=True)  # newest first: every one arrives "late"
    assert [paid[f"o{i:02d}"] for i in range(30)] == [300] * 4 + [500] * 15 + [800] * 11
    assert sum(paid.values()) == 17_500
    assert by_rule("koc")["milestone"] == 300 + 1500 + 5000


def test_shuffled_deliveries_give_the_same_ledger(client, streams, app):
    paid = _burst(client, streams, app, 8, seed=13, drain_each=False)
    expected = [300] * 4 + [500] * 4
    assert [paid[f"o{i:02d}"] for i in range(8)] == expected
    # a refund that undoes the 2nd conversion moves everyone after it down one rank
    refund(client, "o01", "r1", 100_00)
    streams.drain()
    after = {e.order_id: e.standing for e in entries("koc") if e.rule == "commission"}
    assert after["o01"] == 0
    assert [after[f"o{i:02d}"] for i in (0, 2, 3, 4, 5, 6, 7)] == [300, 300, 300, 300, 500, 500, 500]
    assert_balances_match_entries(["koc"])


# -- fraud flags hold and void everything tied to their referral ------------------------------

def _resolve(client, referee, action):
    answer = client.post(f"/v1/ops/fraud-flags/{referee}/resolve", {"action": action}, token=token("olivia", "ops"))
    assert answer.status_code == 200, answer.body


def _fresh_service_refund(client, order_id, refund_id, amount_fen):
    answer = client.post("/v1/events/refunds", {"order_id": order_id, "refund_id": refund_id, "amount_fen": amount_fen},
                         token=token("brand-backend", "service"))
    assert answer.status_code == 200, answer.body


def test_a_flag_opened_after_payment_holds_and_rejection_voids_every_entry(client, streams):
    signup(client, "gp")
    signup(client, "a", code_of("gp"))
    signup(client, "b", code_of("a"))
    streams.drain()
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    streams.drain()
    assert points("b") == {"available": 100, "pending": 0}  # the welcome points are already spendable
    purchase_ok = client.post("/v1/events/purchases", {"order_id": "o1", "member_id": "b", "amount_fen": 100_00},
                              token=token("brand-backend", "service"))
    assert purchase_ok.status_code == 200
    streams.drain()
    assert by_rule("a") == {"welcome": 100, "conversion": 500, "commission": 300}
    _fresh_service_refund(client, "o1", "r1", 10_00)  # within 48 h: a quick-refund flag opens
    streams.drain()
    assert all(e.hold for e in entries("a") + entries("gp") if e.order_id == "o1")
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    streams.drain()
    assert points("a") == {"available": 100, "pending": 770}  # held past the release sweep (a's own welcome aside)
    assert points("gp") == {"available": 0, "pending": 90}
    _resolve(client, "b", "reject")
    streams.drain()
    sweeps.release_due()
    assert member("b").referral_status == "void"
    assert points("a") == {"available": 100, "pending": 0}
    assert points("gp") == {"available": 0, "pending": 0}
    # the available welcome points too; what stands is b's own purchase points (100 less the refunded tenth)
    assert points("b") == {"available": 90, "pending": 0} and by_rule("b") == {"welcome": 0, "purchase": 90}
    assert [(e.status, e.voided) for e in entries("b") if e.rule == "coupon"] == [("reversed", "fraud_rejected")]
    assert int(member("a").referrals_converted) == 0
    assert_balances_match_entries(["gp", "a", "b"])


def test_approving_a_late_flag_releases_what_it_held(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    refund(client, "o1", "r1", 10_00)
    streams.drain()
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    assert points("a") == {"available": 0, "pending": 770}
    _resolve(client, "b", "approve")
    streams.drain()
    sweeps.release_due()
    assert points("a") == {"available": 770, "pending": 0}
    assert_balances_match_entries(["a", "b"])


def test_an_approval_read_while_the_orders_index_lags_is_handled_again_and_releases_all(client, streams,
                                                                                      monkeypatch):
    """The flag's entries are found by key from the referee's orders; an orders index behind the
    member's order count would miss a commission, so the handler fails and the record comes again."""
    from chalicelib.facts.models import Order

    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    refund(client, "o1", "r1", 10_00)  # a quick refund: the flag opens, every entry held
    streams.drain()
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    assert points("a") == {"available": 0, "pending": 770}
    with monkeypatch.context() as lagging:
        lagging.setattr(Order.by_gsi1, "query", lambda *a, **k: iter(()))  # o1's index copy not there yet
        _resolve(client, "b", "approve")
        streams.drain()
        sweeps.release_due()
        assert points("a") == {"available": 0, "pending": 770}  # nothing released from a partial view
    streams.drain(ignore_backoff=True)
    sweeps.release_due()
    assert points("a") == {"available": 770, "pending": 0}
    assert_balances_match_entries(["a", "b"])


def test_a_quick_refund_after_an_approval_opens_the_flag_again(client, streams):
    """A new quick refund is a new signal: ops review the referral again, and can approve it
    again (before, the referral stayed held under an approved flag nobody could resolve)."""
    from chalicelib.fraud.models import FraudFlag

    signup(client, "a")
    signup(client, "b", code_of("a"))
    purchase(client, "o0", "b", 100_00)
    streams.drain()
    refund(client, "o0", "r1", 10_00)  # within 48 h: flagged
    streams.drain()
    _resolve(client, "b", "approve")
    streams.drain()
    refund(client, "o0", "r2", 10_00)  # again within 48 h
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    flag = FraudFlag.get(*FraudFlag.key("b"), consistent_read=True)
    assert (flag.status, flag.resolved_at) == ("open", None)
    assert [e.hold for e in entries("a") if e.order_id == "o1"] == ["fraud_review"]
    _resolve(client, "b", "approve")
    streams.drain()
    assert member("b").referral_hold is None
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    streams.drain()
    assert points("a") == {"available": 500 + 240 + 300, "pending": 0}
    assert_balances_match_entries(["a", "b"])


# -- milestones follow the conversion count ---------------------------------------------------

def test_a_refund_below_a_milestone_takes_it_back_and_reaching_it_again_restores_it(client, streams):
    signup(client, "koc")
    for i in range(4):
        signup(client, f"f{i}", code_of("koc"))
    for i in range(3):
        purchase(client, f"o{i}", f"f{i}", 100_00)
    streams.drain()
    assert by_rule("koc")["milestone"] == 300
    refund(client, "o1", "r1", 100_00)  # undoes a conversion: 2 left
    streams.drain()
    assert int(member("koc").referrals_converted) == 2
    assert by_rule("koc")["milestone"] == 0
    purchase(client, "o3", "f3", 100_00)  # 3 again
    streams.drain()
    assert by_rule("koc")["milestone"] == 300
    assert [e.referee_id for e in entries("koc") if e.rule == "milestone"] == ["f3"]
    assert_balances_match_entries(["koc"] + [f"f{i}" for i in range(4)])


def test_rejected_referrals_leave_no_milestone_standing(client, streams):
    signup(client, "koc", device_id="shared")
    for i in range(3):
        signup(client, f"f{i}", code_of("koc"), device_id="shared")  # flagged at sign-up
        purchase(client, f"o{i}", f"f{i}", 100_00)
    streams.drain()
    milestone = [e for e in entries("koc") if e.rule == "milestone"]
    assert [(e.amount, bool(e.hold)) for e in milestone] == [(300, True)]  # held like the others
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    assert points("koc")["available"] == 0
    for i in range(3):
        _resolve(client, f"f{i}", "reject")
    streams.drain()
    sweeps.release_due()
    assert points("koc") == {"available": 0, "pending": 0}
    assert by_rule("koc").get("milestone") == 0
    assert_balances_match_entries(["koc"] + [f"f{i}" for i in range(3)])


def _milestone_as_shown(client, member_id):
    page = client.get("/v1/members/me/ledger", token=token(member_id)).json_body["items"]
    return [(e["status"], e["held"]) for e in page if e["kind"] == "milestone"]


def test_a_milestone_taken_back_is_tied_to_no_referral_nor_held_by_one(client, streams):
    """Below three conversions there is no third one: the milestone it had been tied to last (an
    accident of handler order) neither holds it nor shows it held; reaching three again ties it
    to the friend whose conversion is the third now."""
    signup(client, "koc", device_id="shared")
    for i in range(3):  # f2 shares the advocate's device: flagged at sign-up
        signup(client, f"f{i}", code_of("koc"), device_id="shared" if i == 2 else f"d{i}")
    signup(client, "f3", code_of("koc"), device_id="d3")
    for i in range(3):
        purchase(client, f"o{i}", f"f{i}", 100_00)
    streams.drain()
    assert [(e.referee_id, bool(e.hold)) for e in entries("koc") if e.rule == "milestone"] == [("f2", True)]
    refund(client, "o0", "r0", 100_00)  # undoes f0's conversion: two left
    streams.drain()
    assert int(member("koc").referrals_converted) == 2
    assert _milestone_as_shown(client, "koc") == [("reversed", False)]
    assert [e.referee_id for e in entries("koc") if e.rule == "milestone"] == [None]
    purchase(client, "o3", "f3", 100_00)  # three again: f3's conversion is the third
    streams.drain()
    assert [(e.referee_id, bool(e.hold)) for e in entries("koc") if e.rule == "milestone"] == [("f3", False)]
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    streams.drain()
    assert _milestone_as_shown(client, "koc") == [("available", False)]
    assert_balances_match_entries(["koc"] + [f"f{i}" for i in range(4)])


def test_an_undone_conversion_leaves_no_commission_at_any_rate(client, streams):
    """A refund that takes the converting order under the minimum undoes the conversion: its
    orders earn no commission, whichever rate they had been paid at."""
    signup(client, "gp")
    signup(client, "a", code_of("gp"))
    signup(client, "b", code_of("a"))
    purchase(client, "o1", "b", 100_00)
    streams.drain()
    assert by_rule("a") == {"welcome": 100, "conversion": 500, "commission": 300}
    assert by_rule("gp") == {"second_level": 100}
    refund(client, "o1", "r1", 60_00)  # ¥40 left: under the ¥50 minimum
    streams.drain()
    assert member("b").referral_status == "signed_up"
    assert by_rule("a") == {"welcome": 100, "conversion": 0, "commission": 0}
    assert by_rule("gp") == {"second_level": 0}
    assert_balances_match_entries(["gp", "a", "b"])


def test_the_earliest_qualifying_order_converts_whichever_is_handled_first(client, streams):
    signup(client, "a")
    signup(client, "b", code_of("a"))
    start = clock.now()
    purchase(client, "o-later", "b", 100_00, occurred_at=clock.iso(start + timedelta(minutes=2)))
    streams.drain()
    purchase(client, "o-earlier", "b", 80_00, occurred_at=clock.iso(start + timedelta(minutes=1)))
    streams.drain()
    assert member("b").converting_order_id == "o-earlier"
    conversions = {e.order_id: e.standing for e in entries("a") if e.rule == "conversion"}
    assert conversions == {"o-later": 0, "o-earlier": 500}
    assert int(member("a").referrals_converted) == 1
    assert by_rule("a")["commission"] == 300 + 240
    assert_balances_match_entries(["a", "b"])


# -- a flag resolved between a handler's read of the hold and its write ------------------------

def test_a_milestone_written_from_a_stale_hold_follows_the_resolved_flag(client, streams, monkeypatch):
    from chalicelib.rewards import ranks

    signup(client, "koc", device_id="shared")
    for i in range(3):
        signup(client, f"f{i}", code_of("koc"), device_id="shared" if i == 2 else f"d{i}")
    streams.drain()
    _resolve(client, "f2", "approve")  # its handler runs now, before the milestone exists
    streams.drain()
    # the milestone's handler read f2's hold just before the approval committed
    monkeypatch.setattr(ranks, "_held", lambda referee_id: True)
    for i in range(3):
        purchase(client, f"o{i}", f"f{i}", 100_00)
    streams.drain()
    assert [bool(e.hold) for e in entries("koc") if e.rule == "milestone"] == [False]
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    streams.drain()
    assert [e.status for e in entries("koc") if e.rule == "milestone"] == ["available"]
    assert_balances_match_entries(["koc"] + [f"f{i}" for i in range(3)])


def _three_friends_reach_the_first_milestone(client, streams) -> None:
    signup(client, "koc")
    for i in range(3):
        signup(client, f"f{i}", code_of("koc"), device_id=f"d{i}")
        purchase(client, f"o{i}", f"f{i}", 100_00)
    streams.drain()
    assert [(e.referee_id, bool(e.hold)) for e in entries("koc") if e.rule == "milestone"] == [("f2", False)]


def _re_tie_while_the_flag_handler_runs(monkeypatch, to: str) -> None:
    """A re-rank ties the milestone to another friend's conversion between the flag handler's
    read of the referral's entries and its write (the handler then holds a stale copy)."""
    from chalicelib.campaigns import service as campaigns
    from chalicelib.rewards import handlers, ledger

    read_entries = handlers._referral_entries

    def re_tied_meanwhile(referee_id):
        found = read_entries(referee_id)
        for entry in found:
            if entry.rule == "milestone":
                ledger.restate("koc", entry.entry_id, int(entry.amount), 0,
                               campaigns.rules_of(campaigns.current_or_404(None)), referee_id=to)
        return found

    monkeypatch.setattr(handlers, "_referral_entries", re_tied_meanwhile)


def _milestone_follows_its_referral() -> LedgerEntry:
    milestone = next(e for e in entries("koc") if e.rule == "milestone")
    assert bool(milestone.hold) == (member(milestone.referee_id).referral_hold == "fraud_review"), milestone.referee_id
    return milestone


def _milestone_after_the_hold_period(streams) -> list[str]:
    """The release sweep past the 7-day hold; the milestone's status, every balance checked."""
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    streams.drain()
    assert_balances_match_entries(["koc", "f0", "f1", "f2"])
    return [e.status for e in entries("koc") if e.rule == "milestone"]


def test_a_flag_does_not_hold_a_milestone_re_tied_to_an_unflagged_friend_meanwhile(client, streams, monkeypatch):
    _three_friends_reach_the_first_milestone(client, streams)
    _re_tie_while_the_flag_handler_runs(monkeypatch, to="f1")
    refund(client, "o2", "r2", 10_00)  # within 48 h: f2's referral is flagged
    streams.drain()
    assert member("f2").referral_hold == "fraud_review"
    assert _milestone_follows_its_referral().referee_id == "f1"
    monkeypatch.undo()
    assert _milestone_after_the_hold_period(streams) == ["available"]


def test_an_approval_does_not_release_a_milestone_re_tied_to_a_flagged_friend_meanwhile(client, streams, monkeypatch):
    _three_friends_reach_the_first_milestone(client, streams)
    for i in (1, 2):
        refund(client, f"o{i}", f"r{i}", 10_00)  # both referrals flagged: the milestone (f2's) is held
    streams.drain()
    assert _milestone_follows_its_referral().hold
    _re_tie_while_the_flag_handler_runs(monkeypatch, to="f1")
    _resolve(client, "f2", "approve")
    streams.drain()
    assert _milestone_follows_its_referral().referee_id == "f1"  # still held: f1's flag is open
    monkeypatch.undo()
    assert _milestone_after_the_hold_period(streams) == ["pending"]


def test_a_release_from_a_copy_tied_to_another_friend_leaves_the_re_tied_milestone_pending(client, streams, monkeypatch):
    """The sweep releases from index copies: one still tied to f2 (no flag) must not release the
    milestone after it was re-tied to f1, whose flag is open, before the re-tie's hold landed."""
    from chalicelib.campaigns import service as campaigns
    from chalicelib.rewards import ledger

    _three_friends_reach_the_first_milestone(client, streams)
    refund(client, "o1", "r1", 10_00)  # within 48 h: f1's referral is flagged
    streams.drain()
    clock.advance(timedelta(days=8))
    copy = next(e for e in entries("koc") if e.rule == "milestone")
    assert copy.referee_id == "f2" and not copy.hold  # due, unheld: what the sweep read
    monkeypatch.setattr(ledger, "follow_referral_hold", lambda entry: None)  # the re-tie's re-read comes later
    ledger.restate("koc", copy.entry_id, int(copy.amount), 0, campaigns.rules_of(campaigns.current_or_404(None)),
                   referee_id="f1", held=False)  # f1's hold read just before its flag opened
    monkeypatch.undo()
    assert sweeps._release(copy, clock.now_iso()) is False
    ledger.follow_referral_hold(ledger.find("koc", copy.entry_id))
    sweeps.release_due()
    streams.drain()
    milestone = _milestone_follows_its_referral()
    assert (milestone.referee_id, milestone.status, bool(milestone.hold)) == ("f1", "pending", True)
    assert_balances_match_entries(["koc", "f0", "f1", "f2"])


def test_a_conversion_written_from_a_stale_hold_is_held_by_the_flag_opened_meanwhile(client, streams, monkeypatch):
    from chalicelib.rewards import handlers

    signup(client, "koc", device_id="shared")
    signup(client, "f0", code_of("koc"), device_id="shared")  # flagged at sign-up: its referral is held
    streams.drain()
    monkeypatch.setattr(handlers, "_held", lambda member: False)  # read before the flag opened
    purchase(client, "o0", "f0", 100_00)
    streams.drain()
    assert {e.rule: bool(e.hold) for e in entries("koc") if e.order_id == "o0"} == {"conversion": True,
                                                                                    "commission": True}
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    assert points("koc")["available"] == 0
    assert_balances_match_entries(["koc", "f0"])


def test_an_entry_written_from_a_stale_hold_after_the_rejection_is_voided_like_the_rest(client, streams):
    """A handler read the referral as held, the referral was rejected (its handler voided what
    existed), then the handler wrote its entry: the entry is voided, never released."""
    from chalicelib.campaigns import service as campaigns
    from chalicelib.rewards import ledger
    from chalicelib.rewards.rules import Award

    signup(client, "koc", device_id="shared")
    signup(client, "f0", code_of("koc"), device_id="shared")  # flagged at sign-up
    streams.drain()
    _resolve(client, "f0", "reject")
    streams.drain()
    assert member("f0").referral_status == "void"
    rules = campaigns.rules_of(campaigns.current_or_404(None))
    late = Award("koc", "conversion", "f0", 500, "friend converted", referee_id="f0")
    ledger.award(late, campaigns.DEFAULT_ID, rules, held=True)
    streams.drain()
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    streams.drain()
    [entry] = [e for e in entries("koc") if e.entry_id == "conversion.f0"]
    assert (entry.status, entry.voided, entry.standing) == ("reversed", "fraud_rejected", 0)
    assert points("koc") == {"available": 0, "pending": 0}
    assert_balances_match_entries(["koc", "f0"])


# -- a budget changed while the campaign runs -----------------------------------------------------

def _friend_buys(client, friend: str, streams) -> int:
    """A new friend of the advocate buys ¥100 (500 conversion + 300 commission wanted): what it paid."""
    service = token("brand", "service")  # issued now: the clock moves by days here
    client.post("/v1/events/signups", {"member_id": friend, "display_name": friend,
                                       "referral": {"code": code_of("koc", "spring")}}, token=service)
    client.post("/v1/events/purchases", {"order_id": f"o-{friend}", "member_id": friend, "amount_fen": 100_00},
                token=service)
    streams.drain()
    return sum(int(e.amount) for e in entries("koc") if e.campaign_id == "spring" and e.order_id == f"o-{friend}")


def _refund_all(client, streams, friend: str) -> None:
    answer = client.post("/v1/events/refunds", {"order_id": f"o-{friend}", "refund_id": f"r-{friend}",
                                                "amount_fen": 100_00}, token=token("brand", "service"))
    assert answer.status_code == 200, answer.body
    streams.drain()


def test_a_budget_lowered_below_what_was_spent_pays_nothing_until_returns_bring_it_under(client, streams):
    campaign = spring_campaign(client, budget_points=5_000, referee_signup_points=0)
    signup(client, "koc")
    assert [_friend_buys(client, f"f{i}", streams) for i in range(4)] == [800] * 4
    assert budget_spent("spring") == 3_200
    change_rules(client, campaign, budget_points=2_000)
    assert _friend_buys(client, "f4", streams) == 0  # spent is over the new budget: nothing more
    clock.advance(timedelta(days=3))  # refunds past the quick-refund window: nothing held
    _refund_all(client, streams, "f0")
    assert budget_spent("spring") == 2_400  # still over
    assert _friend_buys(client, "f5", streams) == 0
    _refund_all(client, streams, "f1")
    assert budget_spent("spring") == 1_600
    assert _friend_buys(client, "f6", streams) == 400  # what the budget has left, no more
    assert budget_spent("spring") == 2_000
    change_rules(client, campaign, budget_points=3_000)  # raised: pays at once
    assert _friend_buys(client, "f7", streams) == 800
    assert budget_spent("spring") == 2_800
    assert_balances_match_entries(["koc"])


def test_a_coupon_under_a_money_budget_lowered_after_its_referral_was_bound_issues_nothing(client, streams):
    """The referral was bound under ¥30 of money budget; ops lowered it to ¥10: a ¥20 coupon does
    not issue (whole or not at all), and nothing fails."""
    from chalicelib.campaigns import service as campaigns
    from chalicelib.rewards import ledger
    from chalicelib.rewards.rules import Award

    campaign = spring_campaign(client, budget_fen=30_00)
    bound = campaigns.rules_of(campaigns.current("spring"))
    signup(client, "m")
    change_rules(client, campaign, budget_fen=10_00)
    entry = ledger.award(Award("m", "coupon", "c1", 20_00, "test", unit="coupon_fen"), "spring", bound)
    assert (int(entry.amount), int(entry.capped_from)) == (0, 20_00)
    assert budget_spent_fen("spring") == 0

