"""Share links (one per member, campaign and channel tag) and their QR codes.

A link's URL carries the code and the link id (`/r/{code}?l={link_id}`), so a click needs no
extra lookup to know the code, and the link's channel and landing path are read in the same
BatchGetItem as the code. Links never change after creation, so QR images cache for ever.
"""
from __future__ import annotations

import io
import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pynamodb.exceptions import PutError, UpdateError

from ..core import clock
from ..core.errors import NotFound, RateLimited
from ..core.http import public_base_url
from ..i18n import t
from ..store.base import condition_failed
from . import codes
from .models import Link, LinkQuota

LINKS_PER_DAY = 20  # per member, UTC day: plenty for sharing, not for mass-producing links
CHANNELS = ("wechat_friend", "wechat_moments", "weibo", "xiaohongshu", "douyin", "qq", "sms", "poster", "other")
LINK_ID = re.compile(r"^[A-Za-z0-9_-]{8,32}$")
# A path on the campaign's landing site: no scheme, no host, no `//` (which a browser reads as
# a host), no backslash — so a link can never send visitors off the brand's site.
LANDING_PATH = re.compile(r"^/(?!/)[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$")


def share_url(code: str, link_id: str | None = None) -> str:
    """`{PUBLIC_BASE_URL}/r/{code}`, with `?l={link_id}` for a share link."""
    base = f"{public_base_url()}/r/{code}"
    return f"{base}?{urlencode({'l': link_id})}" if link_id else base


def qr_url(link_id: str) -> str:
    return f"{public_base_url()}/v1/links/{link_id}/qr.png"


def landing(campaign_url: str, landing_path: str | None, **params: str) -> str:
    """The campaign's landing URL (or `landing_path` on the same site) with `params` added.

    >>> landing("https://shop.example.com/welcome?utm=x", "/p/1", ref="ABC", click="k")
    'https://shop.example.com/p/1?ref=ABC&click=k'
    >>> landing("https://shop.example.com/welcome?utm=x", None, ref="ABC")
    'https://shop.example.com/welcome?utm=x&ref=ABC'
    """
    parts = urlsplit(campaign_url)
    if landing_path:
        path, _, query = landing_path.partition("?")
        parts = parts._replace(path=path, query=query)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode(kept + [(k, v) for k, v in params.items() if v])))


def create(member_id: str, channel: str, campaign_id: str | None = None, landing_path: str | None = None) -> Link:
    member_code = codes.code_for(member_id, campaign_id)
    _take_quota(member_id)
    link_id = secrets.token_urlsafe(9)  # 12 characters, 72 random bits
    pk, sk = Link.key(link_id)
    at = clock.now_iso()
    link = Link(pk, sk, link_id=link_id, member_id=member_id, campaign_id=member_code.campaign_id,
                code=member_code.code, channel=channel, landing_path=landing_path,
                url=share_url(member_code.code, link_id), created_at=at, **Link.owner_keys(member_id, at, link_id))
    try:
        link.save(condition=Link.pk.does_not_exist())
    except PutError as exc:
        # a fresh random id: only this call's own write, resent by botocore after its answer was lost
        if not condition_failed(exc):
            raise
    return link


def _take_quota(member_id: str) -> None:
    """One of the member's LINKS_PER_DAY for today, or 429 until the next UTC day."""
    now = clock.epoch()
    day_ends = (now // 86400 + 1) * 86400
    quota = LinkQuota(*LinkQuota.key(member_id, clock.iso(clock.now())[:10]))
    try:
        quota.update(actions=[LinkQuota.links.add(1), LinkQuota.expires_at.set(day_ends + 86400)],
                     condition=LinkQuota.links.does_not_exist() | (LinkQuota.links < LINKS_PER_DAY))
    except UpdateError as exc:
        if not condition_failed(exc):
            raise
        raise RateLimited(t("at most {links_per_day} links a day; reuse one you made", links_per_day=LINKS_PER_DAY),
                          code="link_limit_reached",
                          details={"links_per_day": LINKS_PER_DAY},
                          headers={"Retry-After": str(max(1, day_ends - now))}) from None


def get(link_id: str) -> Link:
    if not LINK_ID.fullmatch(link_id or ""):
        raise NotFound(t("no such link"), code="link_not_found")
    try:
        return Link.get(*Link.key(link_id))
    except Link.DoesNotExist:
        raise NotFound(t("no such link"), code="link_not_found") from None


def qr_png(url: str, scale: int = 8) -> bytes:
    """The URL as a QR code PNG. Error level M survives a little poster damage; the 4-module
    quiet zone is what scanners expect."""
    import segno  # deferred: only this endpoint needs it (cold start)

    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def public(link: Link) -> dict:
    return {"link_id": link.link_id, "code": link.code, "url": link.url, "channel": link.channel,
            "campaign_id": link.campaign_id, "landing_path": link.landing_path,
            "qr_png_url": qr_url(link.link_id), "created_at": link.created_at}
