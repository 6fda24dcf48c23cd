"""Share links (one per member, campaign and channel tag) and their QR codes.

A link's URL carries the code and the link id (`/r/{code}?l={link_id}`), so a click needs no
extra lookup to know the code, and the link's channel and landing path are read in the same
BatchGetItem as the code. Links never change after creation, so QR images cache for ever.
"""
from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pynamodb.exceptions import TransactWriteError

from ..core import clock
from ..core.errors import NotFound, RateLimited
from ..core.http import public_base_url
from ..i18n import t
from ..store.base import cancelled_by_condition, transaction
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


def create(member_id: str, channel: str, campaign_id: str | None = None, landing_path: str | None = None,
           request_key: str | None = None) -> Link:
    """A new link, counted against today's quota in the same transaction as its write, so the
    quota counts links, not attempts. A request re-run with its `Idempotency-Key` (its first run
    died before answering) makes the same link id and gets that link back, uncounted; a
    transaction botocore re-sent after its answer was lost finds its own link written."""
    member_code = codes.code_for(member_id, campaign_id)
    link_id = _link_id(member_id, request_key, channel, campaign_id, landing_path)
    pk, sk = Link.key(link_id)
    at = clock.now_iso()
    link = Link(pk, sk, link_id=link_id, member_id=member_id, campaign_id=member_code.campaign_id,
                code=member_code.code, channel=channel, landing_path=landing_path,
                url=share_url(member_code.code, link_id), created_at=at, **Link.owner_keys(member_id, at, link_id))
    now = clock.epoch()
    day_ends = (now // 86400 + 1) * 86400
    quota = LinkQuota(*LinkQuota.key(member_id, clock.iso(clock.now())[:10]))
    try:
        with transaction() as tx:
            tx.save(link, condition=Link.pk.does_not_exist())
            tx.update(quota, actions=[LinkQuota.links.add(1), LinkQuota.expires_at.set(day_ends + 86400)],
                      condition=LinkQuota.links.does_not_exist() | (LinkQuota.links < LINKS_PER_DAY))
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
        existing = _own(link_id, member_id)
        if existing is not None:
            return existing  # written already: by this request's first run, or this very call
        raise RateLimited(t("at most {links_per_day} links a day; reuse one you made", links_per_day=LINKS_PER_DAY),
                          code="link_limit_reached",
                          details={"links_per_day": LINKS_PER_DAY},
                          headers={"Retry-After": str(max(1, day_ends - now))}) from None
    return link


def _link_id(member_id: str, request_key: str | None, *body: str | None) -> str:
    """12 URL-safe characters: random, or derived from the request's Idempotency-Key and body
    (a re-run of the same request makes the same link)."""
    if not request_key:
        return secrets.token_urlsafe(9)  # 72 random bits
    digest = hashlib.sha256("\0".join([member_id, request_key, *(b or "" for b in body)]).encode()).digest()
    return base64.urlsafe_b64encode(digest[:9]).decode()


def _own(link_id: str, member_id: str) -> Link | None:
    try:
        link = Link.get(*Link.key(link_id), consistent_read=True)
    except Link.DoesNotExist:
        return None
    return link if link.member_id == member_id else None


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
