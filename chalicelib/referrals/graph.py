"""Pure rules of the referral graph: who may be bound to whom, what converts, what is
suspicious. No I/O; the attribution service reads the facts and applies the answers.

Why cycles cannot happen: a member is bound only when the sign-up creates them, and the
binding transaction requires the referee to have no downline yet. A cycle needs the referee
to be an ancestor of the referrer, i.e. to have a downline — so the condition alone keeps the
graph acyclic at any depth, with one read.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..core import clock

CLICK_MAX_AGE = timedelta(days=7)
QUICK_REFUND = timedelta(hours=48)


@dataclass(frozen=True)
class Person:
    member_id: str
    referrer_id: str | None = None
    grandparent_id: str | None = None
    downline: int = 0
    device_id: str | None = None
    phone_hash: str | None = None


def refusal(referee: Person | None, referrer: Person, is_new: bool) -> str | None:
    """Why the referee may not be bound to the referrer, or None if they may.

    >>> refusal(None, Person("a"), True) is None
    True
    >>> refusal(Person("a"), Person("a"), False)
    'self_referral'
    >>> refusal(Person("c", downline=1), Person("a", referrer_id="b", grandparent_id="c"), False)
    'would_create_cycle'
    """
    referee_id = referee.member_id if referee else None
    if referee_id == referrer.member_id:
        return "self_referral"
    if referee is not None and referee.referrer_id:
        return "already_referred"
    if referee is not None and (referee.downline > 0 or referee_id in (referrer.referrer_id, referrer.grandparent_id)):
        return "would_create_cycle"
    if not is_new:
        return "existing_member"
    return None


def ancestors(referrer: Person) -> tuple[str, str | None]:
    """(parent, grandparent) of a new referee: the chain is stored, so it is one read later."""
    return referrer.member_id, referrer.referrer_id


def fraud_reasons(referee_device: str | None, referee_phone: str | None, referrer: Person,
                  signups_this_hour: int, hourly_limit: int) -> list[str]:
    reasons = []
    if referee_device and referee_device == referrer.device_id:
        reasons.append("shared_device")
    if referee_phone and referee_phone == referrer.phone_hash:
        reasons.append("shared_phone")
    if signups_this_hour > hourly_limit:
        reasons.append("signup_velocity")
    return reasons


def click_usable(click_code: str | None, click_at: str | None, code: str, at: str) -> bool:
    """A click id links to the sign-up only if it was a click on the same code, recently."""
    if not click_code or not click_at or click_code.upper() != code.upper():
        return False
    return timedelta(0) <= clock.parse(at) - clock.parse(click_at) <= CLICK_MAX_AGE


def window_end(bound_at: str, window_days: int) -> str:
    return clock.iso(clock.parse(bound_at) + timedelta(days=window_days))


def in_window(occurred_at: str, bound_at: str | None, window_ends_at: str | None) -> bool:
    """A purchase counts for the referral only between the binding and the window's end: an
    order dated before the referral existed was not caused by it."""
    return (bound_at is None or bound_at <= occurred_at) and (window_ends_at is None or occurred_at <= window_ends_at)


def converts(net_amount_fen: int, occurred_at: str, min_purchase_fen: int, bound_at: str | None,
             window_ends_at: str | None) -> bool:
    """A referee's purchase converts the referral if it is big enough (after refunds) and in
    the attribution window (bound_at ≤ occurred_at ≤ window end)."""
    if net_amount_fen <= 0 or net_amount_fen < min_purchase_fen:
        return False
    return in_window(occurred_at, bound_at, window_ends_at)


def quick_refund(purchased_at: str, refunded_at: str) -> bool:
    return clock.parse(refunded_at) - clock.parse(purchased_at) <= QUICK_REFUND


def referred_gmv(order: Any, referee: Any) -> int:
    """What an order adds to its referrer's referred GMV (leaderboards, funnel): net of refunds,
    if placed inside the referral's window (bound_at ≤ occurred_at ≤ window end), nothing once
    the referral is void (fraud rejected)."""
    inside = (referee.bound_at or "") <= order.occurred_at <= (referee.window_ends_at or "9999")
    if not inside or referee.referral_status == "void":
        return 0
    return int(order.amount_fen) - int(order.refunded_fen or 0)


def refunds_changed(change: Any) -> bool:
    """An order's stream record that moves its net: new, or its refunded total changed (not the
    stream's own bookkeeping, `counted`); a re-driven record is re-read, so it always counts."""
    order, old = change.new, change.old
    return order is not None and (change.replayed or old is None
                                  or int(old.refunded_fen or 0) != int(order.refunded_fen or 0))
