"""Texts in the caller's language through the API: error messages from several capabilities,
notifications rendered on read in the member's preference or Accept-Language, and a share
link's share texts with the campaign's offer and the owner's masked name (both backends)."""
from __future__ import annotations

import pytest

from chalicelib.core import clock
from chalicelib.lifecycle import outbox
from chalicelib.referrals.links import CHANNELS
from chalicelib.share.texts import share_texts
from tests.flows import login
from tests.helpers import token

EN = {"Accept-Language": "en-US,en;q=0.9"}
OPS = ("ops-lin", "ops")  # tokens are minted in the test (the clock may be moved)
MEMBER = ("m-zh", "member")
SERVICE = ("brand", "service")


def error_of(response, status: int) -> tuple[str, str, str]:
    assert response.status_code == status, response.body
    error = response.json_body["error"]
    return error["code"], error["message"], response.headers["Content-Language"]


# -- error messages -----------------------------------------------------------------------------

CALLS = {  # capability: (method, path, body, token) and the status it answers
    "codes": ("GET", "/v1/members/me/code?campaign_id=nosuch", None, MEMBER, 404),
    "facts": ("POST", "/v1/events/refunds", {"order_id": "o-gone", "refund_id": "r1", "amount_fen": 100},
              SERVICE, 404),
    "campaigns": ("GET", "/v1/campaigns/nosuch", None, OPS, 404),
    "engagement": ("GET", "/v1/shares/s-nosuch", None, None, 404),
    "auth": ("GET", "/v1/members/me", None, None, 401),
    "roles": ("GET", "/v1/campaigns", None, MEMBER, 403),
    "methods": ("DELETE", "/v1/members/me/code", None, MEMBER, 405),
}
MESSAGES = {
    "codes": ("campaign_not_found", "没有此 ID 的进行中活动", "no running campaign with this id"),
    "facts": ("order_not_found", "订单“o-gone”从未上报", "order 'o-gone' was never reported"),
    "campaigns": ("campaign_not_found", "活动“nosuch”不存在", "campaign 'nosuch' does not exist"),
    "engagement": ("share_not_found", "没有此 ID 的分享", "no share with this id"),
    "auth": ("missing_token", "缺少 Authorization 请求头", "missing Authorization header"),
    "roles": ("wrong_role", "此调用需要以下角色之一：ops", "this call needs one of the roles: ops"),
    "methods": ("method_not_allowed", "此路径不支持 DELETE；请使用 GET, PUT",
                "DELETE is not supported here; use GET, PUT"),
}


@pytest.mark.parametrize("capability", sorted(CALLS))
def test_errors_are_in_chinese_by_default_and_in_english_when_asked(client, capability):
    method, path, body, who, status = CALLS[capability]
    bearer = token(*who) if who else None
    code, chinese, english = MESSAGES[capability]
    default = client.request(method, path, body=body, token=bearer)
    asked = client.request(method, path, body=body, token=bearer, headers=EN)
    assert error_of(default, status) == (code, chinese, "zh-CN")
    assert error_of(asked, status) == (code, english, "en")
    assert default.json_body["error"]["details"] == asked.json_body["error"]["details"]  # data never translated


# -- notifications --------------------------------------------------------------------------------

def notes(client, member_token: str, headers: dict | None = None) -> dict[str, dict]:
    response = client.get("/v1/members/me/notifications", token=member_token, headers=headers)
    assert response.status_code == 200, response.body
    return {item["kind"]: item for item in response.json_body["items"]}


