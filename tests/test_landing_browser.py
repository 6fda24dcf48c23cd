"""The hosted landing page in a real browser: Debian's chromium driven by Playwright against the
service on a local HTTP server (as `make run` serves it). Visible texts, no script or CSP error,
the buttons' targets, "copy code", the page weight, and a screenshot kept as a test artifact
(.cache/artifacts/landing.png). The preview a WeChat/Weibo crawler reads is checked on the same
server, headers included.

It tests HTML, not storage: it runs in the DynamoDB Local pass only (the local server answers
each connection on its own thread, which moto does not bear). Without chromium it is skipped
on a developer's machine and fails in CI (CI=true): `WITH_BROWSER=1 infra/local/prepare.sh`
installs it.
"""
from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from chalicelib.referrals.models import Click
from tests.conftest import BACKEND
from tests.flows import OPS, login
from tests.live import serving

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / ".cache" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
WECHAT_BROWSER = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                  "Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN")
MINI_PROGRAM = "weixin://dl/business/?appid=wx0123456789abcdef&path=pages/welcome/index"
PAGE_BUDGET = 20_000  # bytes over the wire for the page, its CSS and JS: fast on a slow phone

pytestmark = pytest.mark.skipif(BACKEND != "ddblocal", reason="tests HTML, not storage: runs in the "
                                                             "DynamoDB Local pass only")


@pytest.fixture
def chromium():
    """Playwright's chromium launcher on Debian's browser (never `playwright install`)."""
    missing = None
    if not os.access(CHROMIUM, os.X_OK):
        missing = "chromium is not installed (WITH_BROWSER=1 infra/local/prepare.sh installs it)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = missing or "the playwright package is missing (pip install -r requirements-dev.txt)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def site(app, client, configure):
    """A hosted campaign, an advocate's WeChat link to it, and the service on a local port."""
    configure(MINI_PROGRAM_LINK=MINI_PROGRAM)
    response = client.post("/v1/campaigns", {
        "campaign_id": "spring", "name": "春季焕新", "offer": "新人首单立减¥30", "ends_at": "2036-12-31T15:59:00Z",
        "landing_url": "https://shop.example.com/spring", "rules": {"landing_page": "hosted"}}, token=OPS)
    assert response.status_code == 200, response.body
    token, _, _ = login(client, "open-lily", name="Lily")
    link = client.post("/v1/links", {"channel": "wechat_friend", "campaign_id": "spring"}, token=token).json_body
    with serving(app) as base:
        parts = urlsplit(link["url"])
        yield {"base": base, "link": link, "url": f"{base}{parts.path}?{parts.query}"}


def test_the_landing_page_in_a_phone_browser(chromium, site):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = chromium.new_context(locale="zh-CN", user_agent=WECHAT_BROWSER, viewport={"width": 390, "height": 780},
                                   device_scale_factor=2, is_mobile=True, has_touch=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site["base"])
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: message.type in ("error", "warning") and problems.append(
        f"console {message.type}: {message.text}"))
    page.on("response", lambda response: response.status >= 400 and problems.append(
        f"{response.status} for {response.url}"))
    weight: dict[str, int] = {}
    page.on("response", lambda response: response.status < 400 and weight.setdefault(
        urlsplit(response.url).path, len(response.body())))

    response = page.goto(site["url"], wait_until="load")
    assert response is not None and response.status == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]

    body = page.inner_text("body")
    assert "L**y 邀请你参加「春季焕新」" in body  # the masked inviter, never the name
    assert "Lily" not in page.content()
    assert "新人首单立减¥30" in page.inner_text("h1")
    assert "活动截止：2036年12月31日 23:59" in body
    assert page.get_by_label("你的邀请码").input_value() == site["link"]["code"]  # the field is labelled

    [click] = list(Click.scan())  # tests only: exactly one click for this visit
    shop = page.get_attribute("#open-shop", "href")
    assert shop.startswith("https://shop.example.com/spring?")
    assert parse_qs(urlsplit(shop).query) == {"ref": [site["link"]["code"]], "click": [click.click_id]}
    mini = urlsplit(page.get_attribute("#open-mini-program", "href"))
    assert f"{mini.scheme}://{mini.netloc}{mini.path}" == "weixin://dl/business/"
    assert parse_qs(unquote(parse_qs(mini.query)["query"][0])) == {"ref": [site["link"]["code"]],
                                                                  "click": [click.click_id]}
    assert page.get_by_role("link", name="打开小程序领取").is_visible()

    page.get_by_role("button", name="复制邀请码").click()
    page.wait_for_function("document.getElementById('copy-status').textContent.length > 0")
    assert page.inner_text("#copy-status") == "邀请码已复制"
    assert page.evaluate("navigator.clipboard.readText()") == site["link"]["code"]

    page.screenshot(path=str(ARTIFACTS / "landing.png"), full_page=True)
    assert problems == []
    total = sum(weight.values())
    assert set(weight) >= {"/r/" + site["link"]["code"], "/static/landing.css", "/static/landing.js"}
    assert total < PAGE_BUDGET, weight
    (ARTIFACTS / "landing-weight.txt").write_text("".join(f"{n} {p}\n" for p, n in sorted(weight.items())) +
                                                  f"{total} total\n")
    context.close()


class Tags(HTMLParser):
    def __init__(self, html: str):
        super().__init__()
        self.meta: dict[str, str] = {}
        self.title = ""
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self._in_title = tag == "title"
        if tag == "meta" and (a.get("property") or a.get("name")):
            self.meta[a.get("property") or a.get("name")] = a.get("content")

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


@pytest.mark.parametrize("agent", [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) WeChatShareExtensionNew/8.0.50",
    "Mozilla/5.0 (compatible; SinaWeiboBot/1.0)",
], ids=["wechat", "weibo"])
def test_the_preview_on_the_local_server_has_the_tags_crawlers_read(site, agent):
    response = requests.get(site["url"], headers={"User-Agent": agent}, allow_redirects=False, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"] == "text/html; charset=utf-8"
    tags = Tags(response.text)
    # WeChat reads <title>, the description and og:image; Weibo and the rest read og:* / twitter:*.
    assert tags.title == tags.meta["og:title"] == tags.meta["twitter:title"] == "L**y送你一份礼物：新人首单立减¥30"
    assert tags.meta["description"] == tags.meta["og:description"]
    assert tags.meta["og:image"].startswith("https://") and tags.meta["twitter:card"] == "summary_large_image"
    assert tags.meta["og:url"] == site["link"]["url"]
    assert list(Click.scan()) == []
