"""Share posters: GET /v1/links/{link_id}/poster.png (both backends; no network: campaign
backgrounds come from a local HTTP server thread)."""
from __future__ import annotations

import io
import re
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import zxingcpp
from PIL import Image, ImageDraw

from chalicelib.campaigns.rules import default_campaign
from chalicelib.core.masking import mask_name
from chalicelib.share import background, poster, text
from tests.flows import OPS, login
from tools.poster_font import SURNAMES

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREEN = (20, 160, 60)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _bomb_header() -> bytes:
    """A PNG that claims 30,000 × 30,000 pixels (a decompression bomb's header), no data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return PNG_SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")


IMAGES = {
    "/green.jpg": ("image/jpeg", None),  # filled in below (JPEG needs Pillow at import time: fine)
    "/broken.png": ("image/png", b"this is not an image"),
    "/bomb.png": ("image/png", _bomb_header()),
    "/page.html": ("text/html", b"<html>not an image</html>"),
}
_green = io.BytesIO()
Image.new("RGB", (900, 1600), GREEN).save(_green, format="JPEG", quality=90)
IMAGES["/green.jpg"] = ("image/jpeg", _green.getvalue())


class _Images(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.server.requests.append(self.path)
        if self.path == "/moved.jpg":
            self.send_response(302)
            self.send_header("Location", "/green.jpg")
            self.end_headers()
            return
        kind, body = IMAGES.get(self.path, ("text/plain", None))
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def image_host():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def fresh_caches():
    poster.clear_caches()
    yield
    poster.clear_caches()


def campaign(client, image_host, offer="好友首单立减20元", background_url=None, method="post"):
    port = image_host.server_address[1]
    body = {"campaign_id": "spring", "name": "春季好友邀请", "offer": offer,
            "landing_url": f"http://127.0.0.1:{port}/shop", "rules": {}}
    if background_url:
        body["rules"]["poster_background_url"] = background_url.format(port=port)
    if method == "post":
        return client.post("/v1/campaigns", body, token=OPS)
    return client.put("/v1/campaigns/spring", body, token=OPS)


def new_link(client, token: str, campaign_id: str | None = "spring") -> dict:
    body = {"channel": "poster", **({"campaign_id": campaign_id} if campaign_id else {})}
    response = client.post("/v1/links", body, token=token)
    assert response.status_code == 201, response.body
    return response.json_body


def get_poster(client, link_id: str, **headers):
    return client.get(f"/v1/links/{link_id}/poster.png", headers={"Accept": "image/png", **headers})


def decode_qr(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_poster_is_a_wechat_sized_png_whose_qr_scans_to_the_link(client):
    token, _, _ = login(client, "a", "张三丰")
    link = new_link(client, token, campaign_id=None)  # the default campaign
    response = get_poster(client, link["link_id"])
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "image/png"
    assert response.body.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(response.body)).size == (750, 1334)
    assert len(response.body) < 300 * 1024
    assert decode_qr(response.body) == [link["url"]]
    assert response.headers["ETag"].startswith('"') and "public" in response.headers["Cache-Control"]
    assert get_poster(client, link["link_id"], Accept="*/*").body == response.body


def test_poster_changes_with_the_offer_and_the_masked_name_only(client, image_host):
    assert campaign(client, image_host, offer="好友首单立减20元").status_code == 200
    zhang, _, _ = login(client, "zhang", "张三")
    first = get_poster(client, new_link(client, zhang)["link_id"])

    assert campaign(client, image_host, offer="好友首单立减50元", method="put").status_code == 200
    second = get_poster(client, new_link(client, zhang)["link_id"])
    again = get_poster(client, new_link(client, zhang)["link_id"])
    assert second.body != first.body and second.headers["ETag"] != first.headers["ETag"]

    # The full name never reaches the poster: 张伟 masks to 张* as 张三 does.
    zhang_wei, _, _ = login(client, "zhangwei", "张伟")
    li, _, _ = login(client, "li", "李四")
    same_mask = get_poster(client, new_link(client, zhang_wei)["link_id"])
    other_mask = get_poster(client, new_link(client, li)["link_id"])
    # different links have different QR codes: compare everything but the QR card's code
    def without_qr(png):
        image = Image.open(io.BytesIO(png)).convert("RGB")
        image.paste((0, 0, 0), (150, 700, 600, 1150))
        return image.tobytes()
    assert without_qr(same_mask.body) == without_qr(second.body) == without_qr(again.body)
    assert without_qr(other_mask.body) != without_qr(second.body)


def test_if_none_match_answers_304_without_drawing(client, monkeypatch):
    token, _, _ = login(client, "a")
    link_id = new_link(client, token, campaign_id=None)["link_id"]
    drawn = []
    real_render = poster.render
    monkeypatch.setattr(poster, "render", lambda inputs: drawn.append(inputs) or real_render(inputs))
    first = get_poster(client, link_id)
    etag = first.headers["ETag"]
    assert len(drawn) == 1
    assert get_poster(client, link_id).body == first.body and len(drawn) == 1  # kept, not drawn again

    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        not_modified = get_poster(client, link_id, **{"If-None-Match": header})
        assert not_modified.status_code == 304, header
        assert not_modified.body in (b"", "") and not_modified.headers["ETag"] == etag
    assert get_poster(client, link_id, **{"If-None-Match": '"stale"'}).status_code == 200
    assert len(drawn) == 1


def test_posters_are_rate_limited_per_client_like_qr_codes(client, configure):
    from datetime import timedelta

    from chalicelib.core import clock, ratelimit

    configure(RATE_LIMIT_PER_MINUTE="3")
    clock.advance(timedelta(seconds=ratelimit.WINDOW_SECONDS - clock.epoch() % ratelimit.WINDOW_SECONDS))
    statuses = [get_poster(client, "nosuchlink123").status_code for _ in range(4)]
    assert statuses == [404, 404, 404, 429]
    assert get_poster(client, "nosuchlink123").json_body["error"]["code"] == "rate_limited"


@pytest.mark.parametrize("link_id", ["nosuchlink123", "bad id!"])
def test_poster_of_unknown_link_is_404_json(client, link_id):
    response = get_poster(client, link_id)
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "link_not_found"


def test_campaign_background_is_drawn_and_the_qr_still_scans(client, image_host):
    assert campaign(client, image_host, background_url="http://127.0.0.1:{port}/green.jpg").status_code == 200
    token, _, _ = login(client, "a", "Lily")
    link = new_link(client, token)
    response = get_poster(client, link["link_id"])
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.body)).convert("RGB")
    assert image.size == (750, 1334) and len(response.body) < 300 * 1024
    assert all(abs(a - b) <= 12 for a, b in zip(image.getpixel((10, 1320)), GREEN))  # the brand's image
    assert decode_qr(response.body) == [link["url"]]


@pytest.mark.parametrize("path", ["/broken.png", "/bomb.png", "/page.html", "/missing.png", "/moved.jpg"])
def test_a_broken_background_falls_back_to_the_default(client, image_host, path):
    assert campaign(client, image_host, background_url="http://127.0.0.1:{port}" + path).status_code == 200
    token, _, _ = login(client, "a")
    link = new_link(client, token)
    image_host.requests.clear()
    response = get_poster(client, link["link_id"])
    assert response.status_code == 200
    image = Image.open(io.BytesIO(response.body)).convert("RGB")
    assert image.getpixel((10, 1320)) == background.default().getpixel((10, 1320))
    assert decode_qr(response.body) == [link["url"]]
    assert image_host.requests == [path]  # asked once; a redirect is not followed
    get_poster(client, new_link(client, token)["link_id"])
    assert image_host.requests == [path]  # the failure is remembered: not fetched for every poster


def test_oversized_background_falls_back(client, image_host, monkeypatch):
    monkeypatch.setattr(background, "MAX_BYTES", 1000)
    assert campaign(client, image_host, background_url="http://127.0.0.1:{port}/green.jpg").status_code == 200
    token, _, _ = login(client, "a")
    image = Image.open(io.BytesIO(get_poster(client, new_link(client, token)["link_id"]).body)).convert("RGB")
    assert image.getpixel((10, 1320)) == background.default().getpixel((10, 1320))


@pytest.mark.parametrize("url", ["https://cdn.elsewhere.example/bg.png", "ftp://127.0.0.1/bg.png",
                                 "https://user:pw@127.0.0.1/bg.png"])
def test_background_off_the_allowed_hosts_is_refused_on_write(client, image_host, url):
    response = campaign(client, image_host, background_url=url)
    assert response.status_code == 422, response.body
    fields = response.json_body["error"]["details"]["fields"]
    assert [f["field"] for f in fields] == ["rules.poster_background_url"]
    assert client.get("/v1/campaigns/spring", token=OPS).status_code == 404  # nothing written


def test_configured_hosts_are_allowed_and_rechecked_before_each_fetch(client, image_host, monkeypatch, configure):
    configure(POSTER_IMAGE_HOSTS="cdn.brand.example, img.brand.example")
    response = campaign(client, image_host, background_url="https://img.brand.example/spring.jpg")
    assert response.status_code == 200, response.body
    fetched = []
    monkeypatch.setattr(background, "fetch", lambda url: fetched.append(url) or IMAGES["/green.jpg"][1])
    token, _, _ = login(client, "a")
    image = Image.open(io.BytesIO(get_poster(client, new_link(client, token)["link_id"]).body)).convert("RGB")
    assert fetched == ["https://img.brand.example/spring.jpg"] and image.getpixel((10, 1320)) != \
        background.default().getpixel((10, 1320))

    configure(POSTER_IMAGE_HOSTS=None)  # the brand's CDN is no longer trusted
    poster.clear_caches()
    image = Image.open(io.BytesIO(get_poster(client, new_link(client, token)["link_id"]).body)).convert("RGB")
    assert len(fetched) == 1  # refused before any request
    assert image.getpixel((10, 1320)) == background.default().getpixel((10, 1320))


def _font_has(chars: str) -> list[str]:
    """Characters of `chars` the shipped font file has no glyph for (read with fontTools)."""
    from fontTools.ttLib import TTFont

    cmap = TTFont(str(text.FONT_FILE))["cmap"].getBestCmap()
    return [c for c in chars if not c.isspace() and ord(c) not in cmap]


def _catalogue_poster_texts(locale: str = "zh_CN") -> str:
    """Every translation with the context "share:poster" in `locale`'s catalogue, placeholders
    taken out (what is filled in is checked on its own: masked names, offers)."""
    from babel.messages.pofile import read_po

    from tools.i18n import po_path

    with po_path(locale).open("rb") as f:
        catalog = read_po(f)
    found = [m.string for m in catalog if m.id and m.context == "share:poster"]
    assert len(found) >= 3
    return re.sub(r"\{[^{}]*\}", "", "".join(found))


def test_font_covers_the_default_texts_and_typical_masked_names():
    drawn_texts = "".join(poster.fixed_texts("", "zh-CN"))
    assert drawn_texts and set(drawn_texts) <= set(_catalogue_poster_texts())  # the zh texts come from there
    texts = _catalogue_poster_texts() + default_campaign().name + default_campaign().offer + "¥￥元折券，。！"
    names = [mask_name(name) for name in ("张三", "欧阳娜娜", "司马懿", "Lily", "Al", "佘太君", "覃海")]
    names += [mask_name(surname + "某") for surname in SURNAMES]
    assert _font_has(texts + "".join(names)) == []
    assert set((text.FONTS / "coverage.txt").read_text(encoding="utf-8")) >= set(texts + "".join(names))
    # and each is drawn as itself, not as the font's empty box
    def drawn(char: str) -> bytes:
        image = Image.new("L", (60, 60))
        ImageDraw.Draw(image).text((5, 5), char, font=text.font(40), fill=255)
        return image.tobytes()

    empty_box = drawn("\U0002a6a5")  # a character the subset lacks
    assert all(drawn(c) != empty_box for c in set(texts + "".join(names)) - {" "})


def test_characters_the_font_lacks_are_replaced_not_fatal(client):
    assert text.drawable(mask_name("\U0002a6a5三"), missing="*") == "**"
    assert text.drawable("🎁 立减\u200b20元\n") == "□ 立减20元"
    token, _, _ = login(client, "rare", "\U0002a6a5三")  # a surname outside the subset
    link = new_link(client, token, campaign_id=None)
    response = get_poster(client, link["link_id"])
    assert response.status_code == 200 and decode_qr(response.body) == [link["url"]]


def test_long_offers_wrap_within_the_poster():
    lines = text.wrap("好友首单立减20元，邀请越多奖励越多，上不封顶！" * 4, 64, 650, 3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(text.font(64).getlength(line) <= 650 for line in lines)
    assert not any(line.startswith(("，", "！")) for line in lines)
    assert text.wrap("¥20 off your first order", 64, 650, 3) == ["¥20 off your first", "order"]
    long_name = text.wrap(mask_name("Maximilian" * 4), 34, 300, 1)
    assert len(long_name) == 1 and long_name[0].startswith("M**") and long_name[0].endswith("…")


def test_poster_is_drawn_in_the_callers_language(client, image_host):
    port = image_host.server_address[1]
    body = {"campaign_id": "spring", "name": "春季好友邀请", "offer": "好友首单立减20元",
            "offer_i18n": {"en": "¥20 off your first order"}, "landing_url": f"http://127.0.0.1:{port}/shop",
            "rules": {}}
    assert client.post("/v1/campaigns", body, token=OPS).status_code == 200
    token, _, _ = login(client, "lily", "Lily")
    link = new_link(client, token)
    zh = get_poster(client, link["link_id"], **{"Accept-Language": "zh-CN"})
    en = get_poster(client, link["link_id"], **{"Accept-Language": "en-US,en;q=0.9"})
    default = get_poster(client, link["link_id"])  # no Accept-Language: zh-CN
    assert zh.status_code == en.status_code == default.status_code == 200
    assert en.body != zh.body and en.headers["ETag"] != zh.headers["ETag"]
    assert default.body == zh.body and default.headers["ETag"] == zh.headers["ETag"]
    assert en.headers["Content-Language"] == "en" and "Accept-Language" in en.headers["Vary"]
    assert decode_qr(zh.body) == decode_qr(en.body) == [link["url"]]
    # the other language's ETag is no match: drawn, not 304
    assert get_poster(client, link["link_id"], **{"Accept-Language": "en", "If-None-Match": zh.headers["ETag"]}
                      ).status_code == 200
    assert get_poster(client, link["link_id"], **{"Accept-Language": "en", "If-None-Match": en.headers["ETag"]}
                      ).status_code == 304
    # the cache is per locale, too: asking in zh again gives the zh poster, not the cached en one
    assert get_poster(client, link["link_id"], **{"Accept-Language": "zh"}).body == zh.body


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("name", ["张三", "欧阳娜娜", "Lily", "Maximilian" * 4])
def test_fixed_texts_fit_the_card(locale, name):
    """The masked name and each fixed text fit inside the card, in both languages, nothing replaced."""
    lines = poster.card_texts(mask_name(name), locale)
    assert [line for line, _ in lines][1:] == list(poster.fixed_texts("", locale)[1:])
    assert mask_name(name)[0] in lines[0][0]
    for line, size in lines:
        assert text.drawable(line) == line
        assert text.font(size).getlength(line) <= poster.TEXT_WIDTH, (locale, line)
        assert size >= 20
    if locale == "zh-CN":  # the Chinese card is drawn at its full sizes
        assert [size for _, size in lines] == [34, 32, 24]
