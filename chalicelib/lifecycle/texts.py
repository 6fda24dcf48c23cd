"""A notification's title and body, rendered when it is read, in the reader's language.

Outbox items store the moment's kind and data only (language-free), so a member who switches
language sees every message, old ones too, in the new one, and a translation fixed later
reaches messages already written. The catalogue context is `note:<kind>`; a kind without texts
here (a new one) gets a neutral text rather than none. Amounts are fen and shown as yuan; days
are shown in the program's time zone.
"""
from __future__ import annotations

from typing import Any, Callable

from ..core import clock
from ..i18n import t


def texts(kind: str, payload: dict[str, Any], zone: Any = None) -> dict[str, str]:
    """`{title, body}` of a notification in the locale in force."""
    render = _KINDS.get(kind)
    try:
        title, body = render(payload, zone) if render else _other()
    except (KeyError, TypeError, ValueError):  # a payload older than its texts: still say something
        title, body = _other()
    return {"title": title, "body": body}


def yuan(fen: Any) -> str:
    """>>> yuan(2000), yuan(1999), yuan(5)
    ('20', '19.99', '0.05')
    """
    whole, cents = divmod(int(fen), 100)
    return f"{whole}" if cents == 0 else f"{whole}.{cents:02d}"


def day(at: str | None, zone: Any) -> str:
    """The calendar day of an ISO instant in `zone` (a ZoneInfo; None: UTC)."""
    if not at:
        return ""
    moment = clock.parse(at)
    return (moment.astimezone(zone) if zone else moment).date().isoformat()


def _other():
    return t("News from us", context="note:other"), t("Open the app to see what is new.", context="note:other")


def _welcome(p, zone):
    return (t("Welcome aboard", context="note:welcome"),
            t("Hi {name}, your membership is ready. Share your code with friends and earn points together.",
              context="note:welcome", name=p.get("display_name") or t("there", context="note:welcome")))


def _reward_available(p, zone):
    return (t("Your points are ready", context="note:reward_available"),
            t("{points} points are now available to spend.", context="note:reward_available", points=p["points"]))


def _milestone(p, zone):
    return (t("Milestone reached", context="note:milestone"),
            t("Your friends keep joining: {points} bonus points are on their way.", context="note:milestone",
              points=p["points"]))


def _level_up(p, zone):
    return (t("You are now {level}", context="note:level_up", level=p["level"]),
            t("Thanks for bringing friends along. Your new advocate level is {level}.", context="note:level_up",
              level=p["level"]))


def _first_purchase(p, zone):
    return (t("Thank you for your first order", context="note:first_purchase"),
            t("We hope you love it. Your points for this order are on the way.", context="note:first_purchase"))


def _second_purchase_nudge(p, zone):
    return (t("Something else you might like", context="note:second_purchase_nudge"),
            t("Come back and find your next favourite; members earn points on every order.",
              context="note:second_purchase_nudge"))


def _at_risk(p, zone):
    return (t("We miss you", context="note:at_risk"),
            t("It has been a while since your last visit on {day}. See what is new.", context="note:at_risk",
              day=day(p["last_purchase_at"], zone)))


def _win_back(p, zone):
    if p.get("coupon_fen"):
        return (t("A gift to welcome you back", context="note:win_back"),
                t("A ¥{yuan} coupon is waiting in your account.", context="note:win_back", yuan=yuan(p["coupon_fen"])))
    return (t("Welcome back anytime", context="note:win_back"),
            t("We have new things for you; come and have a look.", context="note:win_back"))


def _tier_up(p, zone):
    return (t("You reached {tier}", context="note:tier_up", tier=p["to"]),
            t("Congratulations! Your membership moved up from {old} to {tier}.", context="note:tier_up",
              old=p["from"], tier=p["to"]))


def _tier_down(p, zone):
    if p.get("warning"):
        return (t("Keep your {tier} membership", context="note:tier_down", tier=p["tier"]),
                t("At the review on {day} your membership would become {lower}. A few more orders keep it.",
                  context="note:tier_down", day=day(p.get("downgrade_at"), zone), lower=p["would_be"]))
    return (t("Your membership is now {tier}", context="note:tier_down", tier=p["to"]),
            t("Your membership changed from {old} to {tier} at the review. Shop again to move back up.",
              context="note:tier_down", old=p["from"], tier=p["to"]))


def _birthday(p, zone):
    if p.get("points"):
        return (t("Happy birthday!", context="note:birthday"),
                t("A birthday gift of {points} points is in your account.", context="note:birthday",
                  points=p["points"]))
    return t("Happy birthday!", context="note:birthday"), t("Have a wonderful day.", context="note:birthday")


def _share_completed(p, zone):
    if p.get("points"):
        return (t("Your friends did it", context="note:share_completed"),
                t("{target} friends helped: {points} points are yours.", context="note:share_completed",
                  target=p["target"], points=p["points"]))
    return (t("Your friends did it", context="note:share_completed"),
            t("{target} friends helped you reach the goal.", context="note:share_completed", target=p["target"]))


def _points_expiring(p, zone):
    return (t("Points about to expire", context="note:points_expiring"),
            t("{points} points expire on {day}. Spend them before then.", context="note:points_expiring",
              points=p["points"], day=day(p["expires_at"], zone)))


_KINDS: dict[str, Callable[[dict[str, Any], Any], tuple[str, str]]] = {
    "welcome": _welcome, "reward_available": _reward_available, "milestone": _milestone, "level_up": _level_up,
    "first_purchase": _first_purchase, "second_purchase_nudge": _second_purchase_nudge, "at_risk": _at_risk,
    "win_back": _win_back, "tier_up": _tier_up, "tier_down": _tier_down, "birthday": _birthday,
    "share_completed": _share_completed, "points_expiring": _points_expiring,
}
KINDS = frozenset(_KINDS)
