"""Personal data: a member's export holds every stored personal field; an admin's erasure leaves
none of them findable by any key or index (and, checked here by a test-only Scan, nowhere but the
documented copies in other people's records), keeps ledgers, balances and campaign totals, is
audited, idempotent and admin only; the erased openid logging in again is a new, unlinked member.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.core import aws
from chalicelib.engagement.models import DeviceDay
from chalicelib.members.models import Identity, Member
from chalicelib.privacy import inventory
from chalicelib.referrals.models import Click, ClickCounter, Code, Link
from chalicelib.store.base import table_name
from chalicelib.webhooks import delivery
from tests.flows import OPS, SERVICE, code_of, login, purchase, refund, signed_up, spring_campaign
from tests.helpers import token
from tests.test_engagement import assist, open_share
from tests.webhook_receiver import Receiver

ADMIN = token("ada-admin", "admin")
NAME, OPENID, DEVICE, VANITY, BIRTHDAY = "王丽 Lily Wang", "lily-openid-7f3a9", "dev-lily-42aa", "WANGLILY", "07-14"


@pytest.fixture
def receiver():
    box = Receiver()
    yield box
    box.close()


def click(client, code: str, user_agent: str) -> str:
    response = client.get(f"/r/{code}", headers={"User-Agent": user_agent})
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["click"][0]


def ok(response, status: int = 200):
    assert response.status_code == status, response.body
    return response.json_body


def history(client, streams, receiver) -> dict:
    """Lily: logged in by openid through Ada's click, with a birthday, a vanity code and a link;
    bought, got a refund, checked in, assisted (flagged for her device), claimed a red packet,
    and referred Max through her vanity code; a webhook received events about all of it."""
    spring_campaign(client, assist_target=3, assists_per_device_per_day=1, budget_fen=100_00, hold_days=0)
    ok(client.post("/v1/ops/webhooks", {"url": receiver.url, "events": ["member.created", "referral.bound",
                                                                     "referral.converted", "reward.pending"]},
                   token=ADMIN), 201)
    _, ada, _ = login(client, "ada-openid", "Ada")
    lily_click = click(client, code_of(ada, "spring"), "lily-phone/1.0")
    lily_token, lily, _ = login(client, OPENID, NAME, referral={"code": code_of(ada, "spring"), "click_id": lily_click},
                                device_id=DEVICE)
    ok(client.put("/v1/members/me/preferences", {"birthday": BIRTHDAY, "marketing_opt_in": True,
                                                 "channels": ["wechat"]}, token=lily_token))
    ok(client.put("/v1/members/me/code", {"code": VANITY, "campaign_id": "spring"}, token=lily_token))
    link = ok(client.post("/v1/links", {"campaign_id": "spring", "channel": "wechat_moments"}, token=lily_token), 201)
    max_click = click(client, VANITY, "max-phone/2.0")
    _, max_id, _ = login(client, "max-openid", "Max", referral={"code": VANITY, "click_id": max_click})
    assert purchase(client, "o-lily-1", lily, 120_00).status_code == 200
    assert refund(client, "o-lily-1", "r-lily-1", 20_00).status_code == 200
    assert purchase(client, "o-max-1", max_id, 90_00).status_code == 200
    ok(client.post("/v1/checkins", {"campaign_id": "spring"}, token=lily_token))
    share = open_share(client, ada)
    assert assist(client, share["share_id"], lily).status_code == 200  # reaches the device's day limit: a flag
    packet = ok(client.post("/v1/red-packets", {"campaign_id": "spring", "total_fen": 300, "count": 3,
                                                "expires_at": "2099-01-01T00:00:00Z"}, token=OPS), 201)
    ok(client.post(f"/v1/red-packets/{packet['packet_id']}/claims", token=lily_token,
                   headers={"Idempotency-Key": "c1"}))
    streams.drain()
    delivery.send_due()
    fingerprint = Click.get(*Click.key(lily_click)).fingerprint
    return {"ada": ada, "lily": lily, "max": max_id, "lily_token": lily_token, "lily_click": lily_click,
            "link_id": link["link_id"], "fingerprint": fingerprint, "packet": packet["packet_id"]}


def everything() -> list[tuple[str, dict]]:
    """Every item of every table, raw (a test-only Scan: the oracle the service never uses)."""
    ddb = aws.dynamodb()
    rows = []
    for logical in ("main", "clicks", "control", "boards"):
        for page in ddb.get_paginator("scan").paginate(TableName=table_name(logical)):
            rows += [(logical, item) for item in page["Items"]]
    return rows


def text(item: dict) -> str:
    return json.dumps(item, ensure_ascii=False, default=repr)


def holding(value: str) -> list[tuple[str, dict]]:
    return [(logical, item) for logical, item in everything() if value in text(item)]


def where(rows) -> list[str]:
    return sorted(f"{item['type']['S']}:{item['pk']['S']}" for _, item in rows)


def hers(raw: dict, kind: str, known: dict) -> bool:
    """Whether a stored item is Lily's own (not another person's record that names her)."""
    pk, lily = raw["pk"]["S"], known["lily"]
    if kind in ("member", "conversion", "ledger_entry", "notification", "timeline", "checkin", "member_code",
                "points_lot", "assister_day", "downline2_fact", "red_packet_allowance"):
        return pk == f"M#{lily}"
    if kind == "click":
        return pk == f"K#{known['lily_click']}"
    if kind == "fraud_flag":
        return pk == f"FLAG#{lily}"
    return raw.get("member_id", {}).get("S") == lily or (kind == "identity" and OPENID in pk)


def plain(stored: dict | None):
    """A stored DynamoDB value as the export renders it (JSON strings decoded)."""
    if not stored:
        return None
    if "S" in stored:
        value = stored["S"]
        return json.loads(value) if value[:1] in "{[" else value
    if "L" in stored:
        return [plain(v) for v in stored["L"]]
    return stored.get("BOOL", stored.get("N"))


def totals(client, ids: list[str]) -> dict:
    """What erasure must not change: every balance and ledger entry, the boards, the funnel."""
    from chalicelib.members.models import member_pk
    from chalicelib.rewards import budget
    from chalicelib.rewards.models import LedgerEntry

    members = {m: Member.get(*Member.key(m), consistent_read=True) for m in ids}
    boards = {metric: [(row["member"]["member_id"], row["score"]) for row in
                       ok(client.get(f"/v1/leaderboards/spring?metric={metric}&period=all", token=OPS))["items"]]
              for metric in ("referrals", "gmv", "points")}
    funnel = ok(client.get("/v1/analytics/campaigns/spring/funnel", token=OPS))
    funnel.pop("generated_at", None)
    return {
        "balances": {m: (int(v.points_available), int(v.points_pending), int(v.points_redeemed), int(v.orders),
                         int(v.gmv_fen), signed_up(m), int(v.referrals_converted), v.referrer_id)
                     for m, v in members.items()},
        "ledger": sorted((e.member_id, e.entry_id, int(e.amount), e.status, int(e.reversed_amount or 0))
                         for m in ids for e in LedgerEntry.query(member_pk(m), LedgerEntry.sk.startswith("LEDGER#"))),
        "budget": budget.totals("spring")["points"],
        "boards": boards, "funnel": funnel,
    }


def test_every_stored_attribute_is_classified():
    assert inventory.unclassified() == []
    assert inventory.personal_fields("member")[:3] == ["display_name", "device_id", "phone_hash"]
    assert inventory.personal_fields("identity") == ["subject"]


def test_the_export_holds_every_personal_field_stored_on_the_member(client, streams, receiver):
    known = history(client, streams, receiver)
    lily = known["lily"]
    exported = ok(client.get("/v1/members/me/export", token=known["lily_token"]))
    assert exported["member_id"] == lily
    profile = exported["profile"]
    assert (profile["display_name"], profile["device_id"], profile["birthday"]) == (NAME, DEVICE, BIRTHDAY)
    items = exported["items"]
    assert [i["subject"] for i in items["identity"]] == [OPENID]
    assert VANITY in {c["code"] for c in items["code"]} and items["link"][0]["link_id"] == known["link_id"]
    assert items["click"][0]["fingerprint"] == known["fingerprint"]
    assert items["red_packet_claim"][0]["display_name"] == NAME
    assert {o["order_id"] for o in items["order"]} == {"o-lily-1"} and items["refund"][0]["refund_id"] == "r-lily-1"
    assert "assist_farming_device" in items["fraud_flag"][0]["reasons"]
    assert {"checkin", "ledger_entry", "notification", "timeline"} <= set(items)
    # The oracle (a test-only Scan): every stored item of hers, of a type the inventory exports,
    # is in the export with every personal value it stores.
    untyped = [raw for _, raw in everything() if "type" not in raw]  # counters written by a bare ADD
    assert {r["pk"]["S"].split("#")[0] for r in untyped} <= {"LINKQ", "RL"}  # link_quota, rate_window: counts
    checked = set()
    for _, raw in everything():
        kind = raw.get("type", {}).get("S")
        if kind is None or not inventory.INVENTORY[kind].exported or not hers(raw, kind, known):
            continue
        exported_items = [profile] if kind == "member" else items.get(kind, [])
        for field in inventory.personal_fields(kind):
            value = plain(raw.get(field))
            if value not in (None, "", {}, [], False):
                assert any(e.get(field) == value for e in exported_items), (kind, field, value)
                checked.add(f"{kind}.{field}")
    assert {"member.display_name", "member.device_id", "member.birthday", "member.channels", "identity.subject",
            "code.code", "member_code.code", "link.url", "click.fingerprint", "notification.payload",
            "red_packet_claim.display_name"} <= checked
    assert "webhook_delivery" not in items and "idempotency" not in items


def test_erasure_leaves_nothing_findable_and_every_total_as_it_was(client, streams, receiver):
    known = history(client, streams, receiver)
    lily, ada, max_id = known["lily"], known["ada"], known["max"]
    before = totals(client, [lily, ada, max_id])

    receipt = ok(client.post(f"/v1/ops/members/{lily}/erase", token=ADMIN))
    assert receipt["member_id"] == lily and receipt["erased_by"] == "ada-admin"
    assert receipt["erased"] == {"clicks": 1, "codes": 2, "device_counters": 1, "identities": 1, "links": 1,
                                 "notification_payloads": receipt["erased"]["notification_payloads"],
                                 "profile_fields": 5, "red_packet_claims": 1}
    streams.drain()
    delivery.send_due()

    # By key and by index: nothing.
    with pytest.raises(Identity.DoesNotExist):
        Identity.get(*Identity.key("dev", OPENID), consistent_read=True)
    for prefix in ("IDS#", "CODES#", "LINKS#"):
        assert list(Member.by_gsi1.query(f"{prefix}{lily}")) == []
    for key, model in ((Code.key(VANITY), Code), (ClickCounter.key(code=VANITY), ClickCounter),
                       (Link.key(known["link_id"]), Link), (Click.key(known["lily_click"]), Click)):
        with pytest.raises(model.DoesNotExist):
            model.get(*key, consistent_read=True)
    assert list(DeviceDay.query(DeviceDay.key("spring", "device", DEVICE, "")[0])) == []
    erased = Member.get(*Member.key(lily), consistent_read=True)
    assert erased.erased_at and not (erased.display_name or erased.device_id or erased.birthday or erased.channels
                                     or erased.referral_click_id or erased.marketing_opt_in)
    # Anywhere at all (a Scan, in the test only): only other people's records of her vanity code remain.
    assert holding(OPENID) == [] and holding(NAME) == [] and holding(DEVICE) == []
    assert holding(known["fingerprint"]) == [] and holding(known["lily_click"]) == []
    # Max's records of how he came: his referral_code, his click, the referral.bound event sent about him.
    remaining = where(holding(VANITY))
    assert [w.split(":")[0] for w in remaining] == ["click", "member", "webhook_delivery"]
    assert f"member:M#{max_id}" in remaining and Member.get(*Member.key(max_id)).referral_code == VANITY

    # Amounts, counts, edges, boards and the funnel are as they were.
    assert totals(client, [lily, ada, max_id]) == before

    # Once: a repeat answers the same receipt; the audit log has it, with counts only.
    assert ok(client.post(f"/v1/ops/members/{lily}/erase", token=ADMIN)) == receipt
    log = ok(client.get("/v1/ops/audit-log", token=ADMIN))["items"]
    assert [(r["action"], r["target"]) for r in log if r["action"] == "member.erase"] == [("member.erase",
                                                                                           f"member:{lily}")]

    # Her old token acts for nobody; her openid logging in again is somebody new.
    assert client.get("/v1/members/me", token=known["lily_token"]).status_code == 404
    assert client.get("/v1/members/me/export", token=known["lily_token"]).status_code == 404
    assert client.put("/v1/members/me/preferences", {"birthday": BIRTHDAY},
                      token=known["lily_token"]).status_code == 404
    assert client.post("/v1/checkins", {"campaign_id": "spring"}, token=known["lily_token"]).status_code == 401
    assert client.get("/v1/members/me/code?campaign_id=spring", token=known["lily_token"]).status_code == 401
    _, again, answer = login(client, OPENID, NAME)
    assert answer["created"] is True and again != lily
    assert Member.get(*Member.key(again)).referrer_id is None
    assert [i.member_id for i in Identity.of_member(again)] == [again]
    assert Member.get(*Member.key(lily)).erased_at == erased.erased_at


def test_a_replayed_stream_writes_no_personal_data_back(client, streams, receiver):
    known = history(client, streams, receiver)
    ok(client.post(f"/v1/ops/members/{known['lily']}/erase", token=ADMIN))
    streams.drain()
    streams.replay_from_start()  # every record again, her sign-up's INSERT image (with her name) included
    streams.drain()
    assert holding(NAME) == [] and holding(DEVICE) == [] and holding(OPENID) == []


def test_a_backend_member_is_erased_with_their_phone_hash(client, streams):
    spring_campaign(client, assist_target=3, assists_per_device_per_day=1)
    _, sam, _ = login(client, "sam", "Sam")
    phone = "ab" * 16
    ok(client.post("/v1/events/signups", {"member_id": "crm-77", "display_name": "Bo Chen", "phone_hash": phone,
                                          "device_id": "dev-bo"}, token=SERVICE))
    assert assist(client, open_share(client, sam)["share_id"], "crm-77").status_code == 200
    assert holding(phone)
    receipt = ok(client.post("/v1/ops/members/crm-77/erase", token=ADMIN))
    assert receipt["erased"]["device_counters"] == 2 and receipt["erased"]["identities"] == 1
    assert holding(phone) == [] and holding("Bo Chen") == []
    # The brand cannot bring the erased id back: its identity is gone, the id stays taken.
    again = client.post("/v1/events/signups", {"member_id": "crm-77", "display_name": "Bo"}, token=SERVICE)
    assert again.status_code == 409 and again.json_body["error"]["code"] == "member_id_taken"


def test_only_admins_erase_and_only_known_members(client):
    _, lily, _ = login(client, "lily", "Lily")
    for who, status in ((token(lily), 403), (OPS, 403), (SERVICE, 403)):
        assert client.post(f"/v1/ops/members/{lily}/erase", token=who).status_code == status
    assert client.get("/v1/members/me", token=token(lily)).status_code == 200  # nothing was erased
    missing = client.post("/v1/ops/members/m_nobody/erase", token=ADMIN)
    assert missing.status_code == 404 and missing.json_body["error"]["code"] == "member_not_found"
    assert client.get("/v1/members/me/export", token=OPS).status_code == 403


@pytest.mark.ddblocal_only
def test_logins_racing_an_erasure_get_the_old_member_before_it_or_one_new_member_after(client):
    from tests.test_engagement import concurrently

    _, lily, _ = login(client, OPENID, NAME)

    def call(i: int):
        if i == 0:
            return client.post(f"/v1/ops/members/{lily}/erase", token=ADMIN)
        return client.post("/v1/auth/login", {"provider": "dev", "openid": OPENID, "display_name": NAME})

    answers = concurrently(9, call)
    assert answers[0].status_code == 200, answers[0].body
    ids = {ok(a)["member"]["member_id"] for a in answers[1:]}
    assert len(ids - {lily}) <= 1  # every login after the erasure found the same new member
    now = login(client, OPENID, NAME)[1]
    assert now != lily and ids - {lily} <= {now}
    assert Identity.get(*Identity.key("dev", OPENID), consistent_read=True).member_id == now
    assert Member.get(*Member.key(lily), consistent_read=True).erased_at
    assert [i.member_id for i in Identity.of_member(lily)] == []
