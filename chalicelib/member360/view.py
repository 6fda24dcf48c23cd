"""One member's whole story for ops, read with as few calls as the keys allow.

Reads (each one page at most, none a Scan):
1. BatchGetItem: the member, the fraud flag on their own referral and their second-level
   counts (every key is known from the member id alone);
2. BatchGetItem: the two members above them (keys from the member), only if referred;
3. Query gsi1 IDS#<member>: their login identities;
4. Query lsi1: their latest ledger entries; Query M#<member> LOT#: points about to expire
   (only with points available); Query M#<member> CODE#: their codes;
5. Query gsi2 FLAGGED#<member>: the latest flags on their referees;
6. the timeline's sources (timeline.py): one page each at most.
"""
from __future__ import annotations

from typing import Any

from ..core.errors import NotFound
from ..core.masking import mask_secret
from ..core.pagination import PageQuery
from ..fraud import service as fraud
from ..fraud.models import FraudFlag
from ..i18n import t
from ..members import service as members
from ..members.models import Identity, Member, SignupCount, signed_up
from ..points.lots import expiring
from ..referrals import downline
from ..referrals.models import MemberCode
from ..rewards import ledger
from ..rewards.levels import advocate_level
from ..store.base import MainItem
from . import timeline

RECENT_ENTRIES = 10
REFEREE_FLAGS = 20
UPLINE_FIELDS = ["member_id", "display_name", "referral_status", "stage"]
# Providers whose subject is no secret: a `backend` identity's subject is the member id itself.
PLAIN_SUBJECTS = {"backend"}


def build(member_id: str, timeline_limit: int) -> dict[str, Any]:
    first = list(MainItem.batch_get([Member.key(member_id), FraudFlag.key(member_id),
                                     *downline.count_keys(member_id), *SignupCount.keys(member_id)]))
    member = next((i for i in first if isinstance(i, Member)), None)
    if member is None:
        raise NotFound(t("member {member_id!r} does not exist", member_id=member_id), code="member_not_found")
    flag = next((i for i in first if isinstance(i, FraudFlag)), None)
    return {
        "member": profile(member),
        "identities": [identity(i) for i in Identity.of_member(member_id)],
        "referral": referral(member),
        "upline": upline(member),
        "downline": {"level_1": {"signed_up": signed_up(member, first),
                                 "converted": int(member.referrals_converted)},
                     "level_2": downline.second_level(first)},
        "ledger": ledger_summary(member),
        "fraud_flags": fraud_flags(member_id, flag),
        "codes": [{"campaign_id": c.campaign_id, "code": c.code, "vanity_code": c.vanity_code}
                  for c in MemberCode.query(Member.key(member_id)[0], MemberCode.sk.startswith("CODE#"))],
        "timeline": timeline.latest(timeline.Known(member, flag), timeline_limit),
    }


def profile(member: Member) -> dict[str, Any]:
    """The member as ops see them: full name, lifecycle, preferences, purchase counters, and the
    device and phone fingerprints masked (ops compare them; nobody needs them raw)."""
    return {
        **members.public_member(member),
        "source": member.source,
        "stage": member.stage, "stage_since": member.stage_since or member.created_at,
        "tier": {"name": member.tier, "since": member.tier_since or member.created_at,
                 "downgrade_warning": member.tier_warning},
        "advocate_level": advocate_level(member),
        "preferences": members.preferences(member),
        "orders": {"count": int(member.orders), "gmv_fen": int(member.gmv_fen),
                   "first_purchase_at": member.first_purchase_at, "last_purchase_at": member.last_purchase_at},
        "fingerprints": {"device_id": mask_secret(member.device_id), "phone_hash": mask_secret(member.phone_hash)},
    }


def identity(item: Identity) -> dict[str, Any]:
    subject = item.subject if item.provider in PLAIN_SUBJECTS else mask_secret(item.subject)
    return {"provider": item.provider, "subject": subject, "created_at": item.created_at}


def referral(member: Member) -> dict[str, Any] | None:
    if not member.referrer_id:
        return None
    return {"status": member.referral_status, "campaign_id": member.referral_campaign_id,
            "code": member.referral_code, "channel": member.referral_channel,
            "click_linked": member.referral_click_id is not None, "bound_at": member.bound_at,
            "window_ends_at": member.window_ends_at, "converted_at": member.converted_at,
            "converting_order_id": member.converting_order_id, "hold": member.referral_hold}


def upline(member: Member) -> list[dict[str, Any]]:
    """Two levels up: the referrer and theirs, as stored on the member (one batch read)."""
    chain = [(level, ancestor) for level, ancestor in ((1, member.referrer_id), (2, member.grandparent_id))
             if ancestor]
    if not chain:
        return []
    found = {m.member_id: m for m in Member.batch_get([Member.key(a) for _, a in chain],
                                                      attributes_to_get=UPLINE_FIELDS)}
    rows = []
    for level, ancestor in chain:
        m = found.get(ancestor)
        rows.append({"level": level, "member_id": ancestor, "display_name": m.display_name if m else None,
                     "referral_status": m.referral_status if m else None, "stage": m.stage if m else None})
    return rows


def ledger_summary(member: Member) -> dict[str, Any]:
    """The balances (always the sum of the entries, DESIGN.md) and the latest entries."""
    available = int(member.points_available)
    return {"balances": {"available": available, "pending": int(member.points_pending)},
            "expiring": expiring(member) if available > 0 else None,
            "recent": ledger.list_for(member.member_id, PageQuery(limit=RECENT_ENTRIES))["items"]}


def fraud_flags(member_id: str, own: FraudFlag | None) -> list[dict[str, Any]]:
    """The flag on the member's own referral, then the latest ones on their referees."""
    flags = [{"role": "referee", **fraud.render(own)}] if own else []
    return flags + [{"role": "referrer", **fraud.render(f)} for f in FraudFlag.on_referees_of(member_id, REFEREE_FLAGS)]