def test_notifications_follow_the_members_preference_and_accept_language(client):
    member_token, member_id, _ = login(client, "note-reader", name="Lily")
    at = clock.now_iso()
    # Points expire at the end of 31 Dec, Shanghai time: that day is what the member reads.
    outbox.post(member_id, "points_expiring", "lot-1", at, {"points": 120, "expires_at": "2026-12-31T15:59:59Z"})
    outbox.post(member_id, "tier_up", "silver.1", at, {"from": "bronze", "to": "silver", "perks": []})
    outbox.post(member_id, "win_back", "w1", at, {"last_purchase_at": at, "coupon_fen": 2050})

    chinese = notes(client, member_token)  # preference zh-CN (the default), no header
    assert (chinese["points_expiring"]["title"], chinese["points_expiring"]["body"]) == (
        "积分即将过期", "120 积分将于 2026-12-31 过期，请尽快使用。")
    assert chinese["tier_up"]["body"] == "恭喜！你的会员等级已从bronze升至silver。"
    assert chinese["win_back"]["body"] == "一张 20.50 元优惠券已放入你的账户。"

    assert client.put("/v1/members/me/preferences", {"locale": "en"}, token=member_token).status_code == 200
    english = notes(client, member_token)  # the same stored items, now in the preference
    assert (english["points_expiring"]["title"], english["points_expiring"]["body"]) == (
        "Points about to expire", "120 points expire on 2026-12-31. Spend them before then.")
    assert english["tier_up"]["title"] == "You reached silver"
    assert english["win_back"]["body"] == "A ¥20.50 coupon is waiting in your account."
    assert english["points_expiring"]["payload"] == chinese["points_expiring"]["payload"]

    asked = client.get("/v1/members/me/notifications", token=member_token, headers={"Accept-Language": "zh-CN"})
    assert asked.headers["Content-Language"] == "zh-CN"  # the header beats the preference
    assert {item["kind"]: item["title"] for item in asked.json_body["items"]}["tier_up"] == "你已升级为silver"


def test_a_kind_without_texts_still_gets_a_title_and_body(client):
    member_token, member_id, _ = login(client, "note-new-kind")
    outbox.post(member_id, "something_new", "x1", clock.now_iso(), {"anything": 1})
    outbox.post(member_id, "tier_down", "old.1", clock.now_iso(), {"unexpected": "shape"})
    items = notes(client, member_token, EN)
    assert (items["something_new"]["title"], items["something_new"]["body"]) == (
        "News from us", "Open the app to see what is new.")
    assert items["tier_down"]["title"] == "News from us"


# -- a share link with its share texts ------------------------------------------------------------

@pytest.fixture
def spring(client):
    response = client.post("/v1/campaigns", {
        "campaign_id": "spring", "name": "春季邀请", "offer": "首单立减 20 元",
        "offer_i18n": {"en": "¥20 off your first order"}, "landing_url": "https://shop.example.com/spring"},
        token=token(*OPS))
    assert response.status_code in (200, 201), response.body
    assert response.json_body["offer_i18n"] == {"en": "¥20 off your first order"}
    return "spring"


def new_link(client, member_token: str, channel: str, campaign_id: str = "spring") -> dict:
    response = client.post("/v1/links", {"campaign_id": campaign_id, "channel": channel}, token=member_token)
    assert response.status_code == 201, response.body
    return response.json_body


def test_share_texts_for_the_links_channel_in_both_languages(client, spring):
    member_token, _, _ = login(client, "sharer-lily", name="Lily")
    link = new_link(client, member_token, "sms")
    chinese = client.get(f"/v1/links/{link['link_id']}", token=member_token)
    english = client.get(f"/v1/links/{link['link_id']}", token=member_token, headers=EN)
    assert chinese.status_code == 200 and english.status_code == 200, chinese.body
    assert {k: chinese.json_body[k] for k in link} == link  # the link as created, plus its texts
    assert chinese.json_body["share"] == {"title": "L**y送你首单立减 20 元", "description": "打开链接即可领取。",
                                          "text": f"L**y送你首单立减 20 元：{link['url']}"}
    assert english.json_body["share"] == {"title": "¥20 off your first order from L**y",
                                          "description": "Open the link to claim it.",
                                          "text": f"L**y sent you ¥20 off your first order: {link['url']}"}
    assert english.headers["Content-Language"] == "en"


