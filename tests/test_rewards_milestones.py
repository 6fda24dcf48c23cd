"""A campaign pays its own milestones: on the advocate's conversions in that campaign, from its
budget, taken back when the count falls (rewards/ranks.py settle_milestones)."""
from __future__ import annotations

from chalicelib.rewards import budget
from tests.flows import code_of, purchase, refund, signup, spring_campaign
from tests.ledger_checks import assert_balances_match_entries, entries

SPRING_MILESTONES = [{"conversions": 2, "bonus_points": 400}, {"conversions": 3, "bonus_points": 900}]


def _milestones(member_id: str) -> dict[str, tuple[str, int]]:
    """Standing milestone entries: entry id -> (campaign, points)."""
    return {e.entry_id: (e.campaign_id, e.standing) for e in entries(member_id) if e.rule == "milestone"}


def _friends(client, advocate: str, campaign_id: str | None, names: list[str]) -> None:
    code = code_of(advocate, campaign_id)
    for name in names:
        signup(client, name, code)
        purchase(client, f"o-{name}", name, 100_00)


def test_a_campaign_pays_its_own_milestones_from_its_budget(client, streams):
    spring_campaign(client, milestones=SPRING_MILESTONES, budget_points=2_000, referrer_conversion_points=100)
    signup(client, "koc")
    _friends(client, "koc", "spring", ["f1", "f2", "f3"])
    streams.drain()
    # three conversions in spring: spring's 2 and 3, not the default campaign's 3 (300)
    assert _milestones("koc") == {"milestone.spring.2": ("spring", 400), "milestone.spring.3": ("spring", 900)}
    paid = [e for m in ("koc", "f1", "f2", "f3") for e in entries(m) if e.campaign_id == "spring"]
    assert budget.totals("spring")["points"] == sum(e.standing for e in paid if e.unit == "points")
    assert_balances_match_entries(["koc"])


def test_a_campaigns_milestones_count_only_its_own_conversions(client, streams):
    spring_campaign(client, milestones=SPRING_MILESTONES)
    signup(client, "koc")
    _friends(client, "koc", "spring", ["s1"])
    _friends(client, "koc", None, ["d1", "d2"])
    streams.drain()
    assert _milestones("koc") == {}  # one conversion in spring, two in the default campaign
    _friends(client, "koc", None, ["d3"])
    streams.drain()
    assert _milestones("koc") == {"milestone.3": ("default", 300)}


def test_a_refund_below_a_campaigns_milestone_takes_it_back(client, streams):
    spring_campaign(client, milestones=SPRING_MILESTONES)
    signup(client, "koc")
    _friends(client, "koc", "spring", ["f1", "f2"])
    streams.drain()
    assert _milestones("koc") == {"milestone.spring.2": ("spring", 400)}
    assert refund(client, "o-f2", "r1", 100_00).status_code == 200
    streams.drain()
    assert _milestones("koc") == {"milestone.spring.2": ("spring", 0)}
    _friends(client, "koc", "spring", ["f3"])
    streams.drain()
    assert _milestones("koc") == {"milestone.spring.2": ("spring", 400)}
    assert_balances_match_entries(["koc"])
