"""Share-for-gift with assists (集赞/助力).

A member opens a share; friends assist it once each, never the sharer, never after the target
or the campaign's end. One assist is one transaction: the assist item (only if absent: once per
friend), the share's count (only while below the target: never past it), and the day counters
that cap one assister and one device or phone (only while below their limits). Concurrent
assists at the target therefore count exactly `target`; the sharer's gift is paid by the stream
handler when the count reaches the target, under one entry id: once.

Friends join through the share's `assist_url` (the campaign landing with the sharer's code as
`ref`): logging in with that code binds a new member to the sharer through the ordinary
referral path. A device or phone whose assists reach the day's limit raises a fraud flag on the
member whose assist reached it (holding that member's referral rewards, like a sign-up flag);
further assists from it are refused that day.
"""
from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from ..campaigns import service as campaigns
from ..core import clock
from ..core.errors import Conflict, NotFound, RateLimited
from ..core.masking import mask_name
from ..fraud.models import FraudFlag
from ..i18n import t
from ..lifecycle import outbox
from ..members.models import Member
from ..referrals import codes
from ..referrals.links import landing
from ..rewards import ledger
from ..store.base import condition_failed, transaction
from ..streams import Change, on_change
from . import rules
from .models import DAY_COUNTER_DAYS, Assist, AssisterDay, DeviceDay, Share
from .running import member_or_401, running_campaign


def open_share(member_id: str, campaign_id: str | None, channel: str, content_id: str | None) -> dict[str, Any]:
    campaign = running_campaign(campaign_id)
    member_or_401(member_id)
    code = codes.code_for(member_id, campaign.campaign_id).code
    share_id = uuid.uuid4().hex
    share = Share(*Share.key(share_id), share_id=share_id, sharer_id=member_id, campaign_id=campaign.campaign_id,
                  campaign_version=int(campaign.version), code=code, channel=channel, content_id=content_id,
                  target=campaigns.rules_of(campaign).assist_target, assists=0, created_at=clock.now_iso())
    try:
        share.save(condition=Share.pk.does_not_exist())
    except PutError as exc:
        # a fresh random id: only this call's own write, resent by botocore after its answer was lost
        if not condition_failed(exc):
            raise
    return {**progress(share, campaign.landing_url), "channel": channel, "content_id": content_id}


def _share(share_id: str) -> Share:
    try:
        return Share.get(*Share.key(share_id), consistent_read=True)
    except Share.DoesNotExist:
        raise NotFound(t("no share with this id"), code="share_not_found") from None


def progress(share: Share, landing_url: str | None = None) -> dict[str, Any]:
    body = {"share_id": share.share_id, "campaign_id": share.campaign_id, "assists": int(share.assists),
            "target": int(share.target), "completed": share.completed, "created_at": share.created_at}
    if landing_url is not None:
        body["assist_url"] = landing(landing_url, None, ref=share.code, share=share.share_id)
    return body


def public_progress(share_id: str) -> dict[str, Any]:
    share = _share(share_id)
    sharer = Member.find(share.sharer_id)
    campaign = campaigns.current(share.campaign_id)
    return {**progress(share, campaign.landing_url if campaign else None),
            "open": campaign is not None and campaigns.is_running(campaign) and not share.completed,
            "sharer": {"display_name": mask_name(sharer.display_name if sharer else "")}}


def _refused(reason: str) -> Conflict:
    if reason == "own_share":
        return Conflict(t("you cannot assist your own share"), code="own_share")
    return Conflict(t("this campaign counts assists from new members only (joined after the share was opened)"),
                    code="not_a_new_member")


