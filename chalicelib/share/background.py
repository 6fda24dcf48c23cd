"""Poster backgrounds: a clean default drawn in code, or the campaign's own image.

A campaign's `rules.poster_background_url` is checked when the campaign is written
(`url_problem`: https, on the landing page's host or a host in POSTER_IMAGE_HOSTS) and again
before every fetch (the configuration may have changed since). The fetch is guarded: no
redirects, a short timeout, a byte cap, PNG/JPEG/WebP only, a pixel cap checked from the header
before decoding (decompression bombs), and outside the local stage only public IP addresses.
Whatever goes wrong, the poster gets the default background: a brand's broken image never fails
a poster. Results, failures included, are kept per URL for a few minutes per instance.
"""
from __future__ import annotations

import io
import ipaddress
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from functools import lru_cache
from urllib.parse import urlsplit

from ..core.config import settings
from ..core.logs import get_logger

log = get_logger("share.background")

SIZE = (750, 1334)
TIMEOUT_SECONDS = 2.0
MAX_BYTES = 3 * 1024 * 1024
MAX_PIXELS = 24_000_000  # 6000 × 4000: any real photo; a bomb declares far more
FORMATS = ("PNG", "JPEG", "WEBP")
KEEP_SECONDS = 300  # a fetched (or failed) background is reused this long per instance
TOP, BOTTOM = (232, 65, 44), (247, 162, 59)  # the default's red-to-orange

_cache: OrderedDict[str, tuple[float, object]] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 4  # decoded 750×1334 RGB images, ~3 MB each


def allowed_hosts(landing_url: str) -> set[str]:
    configured = {h.strip().lower() for h in settings().poster_image_hosts.split(",") if h.strip()}
    return configured | {(urlsplit(landing_url).hostname or "").lower()} - {""}


def url_problem(url: str, landing_url: str) -> str | None:
    """Why a background image URL is refused (None: fine)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return "is not a URL"
    schemes = ("https", "http") if settings().stage == "local" else ("https",)
    if parts.scheme not in schemes:
        return "must be an https URL"
    if not parts.hostname or parts.username or parts.password:
        return "must be a plain URL with a host"
    if parts.hostname.lower() not in allowed_hosts(landing_url):
        return "must be on the landing page's host or a host listed in POSTER_IMAGE_HOSTS"
    return None


def default():
    """A vertical red-to-orange gradient with two soft light discs: clean, and compresses well
    (256 colours would band it visibly, so it stays RGB). Drawn once per instance."""
    return _default().copy()


@lru_cache(maxsize=1)
def _default():
    from PIL import Image, ImageDraw

    ramp = Image.linear_gradient("L").resize(SIZE)
    image = Image.composite(Image.new("RGB", SIZE, BOTTOM), Image.new("RGB", SIZE, TOP), ramp)
    glow = Image.new("L", SIZE, 0)
    draw = ImageDraw.Draw(glow)
    draw.ellipse((-220, -260, 420, 380), fill=28)
    draw.ellipse((470, 380, 1050, 960), fill=20)
    return Image.composite(Image.new("RGB", SIZE, (255, 255, 255)), image, glow)


def for_poster(url: str | None, landing_url: str):
    """(image to draw on, whether it is the campaign's own): its image fitted to the poster, or
    the default."""
    if not url:
        return default(), False
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(url)
        if hit is not None and now - hit[0] < KEEP_SECONDS:
            _cache.move_to_end(url)
            return (hit[1].copy(), True) if hit[1] is not None else (default(), False)
    image = None
    problem = url_problem(url, landing_url)
    if problem is None:
        try:
            image = _fit(fetch(url))
        except Exception as exc:  # noqa: BLE001  (any failure means "use the default", never a 500)
            problem = f"{type(exc).__name__}: {exc}"
    if problem is not None:
        log.warning("poster background not used", extra={"url": url[:200], "problem": problem[:200]})
    with _cache_lock:
        _cache[url] = (now, image)
        _cache.move_to_end(url)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return (image.copy(), True) if image is not None else (default(), False)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 3xx is then an error: a redirect could lead off the allowed hosts


@lru_cache(maxsize=1)
def _opener() -> urllib.request.OpenerDirector:
    """Built on the first fetch: its HTTPS handler loads the system's CA certificates (~50 ms),
    which an import of the app (every function's cold start) should not pay."""
    return urllib.request.build_opener(_NoRedirects)


def _check_address(host: str) -> None:
    if settings().stage == "local":
        return  # the local stage serves its own test images from 127.0.0.1
    for *_, address in socket.getaddrinfo(host, None):
        if not ipaddress.ip_address(address[0]).is_global:
            raise ValueError(f"{host} resolves to a non-public address")


def fetch(url: str) -> bytes:
    """The image's bytes, at most MAX_BYTES, within TIMEOUT_SECONDS per read; raises otherwise."""
    _check_address(urlsplit(url).hostname or "")
    request = urllib.request.Request(url, headers={"User-Agent": "referral-poster/1", "Accept": "image/*"})
    with _opener().open(request, timeout=TIMEOUT_SECONDS) as response:
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        if int(response.headers.get("Content-Length") or 0) > MAX_BYTES:
            raise ValueError("image larger than the cap")
        body = response.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise ValueError("image larger than the cap")
    return body


def _fit(body: bytes):
    """Decoded, upright, cropped to the poster's shape and scaled to it."""
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(body), formats=FORMATS)  # reads the header only
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ValueError(f"image of {width}×{height} pixels is over the cap")
    image.draft("RGB", SIZE)  # JPEG: decode at the smallest scale still at least the poster's size
    image = ImageOps.exif_transpose(image).convert("RGB")
    return ImageOps.fit(image, SIZE, Image.Resampling.LANCZOS)


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
