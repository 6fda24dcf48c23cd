"""Referral codes: one stable code per member per campaign, vanity codes, resolution.

Uniqueness is a conditional write on the code's own item: a collision retries with a new
code, so a code never has two owners. A member's previous codes keep resolving to them.

A code is created only for a member who exists: the transaction that writes it also checks the
member's profile (no extra read; a token for an unknown member gets 401 and writes nothing).
Only running campaigns hand out codes; unknown and not running answer alike (no oracle).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any, Callable

from pynamodb.exceptions import TransactWriteError

from ..campaigns import service as campaigns
from ..campaigns.models import Campaign
from ..core import clock
from ..core.errors import Conflict, NotFound, Unauthorized, Unprocessable
from ..core.masking import mask_name
from ..i18n import current_locale, t
from ..members.models import Member
from ..store.base import MainItem, cancelled_by_condition, transaction
from . import reserved, rules
from .models import Code, MemberCode

MAX_ATTEMPTS = 8
VANITY_COOLING = timedelta(days=30)


class CodeSpaceExhausted(RuntimeError):
    pass


def resolve(code: str | None) -> Code | None:
    """The code's item, or None for an unknown code (any case accepted; junk costs no read)."""
    canonical = rules.normalize_code(code)
    if canonical is None:
        return None
    try:
        return Code.get(*Code.key(canonical))
    except Code.DoesNotExist:
        return None


def current(member_id: str, campaign_id: str, consistent: bool = True) -> MemberCode | None:
    # Consistent by default: a member who just set a vanity code must see it at once.
    try:
        return MemberCode.get(*MemberCode.key(member_id, campaign_id), consistent_read=consistent)
    except MemberCode.DoesNotExist:
        return None


def _failed(exc: TransactWriteError, position: int) -> bool:
    reasons = getattr(exc, "cancellation_reasons", None) or []
    reason = reasons[position] if position < len(reasons) else None
    return reason is not None and getattr(reason, "code", None) == "ConditionalCheckFailed"


def running_campaign(campaign_id: str | None) -> Campaign:
    """The campaign if it is running now; unknown, ended and not yet started are one 404."""
    campaign = campaigns.current(campaign_id)
    if campaign is None or not campaigns.is_running(campaign):
        raise NotFound(t("no running campaign with this id"), code="campaign_not_found",
                       details={"campaign_id": campaign_id or "default"})
    return campaign


def _unknown_member() -> Unauthorized:
    return Unauthorized(t("this token's member does not exist; log in again"), code="unknown_member")


def _new_code(code: str, member_id: str, campaign_id: str, kind: str, at: str) -> Code:
    pk, sk = Code.key(code)
    return Code(pk, sk, code=code, member_id=member_id, campaign_id=campaign_id, kind=kind, created_at=at,
                **Code.owner_keys(member_id, campaign_id, code))


def code_for(member_id: str, campaign_id: str | None = None,
             generate: Callable[[], str] = rules.generate_code) -> MemberCode:
    """The member's code in the campaign, created on first call."""
    campaign = running_campaign(campaign_id)
    existing = current(member_id, campaign.campaign_id)
    if existing:
        return existing
    for _ in range(MAX_ATTEMPTS):
        at = clock.now_iso()
        code = generate()
        link = MemberCode(*MemberCode.key(member_id, campaign.campaign_id), member_id=member_id,
                          campaign_id=campaign.campaign_id, code=code, updated_at=at)
        try:
            with transaction() as tx:
                tx.condition_check(Member, *Member.key(member_id),  # erased: nobody's code any more
                                   condition=Member.pk.exists() & Member.erased_at.does_not_exist())
                tx.save(_new_code(code, member_id, campaign.campaign_id, "generated", at),
                        condition=Code.pk.does_not_exist())
                tx.save(link, condition=MemberCode.pk.does_not_exist())
            return link
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
            # The reasons follow the transaction's order: [member, code, member's pointer].
            if _failed(exc, 0):
                raise _unknown_member() from None
            if _failed(exc, 2):  # a concurrent first call won: its code is the member's code
                raced = current(member_id, campaign.campaign_id)
                if raced:
                    return raced
            # otherwise the code collided with someone else's: try another
    raise CodeSpaceExhausted(f"no free code after {MAX_ATTEMPTS} attempts")


