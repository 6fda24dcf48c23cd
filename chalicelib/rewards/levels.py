"""Advocate levels by converted referrals, from the member's campaign rules."""
from __future__ import annotations

from ..campaigns import service as campaigns


def advocate_level(member) -> str | None:
    campaign = campaigns.current(None)
    if campaign is None:
        return None
    level = campaigns.rules_of(campaign).level_for(int(member.referrals_converted))
    return level.name if level else None