@pytest.mark.parametrize("channel", CHANNELS)
def test_every_channel_has_its_own_texts_in_both_languages(client, spring, channel):
    member_token, _, _ = login(client, f"sharer-{channel}", name="张三丰")
    link = new_link(client, member_token, channel)
    for headers, offer, locale in ((None, "首单立减 20 元", "zh-CN"), (EN, "¥20 off your first order", "en")):
        share = client.get(f"/v1/links/{link['link_id']}", token=member_token, headers=headers).json_body["share"]
        assert share == share_texts(channel, offer=offer, inviter="张**", code=link["code"], url=link["url"],
                                    locale=locale)
        assert offer in share["title"] + share["text"]
        assert "张三丰" not in str(share)  # the owner's name only masked
    chinese = client.get(f"/v1/links/{link['link_id']}", token=member_token).json_body["share"]
    english = client.get(f"/v1/links/{link['link_id']}", token=member_token, headers=EN).json_body["share"]
    assert chinese["description"] != english["description"]


def test_without_a_header_the_members_preference_picks_the_language(client, spring):
    member_token, _, _ = login(client, "sharer-en", name="Lily")
    assert client.put("/v1/members/me/preferences", {"locale": "en"}, token=member_token).status_code == 200
    link = new_link(client, member_token, "weibo")
    answer = client.get(f"/v1/links/{link['link_id']}", token=member_token)
    assert answer.json_body["share"]["title"] == "¥20 off your first order, invited by L**y"
    assert answer.headers["Content-Language"] == "en"


def test_an_offer_without_a_translation_is_used_as_written(client):
    member_token, _, _ = login(client, "sharer-default", name="Lily")
    link = new_link(client, member_token, "weibo", campaign_id="default")  # offer in English only
    share = client.get(f"/v1/links/{link['link_id']}", token=member_token).json_body["share"]
    assert share["title"] == "L**y邀你领¥20 off your first order"


def test_another_members_link_is_not_found_like_an_unknown_one(client, spring):
    owner_token, _, _ = login(client, "owner", name="Lily")
    other_token, _, _ = login(client, "nosy", name="Sam")
    link = new_link(client, owner_token, "qq")
    theirs = client.get(f"/v1/links/{link['link_id']}", token=other_token, headers=EN)
    unknown = client.get("/v1/links/AAAAAAAAAAAA", token=other_token, headers=EN)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json_body == unknown.json_body == {
        "error": {"code": "link_not_found", "message": "no such link", "details": {}}}
    assert client.get(f"/v1/links/{link['link_id']}", token=token(*OPS)).status_code == 403


@pytest.mark.parametrize("offer_i18n, field", [
    ({"fr": "20 € de réduction"}, "offer_i18n.fr"),
    ({"en": "x" * 201}, "offer_i18n.en"),
    ({"en": ""}, "offer_i18n.en"),
])
def test_offer_translations_are_validated(client, offer_i18n, field):
    response = client.post("/v1/campaigns", {"campaign_id": "bad-offer", "name": "x", "offer": "x",
                                             "offer_i18n": offer_i18n,
                                             "landing_url": "https://shop.example.com/x"}, token=token(*OPS))
    assert response.status_code == 422, response.body
    assert any(f["field"].startswith(field) for f in response.json_body["error"]["details"]["fields"])
    assert client.get("/v1/campaigns/bad-offer", token=token(*OPS)).status_code == 404  # nothing written


# -- ledger entries ---------------------------------------------------------------------------------

def test_ledger_entries_carry_a_label_in_the_readers_language_and_the_reason_as_written(client):
    member_token, member_id, _ = login(client, "ledger-reader")
    adjusted = client.post("/v1/ops/adjustments", {"member_id": member_id, "points": 50, "reason": "门店补偿"},
                           token=token("boss", "admin"))
    assert adjusted.status_code in (200, 201), adjusted.body
    chinese = client.get("/v1/members/me/ledger", token=member_token).json_body["items"]
    english = client.get("/v1/members/me/ledger", token=member_token, headers=EN).json_body["items"]
    assert [(e["kind"], e["label"], e["reason"]) for e in chinese] == [("adjustment", "积分调整", "门店补偿")]
    assert [(e["kind"], e["label"], e["reason"]) for e in english] == [("adjustment", "Points adjustment", "门店补偿")]
