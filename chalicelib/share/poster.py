"""A share link's poster (海报): 750×1334 PNG, the size WeChat saves to the album.

Background (campaign image or the default), the campaign's name and offer, the advocate's masked
name and the link's QR code on a white card. The fixed texts (`fixed_texts`, catalogue context
"share:poster") and the offer (`offer_i18n`) are in the caller's language. Links never change, so
a poster is a function of the link, the campaign version (name, offer, background URL), the
advocate's masked name and the locale: its ETag hashes exactly those, a matching If-None-Match is
answered 304 without drawing, and drawn posters are kept per instance, keyed by the ETag.
"""
from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..campaigns import service as campaigns
from ..core.masking import mask_name
from ..i18n import DEFAULT_LOCALE, LOCALES, current_locale, t
from ..members.models import Member
from ..referrals import links
from . import background, text

LAYOUT = "2"  # bump when the drawing changes: every ETag changes with it
WIDTH, HEIGHT = background.SIZE
INK, ACCENT, MUTED, WHITE = (51, 51, 51), (232, 65, 44), (136, 136, 136), (255, 255, 255)
CARD = (90, 640, 660, 1250)
QR_BOX = 400
TEXT_WIDTH = CARD[2] - CARD[0] - 40  # the card's texts keep 20 px from its edges
ADVOCATE_WIDTH = 300  # at most, of the masked name
MAX_AGE_SECONDS = 600  # browsers, CDNs and WeChat revalidate (ETag) after this

_posters: OrderedDict[str, bytes] = OrderedDict()
_posters_lock = threading.Lock()
_CACHE_SIZE = 64  # ~100 KB each


@dataclass(frozen=True)
class PosterInputs:
    url: str
    campaign_name: str
    offer: str
    advocate: str  # masked
    background_url: str | None
    landing_url: str
    version_key: str  # campaign id and version
    locale: str = "zh-CN"  # of the fixed texts and the offer

    @property
    def etag(self) -> str:
        parts = (LAYOUT, self.url, self.version_key, self.advocate, self.locale)
        return '"p' + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32] + '"'


def fixed_texts(advocate: str, locale: str) -> tuple[str, str, str]:
    """The poster's fixed texts in `locale`: who invites, the scan hint and the reason to scan
    (catalogue context "share:poster"; the font subset must cover every zh_CN translation, which
    tests/test_posters.py checks against the catalogue)."""
    return (t("{advocate} invites you to join", context="share:poster", locale=locale, advocate=advocate),
            t("Press and hold to scan the QR code", context="share:poster", locale=locale),
            t("Scan to claim your friend-only offer", context="share:poster", locale=locale))


def card_texts(masked_name: str, locale: str) -> list[tuple[str, int]]:
    """The card's three lines with their font sizes: the masked name cut with "…" to what the
    invitation leaves of the card's width, and each line shrunk (to 20 px at least) to fit it, so a
    longer translation never runs off the card."""
    suffix = text.font(34).getlength(fixed_texts("", locale)[0])
    budget = max(60, min(ADVOCATE_WIDTH, int(TEXT_WIDTH - suffix)))
    # A long Latin name masks to a long run of stars: one line, cut with "…"
    advocate = text.wrap(text.drawable(masked_name, missing="*") or "*", 34, budget, 1)[0]
    lines = zip(fixed_texts(advocate, locale), (34, 32, 24))
    return [(line, _fitting(line, size)) for line, size in lines]


def _fitting(line: str, size: int, smallest: int = 20) -> int:
    while size > smallest and text.font(size).getlength(line) > TEXT_WIDTH:
        size -= 2
    return size


