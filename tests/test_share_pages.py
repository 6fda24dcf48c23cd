"""What a shared link shows: the preview card link-preview crawlers read (never a click), the
302 people get, and a campaign's hosted landing page (both backends)."""
from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from chalicelib.referrals import counters
from chalicelib.referrals.models import Click, ClickCounter
from tests.flows import OPS, login, spring_campaign

CRAWLERS = {
    "wechat": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) WeChatShareExtensionNew/8.0.50",
    "weibo": "Mozilla/5.0 (compatible; SinaWeiboBot/1.0)",
    "qq": "Mozilla/5.0 (Linux; U; Android 4.4.2; zh-cn; GT-I9500 Build/KOT49H) AppleWebKit/537.36 (KHTML, like Gecko)"
          "Version/4.0 MQQBrowser/5.0 QQ-URL-Manager Mobile Safari/537.36",
    "bytedance": "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/537.36 "
                 "(compatible; Bytespider; spider-feedback@bytedance.com)",
    "facebook": "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
    "twitter": "Twitterbot/1.0",
    "slack": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "telegram": "TelegramBot (like TwitterBot)",
    "whatsapp": "WhatsApp/2.23.20.0",
    "linkedin": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "discord": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "google": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
}
PEOPLE = {
    "wechat_browser": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                      "Mobile/15E148 MicroMessenger/8.0.50(0x1800322c) NetType/WIFI Language/zh_CN",
    "weibo_app": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Mobile/15E148 Weibo (iPhone15,2__weibo__14.6.1__iphone__os17.5)",
    "douyin_app": "Mozilla/5.0 (Linux; Android 14; V2309A) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
                  "Mobile Safari/537.36 aweme_290400 BytedanceWebview/d8a21c6",
    "safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.5 Mobile/15E148 Safari/604.1",
}
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class Page(HTMLParser):
    """The tags a crawler reads (meta property/name → content) and the page's links and text."""

    def __init__(self, html: str):
        super().__init__()
        self.meta: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self.text: list[str] = []
        self.lang = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if tag == "meta" and (a.get("property") or a.get("name")):
            self.meta[a.get("property") or a.get("name")] = a.get("content")
        if tag == "a" and a.get("id"):
            self.links[a["id"]] = a.get("href")

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def member_link(client, name: str = "Lily", channel: str = "weibo", campaign_id: str | None = None):
    token, member_id, _ = login(client, f"open-{len(name)}", name=name)
    body = {"channel": channel, **({"campaign_id": campaign_id} if campaign_id else {})}
    response = client.post("/v1/links", body, token=token)
    assert response.status_code == 201, response.body
    return response.json_body


def fetch(client, path: str, agent: str, **headers):
    return client.get(path, headers={"User-Agent": agent, **headers})


def path_of(link: dict) -> str:
    parts = urlsplit(link["url"])
    return f"{parts.path}?{parts.query}"


def clicks_written() -> list[Click]:
    return list(Click.scan())  # tests only: the service never scans


def hosted_campaign(client, campaign_id: str = "spring", offer: str = "¥30 off your first order", **rules):
    body = {"campaign_id": campaign_id, "name": "Spring", "offer": offer, "ends_at": "2036-12-31T15:59:00Z",
            "landing_url": "https://shop.example.com/spring", "rules": {"landing_page": "hosted", **rules}}
    response = client.post("/v1/campaigns", body, token=OPS)
    assert response.status_code == 200, response.body


# -- previews: crawlers ----------------------------------------------------------------------

