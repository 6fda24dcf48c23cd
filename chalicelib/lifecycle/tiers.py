"""Tiers and own-purchase points as one pure fold over the facts in time order (no I/O).

- A purchase earns `points_per_yuan` of the tier held just before it (× the double-points
  multiplier in force then); points and spend of the rolling 12 months qualify for tiers.
- Upgrade at once when a threshold is crossed. The upgrade stays provisional through the
  purchase's return window: a refund inside it that takes the figures below cancels it.
- Downgrade only at a review date (program time zone): a member below their tier at the review
  is warned, and moved down `grace_days` later unless they qualify again by then.
- Refunds take back points in proportion (rewards.rules.reversal_target) and lower the figures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from ..core import clock
from ..program.rules import ProgramRules
from ..rewards.rules import reversal_target
from .facts import MemberFacts, Purchase, plus_days

RulesAt = Callable[[str], ProgramRules]
YEAR_DAYS = 365


@dataclass
class TierState:
    tier: str
    since: str
    warning: str | None = None  # the review that announced a downgrade (due at review + grace)
    downgrade_at: str | None = None
    provisional_until: str | None = None
    before_upgrade: tuple[str, str] | None = None  # (tier, since) a cancelled upgrade returns to
    points: dict[str, int] = field(default_factory=dict)  # order id → points earned (before refunds)
    changes: list[tuple[str, str, str, str]] = field(default_factory=list)  # (at, reason, from, to)


def purchase_points(purchase: Purchase, tier_rate: int, multiplier: int) -> int:
    return (purchase.amount_fen // 100) * tier_rate * multiplier


def figures_at(facts: MemberFacts, points: dict[str, int], moment: str) -> tuple[int, int]:
    """(points, spend in fen) of the 12 months up to `moment`, net of refunds made by then."""
    start = clock.iso(clock.parse(moment) - timedelta(days=YEAR_DAYS))
    earned = spend = 0
    for purchase in facts.purchases:
        if start < purchase.at <= moment and purchase.order_id in points:
            refunded = purchase.refunded_by(moment)
            spend += purchase.amount_fen - refunded
            gross = points[purchase.order_id]
            earned += gross - reversal_target(gross, refunded, purchase.amount_fen)
    return earned, spend


def review_dates(start: str, end: str, rules: ProgramRules) -> list[str]:
    """Review moments in (start, end]: the first instant of each month, quarter or year in the
    program's time zone."""
    step = {"monthly": 1, "quarterly": 3, "yearly": 12}[rules.review]
    local = rules.local(clock.parse(start))
    month = ((local.month - 1) // step) * step + 1
    cursor = datetime(local.year, month, 1, tzinfo=rules.zone())
    out = []
    while True:
        total = cursor.month - 1 + step
        cursor = datetime(cursor.year + total // 12, total % 12 + 1, 1, tzinfo=rules.zone())
        moment = clock.iso(cursor)
        if moment > end:
            return out
        out.append(moment)


def tier_state(facts: MemberFacts, moment: str, rules_at: RulesAt) -> TierState:
    """The tier at `moment`, its history, and the points each purchase earned."""
    first = rules_at(facts.joined_at)
    state = TierState(first.base_tier.name, facts.joined_at)
    events: list[tuple[str, int, str, object]] = []
    for purchase in facts.purchases:
        if purchase.at <= moment:
            events.append((purchase.at, 1, purchase.order_id, purchase))
        for refund in purchase.refunds:
            if refund.at <= moment and purchase.at <= moment:
                events.append((max(refund.at, purchase.at), 2, purchase.order_id, refund))
    start = min([facts.joined_at] + [p.at for p in facts.purchases])
    for review in review_dates(start, moment, rules_at(moment)):
        events.append((review, 0, "review", None))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    index = 0
    while index < len(events):
        at, kind, key, fact = events[index]
        # a pending downgrade falls due before anything dated after it
        if state.downgrade_at and state.downgrade_at <= at:
            _downgrade(facts, state, state.downgrade_at, rules_at)
            continue
        rules = rules_at(at)
        if kind == 1:
            _purchase(facts, state, fact, rules)
        elif kind == 2:
            _refund(facts, state, at, rules)
        else:
            _review(facts, state, at, rules)
        index += 1
    if state.downgrade_at and state.downgrade_at <= moment:
        _downgrade(facts, state, state.downgrade_at, rules_at)
    if state.provisional_until and state.provisional_until <= moment:
        state.provisional_until = state.before_upgrade = None
    return state


def _purchase(facts: MemberFacts, state: TierState, purchase: Purchase, rules: ProgramRules) -> None:
    rate = rules.tier(state.tier).points_per_yuan
    state.points[purchase.order_id] = purchase_points(purchase, rate, rules.multiplier_at(purchase.at))
    qualified = rules.qualified(*figures_at(facts, state.points, purchase.at))
    if rules.rank(qualified.name) > rules.rank(state.tier):
        if not (state.provisional_until and purchase.at <= state.provisional_until):
            state.before_upgrade = (state.tier, state.since)
        state.changes.append((purchase.at, "upgrade", state.tier, qualified.name))
        state.tier, state.since = qualified.name, purchase.at
        state.provisional_until = plus_days(purchase.at, rules.return_window_days)
    if rules.rank(qualified.name) >= rules.rank(state.tier):
        state.warning = state.downgrade_at = None  # qualifies again: no downgrade


def _refund(facts: MemberFacts, state: TierState, at: str, rules: ProgramRules) -> None:
    if not (state.provisional_until and at <= state.provisional_until and state.before_upgrade):
        return
    qualified = rules.qualified(*figures_at(facts, state.points, at))
    if rules.rank(qualified.name) >= rules.rank(state.tier):
        return
    before_tier, before_since = state.before_upgrade
    to = qualified.name if rules.rank(qualified.name) > rules.rank(before_tier) else before_tier
    state.changes.append((at, "upgrade_cancelled", state.tier, to))
    state.since = before_since if to == before_tier else at
    state.tier = to
    state.provisional_until = state.before_upgrade = None


def _review(facts: MemberFacts, state: TierState, at: str, rules: ProgramRules) -> None:
    if rules.rank(state.tier) == 0 or state.warning:
        return
    qualified = rules.qualified(*figures_at(facts, state.points, at))
    if rules.rank(qualified.name) < rules.rank(state.tier):
        state.warning, state.downgrade_at = at, plus_days(at, rules.grace_days)


def _downgrade(facts: MemberFacts, state: TierState, at: str, rules_at: RulesAt) -> None:
    rules = rules_at(at)
    qualified = rules.qualified(*figures_at(facts, state.points, at))
    if rules.rank(qualified.name) < rules.rank(state.tier):
        state.changes.append((at, "downgrade", state.tier, qualified.name))
        state.tier, state.since = qualified.name, at
    state.warning = state.downgrade_at = None


def next_tier_change(state: TierState, moment: str, rules: ProgramRules) -> str | None:
    """The next moment time alone can change the tier or warn of a downgrade."""
    candidates = [state.downgrade_at] if state.downgrade_at else []
    if rules.rank(state.tier) > 0 and not state.warning:
        upcoming = review_dates(moment, plus_days(moment, 400), rules)
        candidates += upcoming[:1]
    later = [c for c in candidates if c and c > moment]
    return min(later) if later else None


def needs(target, points: int, spend: int) -> dict[str, int]:
    """What is missing to qualify for `target` from these rolling figures (either threshold)."""
    out = {}
    if target.min_points_12m is not None:
        out["points_12m"] = max(0, target.min_points_12m - points)
    if target.min_spend_fen_12m is not None:
        out["spend_fen_12m"] = max(0, target.min_spend_fen_12m - spend)
    return out


def progress(tier: str, facts: MemberFacts, points: dict[str, int], moment: str, rules: ProgramRules) -> dict | None:
    """The next tier above `tier` and what it needs, from the rolling figures now (None at the top)."""
    rank = rules.rank(tier)
    if rank + 1 >= len(rules.tiers):
        return None
    target = rules.tiers[rank + 1]
    return {"name": target.name, "needs": needs(target, *figures_at(facts, points, moment))}
