"""Money and attribution: rewards are a function of the facts (when they happened, in which
currency, against which budget), never of the order in which handlers ran."""
from __future__ import annotations

from datetime import timedelta

from chalicelib.core import clock
from chalicelib.rewards import sweeps
from tests.flows import code_of, member, purchase, refund, signup
from tests.helpers import token
from tests.ledger_checks import assert_balances_match_entries, budget_spent, by_rule, entries, points

OPS = token("olivia", "ops")


def _campaign(client, campaign_id="spring", **rules):
    body = {"campaign_id": campaign_id, "name": "Spring", "landing_url": "https://shop.example.com/spring",
            "rules": {"min_purchase_fen": 50_00, "referrer_conversion_points": 500,
                      "advocate_levels": [{"name": "friend", "min_conversions": 0, "commission_bps": 300}],
                      "hold_days": 7, **rules}}
    response = client.post("/v1/campaigns", body, token=OPS)
    assert response.status_code == 200, response.body
    return response.json_body


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
    created = _campaign(client, "hk", currency="HKD")
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
    _campaign(client, "tight", budget_points=10, referee_coupon_fen=100_00)  # no money budget: no coupons
    _campaign(client, "some", budget_fen=150_00, referee_coupon_fen=100_00)
    signup(client, "a")
    signup(client, "b", code_of("a", "tight"))
    for friend in ("c", "d"):
        signup(client, friend, code_of("a", "some"))
    streams.drain()
    assert _coupons("b") == [(0, 100_00)]  # the ¥100 coupon did not issue
    issued = sorted(_coupons("c") + _coupons("d"))
    assert issued == [(0, 100_00), (100_00, None)]  # ¥150 covers one whole coupon, never half of one
    assert budget_spent("tight") == 0
    from chalicelib.rewards.models import BudgetUsage

    assert int(BudgetUsage.get(*BudgetUsage.key("some"), consistent_read=True).spent_fen) == 100_00
