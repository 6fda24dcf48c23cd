"""Member accounts: login (the sign-up on first call), lookup, the profile view."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError

from ..core import clock
from ..core.config import settings
from ..core.errors import Conflict, NotFound, Unprocessable
from ..core.masking import mask_name
from ..i18n import t
from ..store.base import MainItem, cancelled_by_condition, condition_failed, transaction
from . import wechat
from .models import DownlineEntry, Identity, Member, with_signups
from .schemas import LoginIn


@dataclass
class LoginResult:
    member: Member
    created: bool
    attribution: dict[str, Any] | None = None


def new_member_id(provider: str, subject: str) -> str:
    """A random id, never derived from the identity: once a member's personal data is erased, the
    id kept with their amounts leads back to no openid (an id hashed from it would). Two concurrent
    first logins still make one member: the identity item is written only if absent. (The
    arguments let the test suite make ids reproducible: tests/conftest.py.)"""
    return "m_" + secrets.token_hex(10)


def identify(body: LoginIn) -> tuple[str, str]:
    if body.provider == "dev":
        if not settings().dev_login_enabled:
            raise Unprocessable(t("the dev login provider is not enabled on this stage"), code="provider_not_enabled")
        return "dev", body.openid or ""
    session = wechat.code_to_session(body.code or "")
    return "wechat", session["openid"]


def find_or_create(provider: str, subject: str, display_name: str | None = None,
                   device_id: str | None = None, member_id: str | None = None, source: str = "login",
                   at: str | None = None, referral: Any = None, phone_hash: str | None = None) -> LoginResult:
    """The member behind an identity, created (with the identity) on first sight. A referral is
    bound in the same transaction that creates the member, or not at all."""
    from ..referrals import attribution

    pk, sk = Identity.key(provider, subject)
    # With a referral, the code and the click are read with the identity: one round trip
    prefetched = attribution.prefetch(referral, extra=[(Identity, (pk, sk))]) if referral else None
    for consistent in (False, True):
        try:
            if prefetched is not None and not consistent:
                identity = prefetched.get((Identity, (pk, sk)))
                if identity is None:
                    break
            else:
                identity = Identity.get(pk, sk, consistent_read=consistent)
            existing = Member.find(identity.member_id, consistent=consistent)
        except Identity.DoesNotExist:
            break
        if existing is not None and not existing.erased_at:
            return LoginResult(existing, False, attribution.refusal_for_existing(existing, referral, prefetched))
        # An erasure deleted the identity with the tombstone, in one transaction: a consistent
        # read of the identity now finds it gone, and this login makes a new, unlinked member.
    at = at or clock.now_iso()
    member_id = member_id or new_member_id(provider, subject)
    binding = attribution.plan(member_id, referral, at, device_id, phone_hash, prefetched) if referral else None
    member = Member.new(member_id, at, display_name=display_name or "", device_id=device_id,
                        phone_hash=phone_hash, source=source)
    try:
        with transaction() as tx:
            tx.save(Identity.new(provider, subject, member_id, at), condition=Identity.pk.does_not_exist())
            if isinstance(binding, attribution.Binding):
                binding.contribute(member, tx)
            tx.save(member, condition=Member.pk.does_not_exist())
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
        # Someone created it first (a concurrent first login or sign-up of the same identity).
        try:
            winner = Identity.get(pk, sk, consistent_read=True)
        except Identity.DoesNotExist:
            imported = Member.find(member_id, consistent=True) if provider == "backend" else None
            if imported is not None and imported.source == "import" and subject == member_id:
                # the brand's own id, imported (imports/members.py writes no backend identity)
                return LoginResult(imported, False, attribution.refusal_for_existing(imported, referral))
            raise Conflict(t("member id {member_id!r} belongs to another identity", member_id=member_id),
                           code="member_id_taken") from None
        existing = _member(winner.member_id, consistent=True)
        return LoginResult(existing, False, attribution.refusal_for_existing(existing, referral))
    outcome = binding.outcome() if isinstance(binding, attribution.Binding) else binding
    return LoginResult(member, True, outcome)


def _member(member_id: str, consistent: bool = False) -> Member:
    return _profile_of(member_id, Member.find(member_id, consistent=consistent))


def _profile_of(member_id: str, member: Member | None) -> Member:
    if member is None or member.erased_at:  # an erased member is nobody's profile any more
        raise NotFound(t("member {member_id!r} does not exist", member_id=member_id), code="member_not_found")
    return member


def get(member_id: str) -> Member:
    return _member(member_id)


def get_with_signups(member_id: str) -> tuple[Member, int]:
    """The member (as `get`) and the friends signed up through them (models.signed_up)."""
    member, signed_up = with_signups(member_id)
    return _profile_of(member_id, member), signed_up


def locale_of(member_id: str) -> str | None:
    """The member's language preference (one small read; None for an unknown member)."""
    try:
        return Member.get(*Member.key(member_id), attributes_to_get=["locale"]).locale
    except Member.DoesNotExist:
        return None


