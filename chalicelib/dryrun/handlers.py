"""Stream handlers that list a campaign's facts by time (models.CampaignFact).

One PutItem per fact that a campaign's rules judge: a sign-up bound to a referrer, and the
purchases and refunds of referred members (the order and refund carry their campaign from the
moment they are recorded, so nothing is read here). Facts never change once recorded, so a
redelivered record puts the same row again: no condition needed.
"""
from __future__ import annotations

from ..streams import Change, on_change
from .models import CampaignFact


@on_change("main", "member")
def list_signup(change: Change) -> None:
    member = change.new
    if change.event != "INSERT" or not member.referrer_id or not member.referral_campaign_id or not member.bound_at:
        return
    if member.quiet_import:
        return  # imported without rewards: production pays its sign-up nothing, so a replay must not
    CampaignFact(*CampaignFact.key(member.referral_campaign_id, member.bound_at, member.member_id, "signup",
                                   member.member_id),
                 campaign_id=member.referral_campaign_id, kind="signup", member_id=member.member_id,
                 occurred_at=member.bound_at, referrer_id=member.referrer_id, grandparent_id=member.grandparent_id,
                 campaign_version=member.referral_campaign_version, window_ends_at=member.window_ends_at).save()


@on_change("main", "order")
def list_purchase(change: Change) -> None:
    order = change.new
    if change.event != "INSERT" or not order.campaign_id or order.history:
        return  # (imported history earns nothing, so a replay must not list it)
    CampaignFact(*CampaignFact.key(order.campaign_id, order.occurred_at, order.member_id, "purchase", order.order_id),
                 campaign_id=order.campaign_id, kind="purchase", member_id=order.member_id,
                 occurred_at=order.occurred_at, order_id=order.order_id, amount_fen=int(order.amount_fen)).save()


@on_change("main", "refund")
def list_refund(change: Change) -> None:
    refund = change.new
    if change.event != "INSERT" or not refund.campaign_id:
        return
    fact_id = f"{refund.order_id}#{refund.refund_id}"
    CampaignFact(*CampaignFact.key(refund.campaign_id, refund.occurred_at, refund.member_id, "refund", fact_id),
                 campaign_id=refund.campaign_id, kind="refund", member_id=refund.member_id,
                 occurred_at=refund.occurred_at, order_id=refund.order_id, refund_id=refund.refund_id,
                 amount_fen=int(refund.amount_fen)).save()
