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
