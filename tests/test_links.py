"""Share links and their QR codes (both backends)."""
from __future__ import annotations

import io
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from PIL import Image

from chalicelib.referrals.models import Click, Link

BASE = "https://ref.example.com"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def login(client, openid: str, name: str = "Lily") -> str:
    response = client.post("/v1/auth/login", {"provider": "dev", "openid": openid, "display_name": name})
    assert response.status_code == 200, response.body
    return response.json_body["access_token"]


def new_link(client, token: str, **body) -> dict:
    response = client.post("/v1/links", {"channel": "wechat_moments", **body}, token=token)
    assert response.status_code == 201, response.body
    return response.json_body


def decode_qr(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_link_carries_code_and_link_id(client):
    token = login(client, "a")
    code = client.get("/v1/members/me/code", token=token).json_body["code"]
    link = new_link(client, token)
    assert link["code"] == code and link["channel"] == "wechat_moments" and link["campaign_id"] == "default"
    assert link["url"] == f"{BASE}/r/{code}?l={link['link_id']}"
    assert link["qr_png_url"] == f"{BASE}/v1/links/{link['link_id']}/qr.png"
    stored = Link.get(*Link.key(link["link_id"]))
    assert stored.url == link["url"]
    assert new_link(client, token)["link_id"] != link["link_id"]  # one link per call


@pytest.mark.parametrize("body", [
    {"channel": "myspace"},
    {},
    {"channel": "qq", "landing_path": "//evil.example.com/x"},
    {"channel": "qq", "landing_path": "https://evil.example.com/"},
    {"channel": "qq", "landing_path": "/a\\b"},
    {"channel": "qq", "campaign_id": "Not An Id"},
    {"channel": "qq", "member_id": "someone-else"},
])
def test_bad_link_bodies_are_422_and_write_nothing(client, body):
    token = login(client, "a")
    response = client.post("/v1/links", body, token=token)
    assert response.status_code == 422, response.body
    assert list(Link.scan()) == []


def test_links_need_a_member_token(client):
    assert client.post("/v1/links", {"channel": "qq"}).status_code == 401


def test_qr_png_scans_back_to_the_exact_url(client):
    token = login(client, "a")
    link = new_link(client, token, channel="poster")
    response = client.get(f"/v1/links/{link['link_id']}/qr.png", headers={"Accept": "image/png"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/png"
    assert "max-age=" in response.headers["Cache-Control"] and "public" in response.headers["Cache-Control"]
    assert response.body.startswith(PNG_SIGNATURE)
    assert decode_qr(response.body) == [link["url"]]
    # a bigger image for print encodes the same thing
    big = client.get(f"/v1/links/{link['link_id']}/qr.png?scale=20", headers={"Accept": "*/*"})
    assert big.status_code == 200 and len(big.body) > len(response.body)
    assert decode_qr(big.body) == [link["url"]]


def test_qr_of_unknown_link_is_404(client):
    response = client.get("/v1/links/nosuchlink123/qr.png", headers={"Accept": "image/png"})
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "link_not_found"


def test_following_a_link_records_its_channel_and_landing_path(client):
    token = login(client, "a")
    link = new_link(client, token, channel="xiaohongshu", landing_path="/products/42?color=red")
    path = link["url"].removeprefix(BASE)
    response = client.get(path)
    assert response.status_code == 302
    target = urlsplit(response.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "shop.example.com", "/products/42")
    query = parse_qs(target.query)
    assert query["color"] == ["red"] and query["ref"] == [link["code"]]
    click = Click.get(*Click.key(query["click"][0]))
    assert (click.link_id, click.channel, click.code) == (link["link_id"], "xiaohongshu", link["code"])


def test_link_id_pasted_onto_another_code_counts_only_the_code(client):
    link = new_link(client, login(client, "a"))
    other_code = client.get("/v1/members/me/code", token=login(client, "b")).json_body["code"]
    response = client.get(f"/r/{other_code}?l={link['link_id']}")
    assert response.status_code == 302
    click_id = parse_qs(urlsplit(response.headers["Location"]).query)["click"][0]
    click = Click.get(*Click.key(click_id))
    assert click.code == other_code and click.link_id is None and click.channel == "other"


def test_links_keep_working_after_a_vanity_change(client):
    token = login(client, "a")
    link = new_link(client, token)
    assert client.put("/v1/members/me/code", {"code": "LILY2026"}, token=token).status_code == 200
    response = client.get(link["url"].removeprefix(BASE))
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["ref"] == [link["code"]]  # the old code, still the same member's
    assert new_link(client, token)["code"] == "LILY2026"


def test_links_per_member_per_day_are_capped_with_a_clear_429(client):
    from datetime import timedelta

    from chalicelib.core import clock
    from chalicelib.referrals.links import LINKS_PER_DAY

    response = client.post("/v1/auth/login", {"provider": "dev", "openid": "busy"})
    member_token = response.json_body["access_token"]
    made = [client.post("/v1/links", {"channel": "qq"}, token=member_token).status_code
            for _ in range(LINKS_PER_DAY)]
    assert made == [201] * LINKS_PER_DAY
    over = client.post("/v1/links", {"channel": "qq"}, token=member_token)
    assert over.status_code == 429 and over.json_body["error"]["code"] == "link_limit_reached"
    assert 1 <= int(over.headers["Retry-After"]) <= 86400
    other = client.post("/v1/auth/login", {"provider": "dev", "openid": "calm"}).json_body["access_token"]
    assert client.post("/v1/links", {"channel": "qq"}, token=other).status_code == 201
    clock.advance(timedelta(days=1))
    member_token = client.post("/v1/auth/login", {"provider": "dev", "openid": "busy"}).json_body["access_token"]
    assert client.post("/v1/links", {"channel": "qq"}, token=member_token).status_code == 201


def _links_today(member_id: str) -> int:
    from chalicelib.core import clock
    from chalicelib.referrals.models import LinkQuota

    try:
        return int(LinkQuota.get(*LinkQuota.key(member_id, clock.iso(clock.now())[:10]), consistent_read=True).links)
    except LinkQuota.DoesNotExist:
        return 0


def test_a_request_re_run_with_its_idempotency_key_counts_one_link(client):
    from chalicelib.referrals import links

    response = client.post("/v1/auth/login", {"provider": "dev", "openid": "rerun"})
    member_token, member_id = response.json_body["access_token"], response.json_body["member"]["member_id"]
    died = links.create(member_id, "qq", request_key="share-1")  # a first run that died before answering
    again = client.post("/v1/links", {"channel": "qq"}, token=member_token, headers={"Idempotency-Key": "share-1"})
    assert again.status_code == 201 and again.json_body["link_id"] == died.link_id
    assert _links_today(member_id) == 1
    other = client.post("/v1/links", {"channel": "qq"}, token=member_token, headers={"Idempotency-Key": "share-2"})
    assert other.json_body["link_id"] != died.link_id and _links_today(member_id) == 2


def test_a_link_write_re_sent_after_its_answer_was_lost_counts_once(client, monkeypatch):
    from chalicelib.referrals import links

    response = client.post("/v1/auth/login", {"provider": "dev", "openid": "resent"})
    member_id = response.json_body["member"]["member_id"]
    monkeypatch.setattr(links.secrets, "token_urlsafe", lambda n: "resentlink01")  # the same call, twice
    assert links.create(member_id, "qq").link_id == links.create(member_id, "qq").link_id == "resentlink01"
    assert _links_today(member_id) == 1
