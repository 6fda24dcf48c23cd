"""Building blocks for flow tests: members, codes, facts, through the real HTTP API."""
from __future__ import annotations

from tests.helpers import token

SERVICE = token("brand-backend", "service")
OPS = token("olivia", "ops")


def spring_campaign(client, campaign_id: str = "spring", **rules):
    """A running campaign with a 500-point conversion reward and 3 % commission; `rules` override."""
    body = {"campaign_id": campaign_id, "name": "Spring", "landing_url": "https://shop.example.com/spring",
            "rules": {"min_purchase_fen": 50_00, "referrer_conversion_points": 500,
                      "advocate_levels": [{"name": "friend", "min_conversions": 0, "commission_bps": 300}],
                      "hold_days": 7, **rules}}
    response = client.post("/v1/campaigns", body, token=OPS)
    assert response.status_code == 200, response.body
    return response.json_body


def change_rules(client, campaign: dict, **rules) -> None:
    """PUT the campaign as created with `rules` changed (a token issued now: tests move the clock)."""
    body = {**{k: campaign[k] for k in ("campaign_id", "name", "landing_url")}, "rules": {**campaign["rules"], **rules}}
    answer = client.put(f"/v1/campaigns/{campaign['campaign_id']}", body, token=token("olivia", "ops"))
    assert answer.status_code == 200, answer.body


def login(client, openid: str, name: str = "Lily", referral: dict | None = None, device_id: str | None = None):
    body = {"provider": "dev", "openid": openid, "display_name": name}
    if referral:
        body["referral"] = referral
    if device_id:
        body["device_id"] = device_id
    response = client.post("/v1/auth/login", body)
    assert response.status_code == 200, response.body
    data = response.json_body
    return data["access_token"], data["member"]["member_id"], data


def code_of(member_id: str, campaign_id: str | None = None) -> str:
    from chalicelib.referrals.codes import code_for

    return code_for(member_id, campaign_id).code


def signup(client, member_id: str, code: str | None = None, **extra):
    body = {"member_id": member_id, "display_name": extra.pop("display_name", member_id), **extra}
    if code:
        body["referral"] = {"code": code}
    response = client.post("/v1/events/signups", body, token=SERVICE)
    assert response.status_code == 200, response.body
    return response.json_body


def purchase(client, order_id: str, member_id: str, amount_fen: int, **extra):
    return client.post("/v1/events/purchases", {"order_id": order_id, "member_id": member_id,
                                                "amount_fen": amount_fen, **extra}, token=SERVICE)


def refund(client, order_id: str, refund_id: str, amount_fen: int, **extra):
    return client.post("/v1/events/refunds", {"order_id": order_id, "refund_id": refund_id,
                                              "amount_fen": amount_fen, **extra}, token=SERVICE)


def member(member_id: str):
    from chalicelib.members.models import Member

    return Member.get(*Member.key(member_id), consistent_read=True)


def signed_up(member_id: str) -> int:
    """Friends signed up through the member, as their profile counts them (every shard)."""
    from chalicelib.members.models import with_signups

    return with_signups(member_id, consistent=True)[1]
