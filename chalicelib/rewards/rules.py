"""Pure reward rules: which entries a fact earns, how much a refund takes back, how a cap
limits an award. No I/O. Points are integers; commission is paid in points at 1 point per
fen of commission (so 300 bps of a 100.00 yuan order is 300 points).

Entry ids are derived from (rule, source fact) and live under the beneficiary, so
(rule, fact, beneficiary) is paid at most once: a replay finds the entry already there.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..campaigns.rules import Rules
from ..referrals import graph

ADVOCATE_RULES = {"conversion", "commission", "second_level", "milestone"}  # capped per month


@dataclass(frozen=True)
class Award:
    member_id: str  # beneficiary
    rule: str
    source_id: str
    amount: int
    reason: str
    unit: str = "points"  # points | coupon_fen
    order_id: str | None = None
    referee_id: str | None = None

    @property
    def entry_id(self) -> str:
        return f"{self.rule}.{self.source_id}"


def signup_awards(rules: Rules, referee_id: str) -> list[Award]:
    awards = []
    if rules.referee_signup_points:
        awards.append(Award(referee_id, "welcome", referee_id, rules.referee_signup_points,
                            "welcome bonus for joining through a friend", referee_id=referee_id))
    if rules.referee_coupon_fen:
        awards.append(Award(referee_id, "coupon", referee_id, rules.referee_coupon_fen,
                            "first-order coupon", unit="coupon_fen", referee_id=referee_id))
    return awards


def conversion_awards(rules: Rules, referrer_id: str, referee_id: str, order_id: str) -> list[Award]:
    if not rules.referrer_conversion_points:
        return []
    return [Award(referrer_id, "conversion", order_id, rules.referrer_conversion_points,
                  "a friend you invited made a first purchase", order_id=order_id, referee_id=referee_id)]


def commission(amount_fen: int, bps: int) -> int:
    """>>> commission(100_00, 300)
    300
    """
    return amount_fen * bps // 10_000


def rate_at_rank(levels: Rules, rank: int) -> tuple[str | None, int]:
    """The advocate level, and its commission rate, that the `rank`-th conversion reaches (ranks
    count from 1 and include the conversion itself: with levels at 0/5/20 conversions the 5th
    converted friend already earns the 5-conversion rate).

    >>> from ..campaigns.rules import default_campaign
    >>> [rate_at_rank(default_campaign().rules, k)[1] for k in (1, 4, 5, 19, 20, 30)]
    [300, 300, 500, 500, 800, 800]
    """
    level = levels.level_for(rank)
    return (level.name, level.commission_bps) if level else (None, 0)


def earns_commission(order_at: str, order_id: str, converting: tuple[str, str] | None,
                     bound_at: str | None, window_ends_at: str | None) -> bool:
    """Whether an order earns its referrer's commission and the grandparent's share: only once
    the referral has converted (`converting`: the converting order's (occurred_at, order_id),
    None if it has not), for that order and those after it in fact order (by occurred_at, ties
    by order id, as the earliest qualifying order is chosen), inside the attribution window.
    A function of the facts: an order dated before the conversion earns nothing, whenever its
    stream record is handled; when the conversion moves, the orders it passes gain or lose.

    >>> conversion = ("2026-03-01T10:00:00Z", "o1")
    >>> earns_commission("2026-03-01T09:00:00Z", "small", conversion, None, None)
    False
    >>> [earns_commission("2026-03-01T10:00:00Z", o, conversion, None, None) for o in ("o0", "o1", "o2")]
    [False, True, True]
    >>> earns_commission("2026-04-01T00:00:00Z", "o3", conversion, None, "2026-03-31T10:00:00Z")
    False
    """
    if converting is None:
        return False
    return (order_at, order_id) >= converting and graph.in_window(order_at, bound_at, window_ends_at)


def purchase_awards(rules: Rules, order_id: str, amount_fen: int, referee_id: str, referrer_id: str,
                    level: tuple[str | None, int], grandparent_id: str | None) -> list[Award]:
    """Commission for the referrer at `level` (the rate of the referee's conversion rank) and
    the grandparent's second-level share. Never deeper than two levels."""
    awards = []
    name, bps = level
    if name and commission(amount_fen, bps) > 0:
        awards.append(Award(referrer_id, "commission", order_id, commission(amount_fen, bps),
                            f"{name} commission on a friend's order", order_id=order_id, referee_id=referee_id))
    if grandparent_id and commission(amount_fen, rules.second_level_bps) > 0:
        awards.append(Award(grandparent_id, "second_level", order_id, commission(amount_fen, rules.second_level_bps),
                            "second-level share of an order in your network", order_id=order_id,
                            referee_id=referee_id))
    return awards


def milestone_award(member_id: str, conversions: int, bonus_points: int, referee_id: str | None) -> Award:
    """The bonus for reaching `conversions` converted friends, tied to the friend whose
    conversion reached it (held and voided with that referral)."""
    return Award(member_id, "milestone", str(conversions), bonus_points,
                 f"milestone: {conversions} friends converted", referee_id=referee_id)


def milestones_standing(rules: Rules, converted: int) -> dict[int, bool]:
    """Which milestones stand with `converted` conversions: a refund or a rejection that takes the
    count back below one takes the milestone back; reaching it again restores it.

    >>> from ..campaigns.rules import default_campaign
    >>> milestones_standing(default_campaign().rules, 3)
    {3: True, 10: False, 25: False}
    """
    return {m.conversions: converted >= m.conversions for m in rules.milestones if m.bonus_points}


def reversal_target(amount: int, refunded_fen: int, order_amount_fen: int) -> int:
    """How much of an order-based award stands reversed after `refunded_fen` of the order came
    back: proportional, computed on the cumulative refund so rounding never drifts.

    >>> reversal_target(300, 5_000, 10_000)
    150
    """
    if order_amount_fen <= 0:
        return amount
    return min(amount, -(-amount * refunded_fen // order_amount_fen))  # round up: never leave a fen standing


def capped(wanted: int, used: int, cap: int | None) -> int:
    """What may still be paid under a cap."""
    if cap is None:
        return wanted
    return max(0, min(wanted, cap - used))


def bounded_award(grant: Award, rules: Rules, cap_used: int, points_spent: int, fen_spent: int) -> int:
    """What an award pays under the member's monthly cap (advocate rules), the campaign's points
    budget, and, for a coupon, its money budget (a coupon issues whole or not at all). Production
    (ledger.award) and the dry run both decide amounts here.

    >>> from ..campaigns.rules import default_campaign
    >>> bounded_award(Award("a", "conversion", "o1", 500, "x"), default_campaign().rules, 49_800, 0, 0)
    200
    """
    amount = grant.amount
    if grant.unit == "points":
        if grant.rule in ADVOCATE_RULES and rules.monthly_cap_points is not None:
            amount = capped(amount, cap_used, rules.monthly_cap_points)
        if rules.budget_points is not None:
            amount = capped(amount, points_spent, rules.budget_points)
    elif rules.money_budget_fen is not None and capped(amount, fen_spent, rules.money_budget_fen) < amount:
        amount = 0
    return amount


def bounded_increase(delta: int, rule: str, rules: Rules, cap_used: int, points_spent: int) -> int:
    """How much of an increase to an entry (a re-ranked commission, a milestone reached again) may
    be paid: an increase is an award, bounded by the cap and the budget like one."""
    if rule in ADVOCATE_RULES and rules.monthly_cap_points is not None:
        delta = capped(delta, cap_used, rules.monthly_cap_points)
    if rules.budget_points is not None:
        delta = capped(delta, points_spent, rules.budget_points)
    return delta


def first_status(unit: str) -> str:
    """Points wait out the return window (pending); a coupon is usable at once."""
    return "pending" if unit == "points" else "available"
