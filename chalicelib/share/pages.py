"""What a shared link shows besides the bare redirect (docs/share-pages.md):

- the **preview** a link-preview crawler reads to draw the card (Open Graph / Twitter tags from
  the campaign's share texts for the link's channel, with the advocate's masked name). Reads: the
  code and link (1 call, clicks.resolve), the advocate (1 GetItem). Writes: none.
- the campaign's **hosted landing page** (rule `landing_page: hosted`): answered by `/r/{code}`
  itself, after clicks.record wrote the one Click item. Reads: the advocate (1 GetItem) on top
  of the click's own.

Both are server-rendered by Jinja2 (autoescaped) in the request's language, with CSS, JS and
the default share image served by this service under /static/ (a strict Content-Security-Policy
allows nothing else).
"""
from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chalice import Response

from .. import i18n
from ..i18n import t
from ..campaigns import service as campaigns
from ..core import clock
from ..core.config import settings
from ..core.http import public_base_url
from ..core.masking import mask_name
from ..members.models import Member
from ..referrals import clicks, rules as code_rules
from ..referrals.links import landing, share_url
from .texts import share_texts

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# What /static/ serves: nothing else exists there (no path from the URL ever reaches the disk).
ASSET_TYPES = {"landing.css": "text/css; charset=utf-8", "landing.js": "text/javascript; charset=utf-8",
               "share.png": "image/png"}
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PREVIEW_MAX_AGE = 300  # a crawler may reuse a card for 5 minutes; the campaign cache is 30 s anyway


# -- templates and assets -------------------------------------------------------------------

@lru_cache(maxsize=None)
def _env(locale: str):
    import jinja2  # deferred: only these pages need it (cold start of every other route)

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(HERE / "templates")), autoescape=True,
                             extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(locale), newstyle=True)
    env.globals["asset"] = asset_url
    return env


def _render(template: str, **values) -> str:
    locale = i18n.current_locale()
    return _env(locale).get_template(template).render(lang=locale, **values)


@lru_cache(maxsize=None)
def asset(name: str) -> tuple[bytes, str, str] | None:
    """(body, content type, version) of a static asset, None for any other name."""
    if name not in ASSET_TYPES:
        return None
    body = (STATIC / name).read_bytes()
    return body, ASSET_TYPES[name], hashlib.sha256(body).hexdigest()[:10]


def asset_url(name: str) -> str:
    """Relative to /r/{code} (so the API Gateway stage prefix or a custom domain both work), with
    the content's hash: the asset may then be cached for a year."""
    found = asset(name)
    assert found is not None, name
    return f"../static/{name}?v={found[2]}"


def static_response(name: str) -> Response | None:
    found = asset(name)
    if found is None:
        return None
    body, content_type, _ = found
    text = content_type.startswith("text/")  # text goes through API Gateway as is; images as binary
    return Response(body=body.decode() if text else body, status_code=200, headers={
        "Content-Type": content_type, "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff"})


def default_image_url() -> str:
    found = asset("share.png")
    assert found is not None
    return f"{public_base_url()}/static/share.png?v={found[2]}"


# -- the preview crawlers read --------------------------------------------------------------

def preview(raw_code: str, link_id: str | None, if_none_match: str | None = None, head: bool = False) -> Response:
    """200 text/html with the card's tags (304 when the crawler's ETag still matches). An
    unknown, disabled or ended code gets a generic card that names no one. Writes nothing."""
    target = clicks.resolve(raw_code, link_id)
    if target is None:
        code = code_rules.normalize_code(raw_code)
        values = {"title": t("A gift from a friend", context="share:preview"),
                  "description": t("Open the link to see the offer.", context="share:preview"),
                  "url": share_url(code) if code else public_base_url(), "image": default_image_url(),
                  "continue_url": settings().default_landing_url}
    else:
        code = target.code.code
        url = share_url(code, target.link.link_id if target.link else None)
        texts = share_texts(target.channel, offer=target.campaign.offer, inviter=_inviter(target.code.member_id),
                            code=code, url=url)
        image = campaigns.rules_of(target.campaign).share_image_url or default_image_url()
        landing_path = target.link.landing_path if target.link else None
        values = {"title": texts["title"], "description": texts["description"], "url": url, "image": image,
                  "continue_url": landing(target.campaign.landing_url, landing_path, ref=code)}
    body = _render("preview.html", **values)
    etag = '"' + hashlib.sha256(body.encode()).hexdigest()[:20] + '"'
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CSP, "ETag": etag,
               # People get a redirect at this same URL: a shared cache must key on the agent.
               "Cache-Control": f"public, max-age={PREVIEW_MAX_AGE}", "Vary": "User-Agent",
               "X-Content-Type-Options": "nosniff"}
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Response(body="", status_code=304, headers=headers)
    return Response(body="" if head else body, status_code=200, headers=headers)