def inputs_for(link_id: str) -> PosterInputs:
    """What the link's poster shows, in the request's locale (404 `link_not_found` for an unknown
    link). Reads: the link, the member (GetItem each) and the campaign (through the per-instance
    campaign cache)."""
    locale = current_locale()
    link = links.get(link_id)
    campaign = campaigns.current(link.campaign_id)
    try:
        name = Member.get(*Member.key(link.member_id)).display_name
    except Member.DoesNotExist:
        name = ""
    rules = campaigns.usable_rules(campaign) if campaign is not None else None
    return PosterInputs(
        url=link.url, campaign_name=campaign.name if campaign else "",
        offer=campaigns.offer_in(campaign, locale) if campaign else "",
        advocate=mask_name(name), background_url=rules.poster_background_url if rules else None,
        landing_url=campaign.landing_url if campaign else "",
        version_key=f"{link.campaign_id}#{int(campaign.version) if campaign else 0}",
        locale=locale if locale in LOCALES else DEFAULT_LOCALE)


def png_for(inputs: PosterInputs) -> bytes:
    """The poster, drawn once per ETag per instance."""
    key = inputs.etag
    with _posters_lock:
        if key in _posters:
            _posters.move_to_end(key)
            return _posters[key]
    png = render(inputs)
    with _posters_lock:
        _posters[key] = png
        while len(_posters) > _CACHE_SIZE:
            _posters.popitem(last=False)
    return png


def render(inputs: PosterInputs) -> bytes:
    from PIL import Image, ImageDraw

    image, branded = background.for_poster(inputs.background_url, inputs.landing_url)
    headline = text.wrap(text.drawable(inputs.campaign_name), 44, WIDTH - 120, 2)
    offer = text.wrap(text.drawable(inputs.offer), 64, WIDTH - 100, 3)
    if branded:  # keep white text legible on any photo: a translucent panel behind it
        panel = Image.new("L", image.size, 0)
        ImageDraw.Draw(panel).rounded_rectangle((40, 80, WIDTH - 40, 616), radius=28, fill=96)
        image = Image.composite(Image.new("RGB", image.size, (0, 0, 0)), image, panel)
    draw = ImageDraw.Draw(image)
    y = 120
    for line in headline:
        _centred(draw, line, 44, y, WHITE)
        y += 60
    y = max(y + 40, 260)
    for line in offer:
        _centred(draw, line, 64, y, (255, 236, 160))
        y += 86
    draw.rounded_rectangle(CARD, radius=32, fill=WHITE)
    top = CARD[1]
    (invites, invites_size), (scan_hint, hint_size), (scan_reason, reason_size) = card_texts(
        inputs.advocate, inputs.locale)
    _centred(draw, invites, invites_size, top + 36 + (34 - invites_size) // 2, INK)
    qr = _qr(inputs.url)
    image.paste(qr, ((WIDTH - qr.width) // 2, top + 96 + (QR_BOX - qr.height) // 2))
    _centred(draw, scan_hint, hint_size, top + 96 + QR_BOX + 12 + (32 - hint_size) // 2, ACCENT)
    _centred(draw, scan_reason, reason_size, top + 96 + QR_BOX + 60 + (24 - reason_size) // 2, MUTED)
    return _png(image, photo=branded)


def _centred(draw, line: str, size: int, y: int, fill) -> None:
    face = text.font(size)
    draw.text(((WIDTH - face.getlength(line)) / 2, y), line, font=face, fill=fill)


def _qr(url: str):
    """The QR code as large as fits QR_BOX in whole pixels per module, with its quiet zone."""
    import segno
    from PIL import Image

    code = segno.make(url, error="m", micro=False)
    modules = code.symbol_size(scale=1, border=4)[0]
    out = io.BytesIO()
    code.save(out, kind="png", scale=max(1, QR_BOX // modules), border=4)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def _png(image, photo: bool) -> bytes:
    """The default design compresses well as RGB (~50 KB). A photo background would be 600 KB or
    more, so it is reduced to 256 colours (fast octree: ~110 KB for a full-bleed photo, ~0.1 s)."""
    from PIL import Image

    if photo:
        image = image.quantize(256, method=Image.Quantize.FASTOCTREE)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=6)  # 9 is 2.5× slower for 5 % fewer bytes
    return out.getvalue()


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison: `*`, or any listed tag equal once `W/` is ignored."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def clear_caches() -> None:
    with _posters_lock:
        _posters.clear()
    background.clear_cache()