def test_crawlers_get_the_card_with_the_masked_name_and_leave_every_counter_unchanged(client, streams):
    link = member_link(client)
    for name, agent in CRAWLERS.items():
        response = fetch(client, path_of(link), agent)
        assert response.status_code == 200, (name, response.body)
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        page = Page(response.body.decode())
        tags = {key: page.meta.get(key) for key in ("og:title", "og:description", "og:image", "og:url", "twitter:card")}
        assert all(tags.values()), (name, tags)
        assert "L**y" in tags["og:title"] and "¥20" in tags["og:title"], tags  # weibo: "{offer}, invited by {inviter}"
        assert tags["og:url"] == link["url"]
        assert tags["og:image"].startswith("https://ref.example.com/static/share.png")
        assert "Lily" not in response.body.decode()
    assert clicks_written() == []
    streams.drain()
    assert counters.read(ClickCounter.key(code=link["code"]))["total"] == 0
    funnel = client.get("/v1/analytics/campaigns/default/funnel", token=OPS).json_body
    assert funnel["clicks"] == 0 and funnel["unique_visitors"] == 0

    assert fetch(client, path_of(link), PEOPLE["safari"]).status_code == 302  # a person still counts
    streams.drain()
    assert counters.read(ClickCounter.key(code=link["code"]))["total"] == 1


@pytest.mark.parametrize("agent", PEOPLE.values(), ids=PEOPLE.keys())
def test_people_and_in_app_browsers_get_the_302_and_a_click(client, agent):
    link = member_link(client)
    response = fetch(client, path_of(link), agent)
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["ref"] == [link["code"]]
    assert [c.click_id for c in clicks_written()] == query["click"]


def test_the_card_speaks_the_crawlers_language_and_chinese_by_default(client):
    link = member_link(client, channel="wechat_friend")
    chinese = Page(fetch(client, path_of(link), CRAWLERS["wechat"]).body.decode())
    english = Page(fetch(client, path_of(link), CRAWLERS["wechat"], **{"Accept-Language": "en-US,en;q=0.9"}).body.decode())
    assert chinese.lang == "zh-CN" and english.lang == "en"
    assert english.meta["og:title"] == "L**y sent you a gift: ¥20 off your first order"
    assert chinese.meta["og:title"] != english.meta["og:title"] and "L**y" in chinese.meta["og:title"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.meta["og:description"])


def test_a_bare_code_previews_with_the_other_channel_texts(client):
    link = member_link(client, channel="weibo")
    page = Page(fetch(client, f"/r/{link['code']}", CRAWLERS["facebook"], **{"Accept-Language": "en"}).body.decode())
    assert page.meta["og:title"] == "L**y sent you a gift: ¥20 off your first order"  # share:other, not weibo
    assert page.meta["og:url"] == f"https://ref.example.com/r/{link['code']}"


def test_the_campaigns_share_image_is_the_cards_image(client):
    spring_campaign(client, share_image_url="https://cdn.brand.example/spring.jpg")
    link = member_link(client, campaign_id="spring")
    page = Page(fetch(client, path_of(link), CRAWLERS["weibo"]).body.decode())
    assert page.meta["og:image"] == page.meta["twitter:image"] == "https://cdn.brand.example/spring.jpg"


@pytest.mark.parametrize("image", ["ftp://cdn.brand.example/x.png", "https://user:pw@cdn.brand.example/x.png",
                                   "javascript:alert(1)"])
def test_a_share_image_that_is_not_a_plain_web_url_is_refused(client, image):
    response = client.post("/v1/campaigns", {"campaign_id": "spring", "name": "Spring",
                                             "landing_url": "https://shop.example.com/spring",
                                             "rules": {"share_image_url": image}}, token=OPS)
    assert response.status_code == 422, response.body
    assert client.get("/v1/campaigns/spring", token=OPS).status_code == 404


@pytest.mark.parametrize("code", ["NOSUCH22", "x'<script>"])
def test_an_unknown_code_previews_a_generic_card_naming_no_one(client, code):
    response = fetch(client, f"/r/{code}", CRAWLERS["facebook"], **{"Accept-Language": "en"})
    assert response.status_code == 200
    page = Page(response.body.decode())
    assert page.meta["og:title"] == "A gift from a friend"
    assert "<script>" not in response.body.decode()
    assert clicks_written() == []


