"""Stream handlers that keep the leaderboards: a conversion counts on the referrer's
`referrals` boards, a referee's order (net of refunds, inside the referral's window) on the
referrer's `gmv` boards, a campaign's points entry (net of reversals) on its owner's `points`
boards — each in the periods of its own time.

Batch handlers: each change says what its fact contributes now (None: nothing that counts
changed, no read), the last change of a fact in the batch wins (its latest image), and the
batch's facts are applied in one transaction (scores.apply_many: a score moved by several facts
is written once). A failure sends the whole batch again; applying it again changes nothing."""
from __future__ import annotations

from typing import Callable

from ..campaigns import service as campaigns
from ..core import clock
from ..members.models import Member
from ..referrals import graph
from ..streams import Batch, Change, latest, latest_facts, on_batch
from . import rules, scores

NOT_EARNED = ("redemption", "adjustment", "expiry")

Fact = tuple[str, scores.Desired] | None


def _boards(campaign_id: str, metric: str, at: str, member_id: str, score: int) -> scores.Desired:
    return {rules.board(campaign_id, metric, period): (member_id, score)
            for period in rules.periods(clock.parse(at), campaigns.zone_of(campaign_id))}


def conversion(change: Change) -> Fact:
    member = latest(change)
    if member is None or not member.referrer_id or not member.referral_campaign_id:
        return None
    converted = member.referral_status == "converted" and bool(member.converted_at)
    was_converted = change.replayed or (change.old is not None and change.old.referral_status == "converted")
    if not converted and not was_converted:
        return None  # never converted: nothing counted, nothing to take back (no read)
    desired = _boards(member.referral_campaign_id, "referrals", member.converted_at, member.referrer_id, 1) \
        if converted else {}
    return f"conv.{member.member_id}", desired


def referred_gmv(change: Change) -> Fact:
    order = latest(change) if graph.refunds_changed(change) else None
    if order is None:
        return None  # only the stream's own bookkeeping changed (`counted`): the net is what it was
    referee = Member.find(order.member_id, consistent=True)
    if referee is None or not referee.referrer_id or not referee.referral_campaign_id:
        return None
    net = graph.referred_gmv(order, referee)
    return f"order.{order.order_id}", _boards(referee.referral_campaign_id, "gmv", order.occurred_at,
                                              referee.referrer_id, net)


def points(change: Change) -> Fact:
    entry = latest(change)
    if entry is None or not entry.campaign_id or entry.unit != "points" or entry.rule in NOT_EARNED:
        return None
    old = change.old
    if not change.replayed and old is not None and (int(old.amount), int(old.reversed_amount or 0), old.voided) == (
            int(entry.amount), int(entry.reversed_amount or 0), entry.voided):
        return None  # released or held: what it earns is unchanged
    net = 0 if entry.voided else int(entry.amount) - int(entry.reversed_amount or 0)
    return f"entry.{entry.member_id}.{entry.entry_id}", _boards(entry.campaign_id, "points", entry.created_at,
                                                                entry.member_id, max(0, net))


def _apply(changes: list[Change], fact_of: Callable[[Change], Fact]) -> None:
    scores.apply_many(latest_facts(changes, fact_of))


@on_batch("main", "member")
def count_conversions(changes: list[Change], batch: Batch) -> None:
    _apply(changes, conversion)


@on_batch("main", "order")
def count_referred_gmv(changes: list[Change], batch: Batch) -> None:
    _apply(changes, referred_gmv)


@on_batch("main", "ledger_entry")
def count_points(changes: list[Change], batch: Batch) -> None:
    _apply(changes, points)
