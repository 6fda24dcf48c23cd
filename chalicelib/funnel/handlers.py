"""Stream handlers that keep the funnel's fact figures (facts.py), each on the day of the fact's
own time in the campaign's time zone and the referee's channel:

- a referred member: a sign-up on `bound_at`'s day; while the referral stands converted, a first
  purchase on `converted_at`'s day (undone or moved with the conversion). A void referral (fraud
  rejected) counts neither.
- a referee's order inside the referral's window, net of refunds: GMV on `occurred_at`'s day
  (the leaderboards' rule); a referral voided later takes its orders' GMV back.
- a campaign's ledger entry, net of reversals (0 when voided): reward cost in its unit on
  `created_at`'s day, for all channels (an entry carries no channel; its referee's would cost
  a read per entry). Spending, adjustments and expiry are not cost.
- a share link: an invite on `created_at`'s day and the link's channel.
"""
from __future__ import annotations

from typing import Any

from ..campaigns import service as campaigns
from ..facts.models import Order
from ..members.models import Member
from ..referrals import graph
from ..streams import Batch, Change, latest, latest_facts, on_batch, on_change
from . import facts, rules

NOT_COST = ("redemption", "adjustment", "expiry")
COST_UNITS = {"points": "points", "coupon_fen": "coupon_fen"}


def _day(campaign_id: str, at: str) -> str:
    return rules.day_of(at, campaigns.zone_of(campaign_id))


def member_figures(member: Any) -> facts.Desired:
    if member is None or not member.referrer_id or not member.referral_campaign_id or not member.bound_at \
            or member.referral_status == "void":
        return {}
    campaign_id, channel = member.referral_campaign_id, member.referral_channel or "code"
    desired: facts.Desired = {(campaign_id, _day(campaign_id, member.bound_at), channel): {"signups": 1}}
    if member.referral_status == "converted" and member.converted_at:
        cell = (campaign_id, _day(campaign_id, member.converted_at), channel)
        desired.setdefault(cell, {})["first_purchases"] = 1
    return desired


@on_change("main", "member")
def count_referral(change: Change) -> None:
    member = latest(change)
    if member is None:
        return  # an erased or deleted member keeps what the referral counted
    desired = member_figures(member)
    if not change.replayed:
        if change.old is None and not desired:
            return  # not referred: nothing to count, nothing counted before (no read)
        if change.old is not None and member_figures(change.old) == desired:
            return  # points, stage, counters…: nothing the funnel counts changed
    facts.apply(f"member.{member.member_id}", desired)
    voided_or_restored = change.old is not None and (change.old.referral_status == "void") != (
        member.referral_status == "void")
    if voided_or_restored or (change.replayed and member.referral_status == "void"):
        for order in Order.by_gsi1.query(f"ORDERS#{member.member_id}"):  # rare: a fraud decision
            _count_order(order, member, counted_before=True)


@on_change("main", "order")
def count_referred_gmv(change: Change) -> None:
    order = latest(change) if graph.refunds_changed(change) else None
    if order is None:
        return  # only the stream's own bookkeeping changed (`counted`): the net is what it was
    _count_order(order, Member.find(order.member_id, consistent=True),
                 counted_before=change.old is not None or change.replayed)


def _count_order(order: Order, referee: Member | None, counted_before: bool) -> None:
    if referee is None or not referee.referrer_id or not referee.referral_campaign_id:
        return
    net = graph.referred_gmv(order, referee)
    campaign_id = referee.referral_campaign_id
    cell = (campaign_id, _day(campaign_id, order.occurred_at), referee.referral_channel or "code")
    if not counted_before and not net:
        return  # counts nothing and never did
    facts.apply(f"order.{order.order_id}", {cell: {"gmv_fen": net}})


def reward_cost(change: Change) -> tuple[str, facts.Desired] | None:
    """What a campaign ledger entry costs now; None when that did not change (no read)."""
    entry, old = latest(change), change.old
    if entry is None or not entry.campaign_id or entry.unit not in COST_UNITS or entry.rule in NOT_COST:
        return None
    if not change.replayed and old is not None and (int(old.amount), int(old.reversed_amount or 0), old.voided) == (
            int(entry.amount), int(entry.reversed_amount or 0), entry.voided):
        return None  # released or held: what it costs is unchanged
    net = 0 if entry.voided else max(0, int(entry.amount) - int(entry.reversed_amount or 0))
    if old is None and not change.replayed and not net:
        return None  # capped to nothing: no cost, and none counted before (no read)
    cell = (entry.campaign_id, _day(entry.campaign_id, entry.created_at), rules.ALL_CHANNELS)
    return f"entry.{entry.member_id}.{entry.entry_id}", {cell: {COST_UNITS[entry.unit]: net}}


@on_batch("main", "ledger_entry")
def count_reward_cost(changes: list[Change], batch: Batch) -> None:
    """A batch's entries together (a purchase pays several into one cell): facts.apply_many."""
    facts.apply_many(latest_facts(changes, reward_cost))


@on_change("main", "link")
def count_invite(change: Change) -> None:
    link = change.new
    if change.event != "INSERT" or link is None:
        return  # links never change
    facts.add_once(f"link.{link.link_id}",
                   {(link.campaign_id, _day(link.campaign_id, link.created_at), link.channel): {"invites": 1}})
