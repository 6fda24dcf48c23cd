"""What a ledger entry is, in the reader's language: a label per entry kind (the ledger rule),
rendered when the ledger is read. The stored `reason` stays as written (an ops adjustment's
reason is free text in whatever language ops typed); the label is what a member-facing list shows.
"""
from __future__ import annotations

from ..i18n import t

_LABELS = {
    "welcome": lambda: t("Sign-up reward", context="ledger"),
    "coupon": lambda: t("Welcome coupon", context="ledger"),
    "conversion": lambda: t("A friend's first order", context="ledger"),
    "commission": lambda: t("Referral commission", context="ledger"),
    "second_level": lambda: t("Reward from a friend's referral", context="ledger"),
    "milestone": lambda: t("Referral milestone bonus", context="ledger"),
    "checkin": lambda: t("Daily check-in", context="ledger"),
    "checkin_streak": lambda: t("Check-in streak bonus", context="ledger"),
    "share_goal": lambda: t("Friends helped your share", context="ledger"),
    "quiz": lambda: t("Quiz reward", context="ledger"),
    "birthday": lambda: t("Birthday gift", context="ledger"),
    "win_back": lambda: t("Welcome-back coupon", context="ledger"),
    "purchase": lambda: t("Points for your order", context="ledger"),
    "red_packet": lambda: t("Red packet", context="ledger"),
    "redemption": lambda: t("Points redeemed", context="ledger"),
    "adjustment": lambda: t("Points adjustment", context="ledger"),
    "expiry": lambda: t("Points expired", context="ledger"),
}


def label(rule: str | None) -> str:
    """>>> label("checkin") in ("每日签到", "Daily check-in")
    True
    """
    make = _LABELS.get(rule or "")
    return make() if make else t("Points change", context="ledger")