def set_vanity(member_id: str, raw_code: str, campaign_id: str | None = None) -> MemberCode:
    """One active vanity code per member and campaign. A change keeps the old vanity code the
    member's (it still resolves to them) for VANITY_COOLING, then anyone may claim it; while it
    cools the member cannot change again, so nobody holds more than two names at once."""
    try:
        code = rules.normalize_vanity(raw_code, reserved.extra_words())
    except rules.VanityRejected as exc:
        raise Unprocessable(str(exc), code=f"vanity_{exc.reason}", details={"field": "code"}) from None
    campaign = running_campaign(campaign_id)
    pointer = code_for(member_id, campaign.campaign_id)  # the member exists; the old code keeps resolving
    if pointer.vanity_code == code:
        return pointer  # already theirs: idempotent
    now = clock.now()
    at = clock.iso(now)
    owner = resolve(code)
    mine = owner is not None and owner.member_id == member_id and owner.campaign_id == campaign.campaign_id
    if owner is not None and not mine and not (owner.released_after and owner.released_after < at):
        raise Conflict(t("the code {code} is taken", code=code), code="code_taken")
    if pointer.vanity_code and pointer.vanity_cooling_until and pointer.vanity_cooling_until > at:
        raise Conflict(t("your previous vanity code is still cooling; you can change again after it"),
                       code="vanity_change_cooling", details={"next_change_at": pointer.vanity_cooling_until})
    cooling_until = clock.iso(now + VANITY_COOLING) if pointer.vanity_code else None
    new_pointer = MemberCode(*MemberCode.key(member_id, campaign.campaign_id), member_id=member_id,
                             campaign_id=campaign.campaign_id, code=code, updated_at=at, vanity_code=code,
                             vanity_cooling_until=cooling_until)
    try:
        with transaction() as tx:
            if mine:
                tx.update(owner, actions=[Code.released_after.remove()], condition=Code.member_id == member_id)
            else:
                tx.save(_new_code(code, member_id, campaign.campaign_id, "vanity", at),
                        condition=Code.pk.does_not_exist() | (Code.released_after < at))
            if pointer.vanity_code:
                tx.update(Code(*Code.key(pointer.vanity_code)),
                          actions=[Code.released_after.set(cooling_until)],
                          condition=Code.member_id == member_id)
            tx.save(new_pointer, condition=MemberCode.updated_at == pointer.updated_at)
    except TransactWriteError as exc:
        if cancelled_by_condition(exc):
            raise Conflict(t("the code {code} is taken (or your code changed meanwhile)", code=code),
                           code="code_taken") from None
        raise
    return new_pointer


def lookup(raw_code: str) -> dict[str, Any]:
    """What a landing page shows for a code: `{valid: false}` for an unknown or disabled code or
    a campaign that is not running (one answer for all, so nothing is learnt from probing).
    Reads: the code, then the campaign and the referrer in one BatchGetItem (2 calls)."""
    code = resolve(raw_code)
    if code is None or code.status != "active":
        return {"valid": False}
    found = {type(item): item for item in MainItem.batch_get([Campaign.key(code.campaign_id),
                                                              Member.key(code.member_id)])}
    campaign, member = found.get(Campaign), found.get(Member)
    if campaign is None or not campaigns.is_running(campaign):
        return {"valid": False}
    return {
        "valid": True,
        "code": code.code,
        "campaign": {"campaign_id": campaign.campaign_id, "name": campaign.name, "offer": campaigns.offer_in(campaign, current_locale())},
        "referrer": {"display_name": mask_name(member.display_name if member else "")},
    }
