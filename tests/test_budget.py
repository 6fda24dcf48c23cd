"""A campaign never pays more than its budget, whatever the order of budget changes and awards:
the sharded budget's rooms follow the budget in force (rewards/budget.py)."""
from __future__ import annotations

from chalicelib.campaigns import service as campaigns
from chalicelib.rewards import budget, ledger
from chalicelib.rewards.rules import Award
from tests.flows import OPS, signup, spring_campaign
from tests.ledger_checks import assert_balances_match_entries, entries


def _pay(member_id: str, source: str, points: int) -> int:
    """Award `points` under the campaign's first version (a fact judged by the rules it was
    bound under); returns what was paid."""
    rules = campaigns.rules_at("spring", 1)
    return int(ledger.award(Award(member_id, "adjustment_test", source, points, "test"), "spring", rules).amount)


def _set_budget(client, campaign: dict, points: int) -> None:
    body = {key: campaign[key] for key in ("campaign_id", "name", "landing_url")}
    body["rules"] = {**campaign["rules"], "budget_points": points}
    response = client.put("/v1/campaigns/spring", body, token=OPS)
    assert response.status_code == 200, response.body


def _spent() -> int:
    return budget.totals("spring")["points"]


def test_a_budget_lowered_below_the_spend_pays_nothing_until_it_is_raised(client, streams):
    campaign = spring_campaign(client, budget_points=100)
    signup(client, "koc")
    assert sum(_pay("koc", f"a{n}", 5) for n in range(16)) == 80  # spread over the shards
    _set_budget(client, campaign, 50)
    assert [_pay("koc", f"b{n}", 5) for n in range(16)] == [0] * 16  # no shard pays, whatever its spend
    assert _spent() == 80
    _set_budget(client, campaign, 120)
    assert sum(_pay("koc", f"c{n}", 5) for n in range(16)) == 40  # up to the new budget, no further
    assert _spent() == 120
    assert_balances_match_entries(["koc"])


def test_what_a_return_frees_pays_only_once_the_spend_is_under_the_budget(client, streams):
    campaign = spring_campaign(client, budget_points=100)
    signup(client, "koc")
    for n in range(8):
        _pay("koc", f"a{n}", 10)
    _set_budget(client, campaign, 50)
    for n in range(4):  # 40 returned: the spend, 40, is 10 under the budget
        ledger.reverse_to("koc", f"adjustment_test.a{n}", 10)
    assert _spent() == 40
    assert sum(_pay("koc", f"b{n}", 5) for n in range(8)) == 10
    assert _spent() == 50
    assert sum(int(e.amount) - int(e.reversed_amount or 0) for e in entries("koc")) == 50


def test_an_unchanged_budget_still_binds_every_shard(client, streams):
    spring_campaign(client, budget_points=100)
    signup(client, "koc")
    assert sum(_pay("koc", f"a{n}", 7) for n in range(20)) == 100
    used = budget.usage("spring", budget.POINTS)
    assert used.total == 100 and used.room == 0


def test_an_award_that_read_the_campaign_before_a_change_cannot_undo_its_balance(client, streams):
    campaign = spring_campaign(client, budget_points=100)
    signup(client, "koc")
    _pay("koc", "a", 80)
    _set_budget(client, campaign, 50)  # version 2
    budget.rebalance("spring", budget.POINTS, 100, 1)  # a late balance for version 1's budget: refused
    assert budget.usage("spring", budget.POINTS).room == 0
    assert _pay("koc", "b", 5) == 0
