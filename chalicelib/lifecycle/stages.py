"""Stages as a pure function of the facts and the moment (no I/O).

    new ── first purchase ──▶ active ── loyal_orders ──▶ loyal ── a referee converts ──▶ advocate
      any of those ── at_risk_days without a purchase ──▶ at_risk ── churned_days ──▶ churned
      churned ── a purchase ──▶ reactivated ── active_days later ──▶ active / loyal / advocate

A fully refunded purchase does not count. `stage_at` looks only at facts dated at or before the
moment, so the history is the same function evaluated at earlier moments.
"""
from __future__ import annotations

from typing import Callable

from ..program.rules import ProgramRules
from .facts import MemberFacts, plus_days

STAGES = ("new", "active", "loyal", "advocate", "at_risk", "churned", "reactivated")
RulesAt = Callable[[str], ProgramRules]


def stage_at(facts: MemberFacts, moment: str, rules: ProgramRules) -> str:
    standing = facts.standing_at(moment)
    if not standing:
        return "new"
    stages = rules.stages
    last = standing[-1].at
    if moment >= plus_days(last, stages.churned_days):
        return "churned"
    if moment >= plus_days(last, stages.at_risk_days):
        return "at_risk"
    if len(standing) > 1 and last >= plus_days(standing[-2].at, stages.churned_days) \
            and moment < plus_days(last, stages.active_days):
        return "reactivated"
    if sum(1 for at in facts.conversions if at <= moment) >= stages.advocate_conversions:
        return "advocate"
    if len(standing) >= stages.loyal_orders:
        return "loyal"
    return "active"


def _boundaries(facts: MemberFacts, moment: str, rules: ProgramRules) -> list[str]:
    """Every moment up to `moment` at which the stage can change."""
    stages = rules.stages
    points = {facts.joined_at}
    for purchase in facts.purchases:
        points.add(purchase.at)
        points.update(r.at for r in purchase.refunds)
        for days in (stages.at_risk_days, stages.churned_days, stages.active_days):
            points.add(plus_days(purchase.at, days))
    points.update(facts.conversions)
    return sorted(p for p in points if p <= moment)


def stage_since(facts: MemberFacts, moment: str, rules_at: RulesAt) -> tuple[str, str]:
    """The stage at `moment` and since when it has held without a break."""
    current = stage_at(facts, moment, rules_at(moment))
    since = facts.joined_at
    for point in _boundaries(facts, moment, rules_at(moment)):
        if stage_at(facts, point, rules_at(point)) != current:
            since = None
        elif since is None:
            since = point
    return current, since or moment


def next_stage_change(facts: MemberFacts, moment: str, rules: ProgramRules) -> str | None:
    """The next moment the passage of time alone can change the stage (None: only a fact can)."""
    standing = facts.standing_at(moment)
    if not standing:
        return None
    stages, last = rules.stages, standing[-1].at
    candidates = [plus_days(last, stages.at_risk_days), plus_days(last, stages.churned_days)]
    if stage_at(facts, moment, rules) == "reactivated":
        candidates.append(plus_days(last, stages.active_days))
    later = [c for c in candidates if c > moment]
    return min(later) if later else None