def public_member(member: Member) -> dict[str, Any]:
    """The member as the member sees themself."""
    return {"member_id": member.member_id, "display_name": member.display_name, "created_at": member.created_at}


def preferences(member: Member) -> dict[str, Any]:
    return {"locale": member.locale or "zh-CN", "channels": list(member.channels or []),
            "marketing_opt_in": bool(member.marketing_opt_in), "birthday": member.birthday}


def set_preferences(member_id: str, body: Any) -> dict[str, Any]:
    """Change what the body names; the birthday only once (a gift a year must not be gamed)."""
    member = _member(member_id, consistent=True)
    if body.birthday and member.birthday and body.birthday != member.birthday:
        raise Conflict(t("the birthday is already set and cannot change"), code="birthday_already_set",
                       details={"birthday": member.birthday})
    actions = []
    for name in ("locale", "channels", "marketing_opt_in"):
        value = getattr(body, name)
        if value is not None:
            actions.append(getattr(Member, name).set(value))
    condition = Member.pk.exists() & Member.erased_at.does_not_exist()  # never re-fill an erased profile
    if body.birthday and not member.birthday:
        actions.append(Member.birthday.set(body.birthday))
        condition &= Member.birthday.does_not_exist()
    if actions:
        try:
            member.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if condition_failed(exc):  # set concurrently: answer as the stored value says
                return set_preferences(member_id, body)
            raise
    return preferences(member)


def profile(member: Member, referrer: Member | None, signed_up: int) -> dict[str, Any]:
    from ..lifecycle.service import standing
    from ..points.lots import expiring
    from ..rewards.levels import advocate_level  # the advocate level is the rewards rules'

    return {
        **public_member(member),
        "tier": standing(member),
        "stage": member.stage,
        "stage_since": member.stage_since or member.created_at,
        "points": {"available": int(member.points_available), "pending": int(member.points_pending),
                   "expiring": expiring(member) if int(member.points_available) > 0 else None},
        "preferences": preferences(member),
        "advocate": {"level": advocate_level(member),
                     "referrals": {"signed_up": signed_up,
                                   "converted": int(member.referrals_converted)}},
        "referred_by": ({"display_name": mask_name(referrer.display_name), "since": member.bound_at}
                        if referrer else None),
        "orders": {"count": int(member.orders), "gmv_fen": int(member.gmv_fen)},
    }


def render_referee(referee: Member) -> dict[str, Any]:
    return {"display_name": mask_name(referee.display_name), "status": referee.referral_status,
            "signed_up_at": referee.bound_at, "converted_at": referee.converted_at}


def list_referrals(member_id: str, page_query) -> dict[str, Any]:
    from ..core.pagination import page

    # MainItem's index: a Member's own would filter the hits to members (older bindings) only
    return page(MainItem.by_gsi1.query, page_query, f"referrals:{member_id}", render_referee, resolve=referees,
                hash_key=f"REF#{member_id}", scan_index_forward=False)


def referees(hits: list[Any]) -> list[Member]:
    """The members behind a page of downline hits, in its order. A `DownlineEntry` names its
    member (one BatchGet for the page, consistent: written in one transaction with the entry the
    index showed); a member bound before entries existed is its own hit."""
    wanted = [Member.key(hit.member_id) for hit in hits if isinstance(hit, DownlineEntry)]
    found = {m.member_id: m for m in Member.batch_get(wanted, consistent_read=True)} if wanted else {}
    return [hit if isinstance(hit, Member) else found[hit.member_id] for hit in hits
            if isinstance(hit, Member) or hit.member_id in found]
