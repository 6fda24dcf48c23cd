"""Member endpoints: login, my profile, my notifications."""
from __future__ import annotations

from typing import Any

from .. import i18n
from ..core.auth import MEMBER, issue_token
from ..core.config import settings
from ..core.http import Req, Routes
from ..core.pagination import PageQuery
from ..lifecycle import outbox
from . import service
from .schemas import LoginIn, PreferencesIn

routes = Routes(__name__)


@routes.post("/v1/auth/login", body=LoginIn, rate_limit="login", idempotent=False,
             summary="Log in (first login creates the member and binds the referral)")
def login(req: Req) -> Any:
    body: LoginIn = req.body
    provider, subject = service.identify(body)
    result = service.find_or_create(provider, subject, display_name=body.display_name, device_id=body.device_id,
                                    referral=body.referral)
    return {
        "access_token": issue_token(result.member.member_id, MEMBER),
        "token_type": "Bearer",
        "expires_in": settings().token_ttl_seconds,
        "member": service.public_member(result.member),
        "created": result.created,
        "attribution": result.attribution,
    }


@routes.get("/v1/members/me", roles=(MEMBER,), summary="My profile, points, tier, referrals")
def me(req: Req) -> Any:
    member, signed_up = service.get_with_signups(req.member_id)
    referrer = service.Member.find(member.referrer_id) if member.referrer_id else None
    return service.profile(member, referrer, signed_up)


@routes.put("/v1/members/me/preferences", roles=(MEMBER,), body=PreferencesIn,
            summary="My locale, channels, marketing opt-in and birthday (MM-DD, set once)")
def my_preferences(req: Req) -> Any:
    return service.set_preferences(req.member_id, req.body)


@routes.get("/v1/members/me/notifications", roles=(MEMBER,), query=PageQuery,
            summary="My outbox messages, newest first")
def my_notifications(req: Req) -> Any:
    # Texts are rendered now (lifecycle/texts.py): in Accept-Language's language, else the member's preference.
    if not i18n.asked_by_header():
        i18n.prefer(service.locale_of(req.member_id))
    return outbox.list_for(req.member_id, req.query)


@routes.get("/v1/members/me/referrals", roles=(MEMBER,), query=PageQuery,
            summary="My direct referees (masked), newest first")
def my_referrals(req: Req) -> Any:
    return service.list_referrals(req.member_id, req.query)