# -- the hosted landing page ------------------------------------------------------------------

def is_hosted(target: clicks.Target | None) -> bool:
    return target is not None and campaigns.rules_of(target.campaign).landing_page == "hosted"


def landing_page(outcome: clicks.Outcome, head: bool = False) -> Response:
    """The campaign's own page for a person who followed the link; its buttons carry `ref` and
    (when the visit was recorded) `click`, like the redirect's Location."""
    target = outcome.target
    assert target is not None
    code = target.code.code
    click_id = outcome.click.click_id if outcome.click else None
    shop_url = outcome.location
    configured = settings().mini_program_link
    mini_url = mini_program_url(configured, ref=code, click=click_id) if configured else shop_url
    rules = campaigns.rules_of(target.campaign)
    body = _render("landing.html", inviter=_inviter(target.code.member_id), offer=target.campaign.offer,
                   name=target.campaign.name, code=code, ends=ends_text(target.campaign.ends_at, rules.time_zone),
                   mini_url=mini_url, shop_url=shop_url)
    return Response(body="" if head else body, status_code=200, headers={
        "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": CSP,
        "Cache-Control": "no-store",  # each visit is its own click (and click id)
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin"})


def _inviter(member_id: str) -> str:
    try:
        return mask_name(Member.get(*Member.key(member_id)).display_name)
    except Member.DoesNotExist:
        return mask_name("")


def ends_text(ends_at: str | None, time_zone: str, locale: str | None = None) -> str | None:
    """The campaign's end in its own time zone, as people there write dates.

    >>> ends_text("2026-12-31T15:59:00Z", "Asia/Shanghai", "zh-CN"), ends_text("2026-12-31T15:59:00Z", "Asia/Shanghai", "en")
    ('2026年12月31日 23:59', '31 Dec 2026, 23:59')
    """
    if not ends_at:
        return None
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("Asia/Shanghai")
    try:
        moment: datetime = clock.parse(ends_at).astimezone(zone)
    except (ValueError, OverflowError):
        return None
    if (locale or i18n.current_locale()) == "zh-CN":
        return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"
    return f"{moment.day} {moment:%b %Y, %H:%M}"


def mini_program_url(configured: str, **params: str | None) -> str:
    """The configured mini-program link with the referral added as the mini-program expects:
    a `weixin://dl/business/` scheme carries it URL-encoded in its `query` parameter (the page's
    onLoad options); an https URL link gets plain query parameters.

    >>> mini_program_url("weixin://dl/business/?appid=wx123&path=pages/index", ref="ABC", click="k1")
    'weixin://dl/business/?appid=wx123&path=pages/index&query=ref%3DABC%26click%3Dk1'
    >>> mini_program_url("https://wxaurl.cn/abc?x=1", ref="ABC", click=None)
    'https://wxaurl.cn/abc?x=1&ref=ABC'
    """
    added = [(k, v) for k, v in params.items() if v]
    parts = urlsplit(configured)
    if parts.scheme == "weixin":
        kept, inner = [], []
        for piece in filter(None, parts.query.split("&")):
            name, _, value = piece.partition("=")
            if name == "query":
                inner = [(k, v) for k, v in parse_qsl(unquote(value)) if k not in params]
            else:
                kept.append(piece)
        kept.append("query=" + quote(urlencode(inner + added), safe=""))
        return urlunsplit(parts._replace(query="&".join(kept)))
    kept_pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    return urlunsplit(parts._replace(query=urlencode(kept_pairs + added)))
