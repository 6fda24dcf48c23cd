"""A campaign can never be stored in a shape that breaks public endpoints: every rule field is
validated on write, landing URLs are https and never this service, and a bad stored campaign
(written by hand or before a rule was tightened) reads as 'not running', never a 500."""
from __future__ import annotations

import pytest

from tests.flows import code_of, login
from tests.helpers import token

OPS = token("alice", "ops")


def campaign(**overrides) -> dict:
    return {"campaign_id": "spring", "name": "Spring", "landing_url": "https://shop.example.com/spring",
            **overrides}


def rules(**overrides) -> dict:
    return campaign(rules=overrides)


def _refused(client, body: dict, field: str) -> None:
    response = client.post("/v1/campaigns", body, token=OPS)
    assert response.status_code == 422, response.body
    error = response.json_body["error"]
    assert error["code"] == "validation_failed"
    assert any(f["field"].startswith(field) for f in error["details"]["fields"]), error
    assert client.get("/v1/campaigns/spring", token=OPS).status_code == 404


@pytest.mark.parametrize("body, field", [
    (campaign(starts_at="2026-06-01T00:00:00Z", ends_at="2026-05-01T00:00:00Z"), "(body)"),
    (campaign(starts_at="2026-06-01T00:00:00Z", ends_at="2026-06-01T00:00:00Z"), "(body)"),
    (campaign(ends_at="next tuesday"), "ends_at"),
    (rules(min_purchase_fen=-1), "rules.min_purchase_fen"),
    (rules(referee_signup_points=-5), "rules.referee_signup_points"),
    (rules(second_level_bps=10_001), "rules.second_level_bps"),
    (rules(advocate_levels=[{"name": "a", "min_conversions": 5, "commission_bps": 300}]), "rules"),
    (rules(advocate_levels=[{"name": "a", "min_conversions": 0, "commission_bps": 300},
                            {"name": "b", "min_conversions": 0, "commission_bps": 500}]), "rules"),
    (rules(milestones=[{"conversions": 10, "bonus_points": 1}, {"conversions": 3, "bonus_points": 1}]), "rules"),
    (rules(milestones=[{"conversions": 3, "bonus_points": 1}, {"conversions": 3, "bonus_points": 2}]), "rules"),
    (rules(time_zone="Mars/Olympus"), "rules.time_zone"),
    (rules(checkin_streak_bonus={"a week": 50}), "rules.checkin_streak_bonus"),
    (rules(attribution_window_days=0), "rules.attribution_window_days"),
    (rules(hold_days="7"), "rules.hold_days"),
])
def test_every_rule_field_is_validated_on_write(client, body, field):
    _refused(client, body, field)


@pytest.mark.parametrize("url", [
    "ftp://shop.example.com/", "javascript:alert(1)", "https://", "https://user:pw@shop.example.com/",
    "https://shop.example.com:port/", "https://ref.example.com/r/ABCD", "https://REF.example.com:443/welcome",
])
def test_landing_urls_are_https_off_this_service(client, url):
    _refused(client, campaign(landing_url=url), "landing_url")


def test_http_landing_is_local_only(client, configure):
    assert client.post("/v1/campaigns", campaign(landing_url="http://127.0.0.1:3000/shop"),
                       token=OPS).status_code == 200
    configure(STAGE="dev", JWT_SECRET="x" * 40)
    staff = token("alice", "ops")
    response = client.put("/v1/campaigns/spring", campaign(landing_url="http://shop.example.com/"), token=staff)
    assert response.status_code == 422, response.body
    assert response.json_body["error"]["details"]["fields"][0]["field"] == "landing_url"


def test_milestones_are_refused_outside_the_default_campaign_which_pays_them(client):
    """Milestones count an advocate's friends across campaigns and are paid from the default
    campaign's rules: another campaign's would be stored and silently never paid."""
    milestones = [{"conversions": 3, "bonus_points": 300}]
    created = client.post("/v1/campaigns", rules(milestones=milestones), token=OPS)
    assert created.status_code == 422, created.body
    assert created.json_body["error"]["code"] == "milestones_program_wide"
    assert created.json_body["error"]["details"]["fields"][0]["field"] == "rules.milestones"
    assert client.get("/v1/campaigns/spring", token=OPS).status_code == 404
    assert client.post("/v1/campaigns", campaign(), token=OPS).status_code == 200
    changed = client.put("/v1/campaigns/spring", rules(milestones=milestones), token=OPS)
    assert changed.status_code == 422 and changed.json_body["error"]["code"] == "milestones_program_wide"
    dry = client.post("/v1/campaigns/spring/dry-run", {"rules": {"milestones": milestones}, "facts": []}, token=OPS)
    assert dry.status_code == 422 and dry.json_body["error"]["code"] == "milestones_program_wide"
    assert client.get("/v1/campaigns/spring", token=OPS).json_body["version"] == 1
    default = client.get("/v1/campaigns/default", token=OPS).json_body
    body = {k: default[k] for k in ("campaign_id", "name", "landing_url", "rules")}
    body["rules"]["milestones"] = [{"conversions": 2, "bonus_points": 100}]
    assert client.put("/v1/campaigns/default", body, token=OPS).status_code == 200


def test_a_changed_campaign_is_validated_like_a_new_one(client):
    assert client.post("/v1/campaigns", campaign(), token=OPS).status_code == 200
    response = client.put("/v1/campaigns/spring", campaign(ends_at="2026-02-30T00:00:00Z"), token=OPS)
    assert response.status_code == 422
    assert client.get("/v1/campaigns/spring", token=OPS).json_body["version"] == 1


def _corrupt(campaign_id: str, **attributes) -> None:
    from chalicelib.campaigns import service
    from chalicelib.campaigns.models import Campaign

    item = Campaign.get(*Campaign.key(campaign_id))
    for name, value in attributes.items():
        setattr(item, name, value)
    item.save()
    service.clear_caches()


@pytest.mark.parametrize("damage", [
    {"ends_at": "next tuesday"}, {"starts_at": "2026-13-01T00:00:00Z"},
    {"rules": '{"time_zone": "Mars/Olympus"}'}, {"rules": "not json"},
    {"landing_url": "https://ref.example.com/r/LOOP"},
])
def test_a_bad_stored_campaign_breaks_no_public_endpoint(client, damage):
    assert client.post("/v1/campaigns", campaign(), token=OPS).status_code == 200
    _, alice, _ = login(client, "alice-openid", "Alice")
    code = code_of(alice, "spring")
    _corrupt("spring", **damage)

    lookup = client.get(f"/v1/codes/{code}")
    assert lookup.status_code == 200, lookup.body
    click = client.get(f"/r/{code}")
    assert click.status_code == 302, click.body
    assert not click.headers["Location"].startswith("https://ref.example.com/")
    _, _, answer = login(client, "bob-openid", "Bob", referral={"code": code})
    assert answer["created"] is True
    read = client.get("/v1/campaigns/spring", token=OPS)
    assert read.status_code == 200, read.body
    if "landing_url" not in damage:
        assert lookup.json_body == {"valid": False}
        assert answer["attribution"]["reason"] == "campaign_not_running"