def assist(share_id: str, member_id: str) -> dict[str, Any]:
    """Count the caller's assist. A repeat answers the progress with `already_assisted`."""
    share = _share(share_id)
    campaign = campaigns.current(share.campaign_id)
    if campaign is None or not campaigns.is_running(campaign):
        raise Conflict(t("the share's campaign has ended"), code="share_ended")
    assister = member_or_401(member_id, consistent=True)
    rule_set = campaigns.rules_at(share.campaign_id, int(share.campaign_version))
    refusal = rules.share_refusal(share.sharer_id, member_id, assister.created_at, share.created_at,
                                  rule_set.assist_new_members_only)
    if refusal:
        raise _refused(refusal)
    now = clock.now()
    at, day = clock.iso(now), rules.local_day(now, rule_set.time_zone)
    expires = clock.epoch(now) + DAY_COUNTER_DAYS * 86400
    steps: list[tuple[str, int | None]] = []  # what each item of the transaction guards, in order
    try:
        with transaction() as tx:
            tx.save(Assist(*Assist.key(share_id, member_id), share_id=share_id, member_id=member_id, at=at),
                    condition=Assist.pk.does_not_exist())
            steps.append(("already_assisted", None))
            tx.update(share, actions=[Share.assists.add(1)],
                      condition=Share.pk.exists() & (Share.assists < Share.target))
            steps.append(("share_completed", None))
            cap = rule_set.assists_per_assister_per_day
            if cap is not None:
                tx.update(AssisterDay(*AssisterDay.key(member_id, share.campaign_id, day)),
                          actions=[AssisterDay.assists.add(1), AssisterDay.type.set(AssisterDay),
                                   AssisterDay.expires_at.set(expires)],
                          condition=AssisterDay.assists.does_not_exist() | (AssisterDay.assists < cap))
                steps.append(("assist_limit_reached", cap))
            limit = rule_set.assists_per_device_per_day
            for kind, value in (("device", assister.device_id), ("phone", assister.phone_hash)):
                if value:
                    tx.update(DeviceDay(*DeviceDay.key(share.campaign_id, kind, value, day)),
                              actions=[DeviceDay.assists.add(1), DeviceDay.type.set(DeviceDay),
                                       DeviceDay.limit.set(limit), DeviceDay.kind.set(kind),
                                       DeviceDay.campaign_id.set(share.campaign_id),
                                       DeviceDay.last_member_id.set(member_id),
                                       DeviceDay.last_share_id.set(share_id), DeviceDay.expires_at.set(expires)],
                              condition=DeviceDay.assists.does_not_exist() | (DeviceDay.assists < limit))
                    steps.append(("device_assist_limit", limit))
    except TransactWriteError as exc:
        step, limit = _failed_step(exc, steps)
        if step == "already_assisted":
            return {**progress(_share(share_id)), "already_assisted": True}
        if step == "share_completed":
            raise Conflict(t("this share already reached its target"), code="share_completed") from None
        if step == "assist_limit_reached":
            raise RateLimited(t("at most {limit} assists a day in this campaign", limit=limit), code=step,
                              details={"limit": limit}) from None
        if step == "device_assist_limit":
            raise RateLimited(t("this device or phone has assisted too many shares today"), code=step,
                              details={"limit": limit}) from None
        raise
    return {**progress(_share(share_id)), "already_assisted": False}


def _failed_step(exc: TransactWriteError, steps: list[tuple[str, int | None]]) -> tuple[str | None, int | None]:
    """The first guard whose condition refused the transaction (reasons follow its order)."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    for step, reason in zip(steps, reasons):
        if reason is not None and getattr(reason, "code", None) == "ConditionalCheckFailed":
            return step
    return None, None


# -- stream handlers ---------------------------------------------------------------------------

@on_change("main", "share")
def pay_share_goal(change: Change) -> None:
    """The gift, once, when a share's assists reach its target (the version it was opened under)."""
    share, old = change.new, change.old
    if share is None or not share.completed or (old is not None and old.completed):
        return
    rule_set = campaigns.rules_at(share.campaign_id, int(share.campaign_version))
    grant = rules.share_goal_award(rule_set, share.sharer_id, share.share_id, int(share.target))
    if grant is not None:
        ledger.award(grant, share.campaign_id, rule_set)
    outbox.post(share.sharer_id, "share_completed", share.share_id, share.created_at,
                {"share_id": share.share_id, "target": int(share.target),
                 "points": grant.amount if grant else 0})


@on_change("main", "assist_device_day")
def flag_assist_farming(change: Change) -> None:
    """A device or phone reached the day's assist limit: flag the member whose assist did it."""
    counter, old = change.new, change.old
    if counter is None or counter.limit is None or int(counter.assists) < int(counter.limit):
        return
    if old is not None and int(old.assists) >= int(counter.limit):
        return
    member = Member.find(counter.last_member_id, consistent=True)
    if member is None:
        return
    share = Share.get(*Share.key(counter.last_share_id))
    raise_flag(member, share.sharer_id, f"assist_farming_{counter.kind}", clock.now_iso())


def raise_flag(member: Member, sharer_id: str, reason: str, at: str) -> None:
    """Open (or add a reason to) the member's fraud flag; a bound referral is held while it is open."""
    keys = FraudFlag.index_keys("open", at)
    with transaction() as tx:
        tx.update(FraudFlag(*FraudFlag.key(member.member_id)), actions=[
            FraudFlag.reasons.add({reason}),
            FraudFlag.flag_id.set(member.member_id), FraudFlag.referee_id.set(member.member_id),
            FraudFlag.referrer_id.set(FraudFlag.referrer_id | (member.referrer_id or sharer_id)),
            FraudFlag.status.set(FraudFlag.status | "open"), FraudFlag.created_at.set(FraudFlag.created_at | at),
            FraudFlag.gsi1pk.set(FraudFlag.gsi1pk | keys["gsi1pk"]),
            FraudFlag.gsi1sk.set(FraudFlag.gsi1sk | keys["gsi1sk"]), FraudFlag.type.set(FraudFlag),
            *FraudFlag.referrer_key_actions(member.referrer_id or sharer_id, member.member_id, at)])
        if member.referrer_id and member.referral_status in ("signed_up", "converted"):
            tx.update(Member(*Member.key(member.member_id)), actions=[Member.referral_hold.set("fraud_review")])