def test_a_crawler_revalidating_with_its_etag_gets_304(client):
    link = member_link(client)
    first = fetch(client, path_of(link), CRAWLERS["twitter"])
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    assert "User-Agent" in first.headers["Vary"]  # people get a redirect at the same URL
    again = fetch(client, path_of(link), CRAWLERS["twitter"], **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.body == b""


def test_head_requests_are_answered_and_never_counted(client):
    link = member_link(client)
    crawler = client.request("HEAD", path_of(link), headers={"User-Agent": CRAWLERS["facebook"]})
    assert crawler.status_code == 200 and crawler.headers["Content-Type"].startswith("text/html")
    person = client.request("HEAD", path_of(link), headers={"User-Agent": PEOPLE["safari"]})
    assert person.status_code == 302
    assert "click" not in parse_qs(urlsplit(person.headers["Location"]).query)
    assert clicks_written() == []


# -- the hosted landing page -------------------------------------------------------------------

def test_a_hosted_campaign_answers_people_with_its_page_and_counts_one_click(client):
    hosted_campaign(client)
    link = member_link(client, channel="wechat_friend", campaign_id="spring")
    response = fetch(client, path_of(link), PEOPLE["wechat_browser"])
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CSP
    assert response.headers["Cache-Control"] == "no-store"
    page = Page(response.body.decode())
    assert page.lang == "zh-CN"
    text = " ".join(page.text)
    assert "L**y" in text and "¥30 off your first order" in text and "2036年12月31日 23:59" in text
    [click] = clicks_written()
    shop = parse_qs(urlsplit(page.links["open-shop"]).query)
    assert page.links["open-shop"].startswith("https://shop.example.com/spring?")
    assert shop == {"ref": [link["code"]], "click": [click.click_id]}
    assert page.links["open-mini-program"] == page.links["open-shop"]  # no mini-program configured


def test_the_mini_program_button_carries_the_referral(client, configure):
    configure(MINI_PROGRAM_LINK="weixin://dl/business/?appid=wx0123456789abcdef&path=pages/welcome/index")
    hosted_campaign(client)
    link = member_link(client, campaign_id="spring")
    page = Page(fetch(client, path_of(link), PEOPLE["safari"], **{"Accept-Language": "en"}).body.decode())
    [click] = clicks_written()
    target = urlsplit(page.links["open-mini-program"])
    params = parse_qs(target.query)
    assert (target.scheme, params["appid"], params["path"]) == ("weixin", ["wx0123456789abcdef"], ["pages/welcome/index"])
    assert parse_qs(unquote(params["query"][0])) == {"ref": [link["code"]], "click": [click.click_id]}
    assert "Offer ends 31 Dec 2036, 23:59" in " ".join(page.text)


def test_crawlers_of_a_hosted_campaign_still_get_the_card_and_no_click(client):
    hosted_campaign(client)
    link = member_link(client, campaign_id="spring")
    page = Page(fetch(client, path_of(link), CRAWLERS["wechat"]).body.decode())
    assert "og:title" in page.meta and clicks_written() == []


def test_the_hosted_page_escapes_what_brands_and_members_type(client):
    hosted_campaign(client, offer='<script>alert("offer")</script>')
    link = member_link(client, name='<img src=x onerror=alert(1)>', campaign_id="spring")
    for agent in (PEOPLE["safari"], CRAWLERS["facebook"]):
        html = fetch(client, path_of(link), agent).body.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&#34;offer&#34;)&lt;/script&gt;" in html
        assert "&lt;" + "*" * 26 + "&gt;" in html  # the masked name keeps its first and last character


def test_static_assets_are_served_with_their_types_and_nothing_else_is(client):
    css = client.get("/static/landing.css")
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert client.get("/static/landing.js").headers["Content-Type"].startswith("text/javascript")
    png = client.get("/static/share.png", headers={"Accept": "image/png"})
    assert png.status_code == 200 and png.body[:8] == b"\x89PNG\r\n\x1a\n"
    for name in ("app.py", "..%2Fpages.py", "crawlers.txt"):
        missing = client.get(f"/static/{name}")
        assert missing.status_code == 404 and missing.json_body["error"]["code"] == "not_found"
