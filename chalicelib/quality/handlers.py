"""Stream handlers that keep the quality tallies: a referee's conversion (made, moved to an
earlier order, handed to another order, undone) and each of its orders and refunds (a refund
changes its order's `refunded_fen`) recompute that referee's contribution (contributions.py)."""
from __future__ import annotations

from ..members.models import Member
from ..streams import Change, on_change
from . import contributions, rules


def _conversion(member: Member | None) -> tuple:
    """What decides a referee's cohort: a sign-up (status signed_up) changes none of it."""
    if member is None:
        return (False, None, None)
    return (member.referral_status == "converted", member.converted_at, member.converting_order_id)


@on_change("main", "member")
def referee_changed(change: Change) -> None:
    member = change.item
    if not member.referrer_id or _conversion(change.old) == _conversion(change.new):
        return  # not referred, or only counters, points or lifecycle moved: no read
    contributions.refresh(member.member_id, fence=True)


@on_change("main", "order")
def order_changed(change: Change) -> None:
    order, old = change.new, change.old
    if order is None or (old is not None and int(old.refunded_fen or 0) == int(order.refunded_fen or 0)):
        return  # only the stream's own bookkeeping changed (`counted`)
    buyer = Member.find(order.member_id, consistent=True)
    if not contributions.in_cohort(buyer):
        # Nothing to count. Were the buyer's referral converted before, the record of its undoing
        # clears what it contributed (referee_changed); a later conversion reads this order then.
        return
    first_at = buyer.converted_at or ""  # the converting order's time
    if order.order_id != buyer.converting_order_id and not first_at <= order.occurred_at <= rules.window_end(first_at):
        return  # outside the 90 days that count: no refresh (a heavy buyer's later orders cost a read each)
    contributions.refresh(order.member_id, order_id=order.order_id)
