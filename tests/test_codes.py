"""Referral codes: stability, vanity rules, collisions, public lookup (both backends)."""
from __future__ import annotations

import doctest
import itertools

import pytest

from chalicelib.campaigns import service as campaigns
from chalicelib.campaigns.rules import CampaignIn
from chalicelib.core import clock, ratelimit
from chalicelib.referrals import clicks, codes, counters, links, rules
from chalicelib.members.models import Member
from chalicelib.referrals.models import Code, MemberCode
from tests.helpers import count_dynamodb_calls

BASE = "https://ref.example.com"


def login(client, openid: str, name: str = "张三") -> tuple[str, str]:
    response = client.post("/v1/auth/login", {"provider": "dev", "openid": openid, "display_name": name})
    assert response.status_code == 200, response.body
    return response.json_body["access_token"], response.json_body["member"]["member_id"]


def add_campaign(campaign_id: str, **fields) -> None:
    spec = CampaignIn(campaign_id=campaign_id, name=f"Campaign {campaign_id}", offer="¥10 off",
                      landing_url=f"https://shop.example.com/{campaign_id}", **fields)
    campaigns._item(spec, 1, clock.now_iso()).save()


def members(*member_ids: str) -> None:
    for member_id in member_ids:
        Member.new(member_id, clock.now_iso()).save()


def my_code(client, token: str, campaign_id: str | None = None) -> dict:
    path = "/v1/members/me/code" + (f"?campaign_id={campaign_id}" if campaign_id else "")
    response = client.get(path, token=token)
    assert response.status_code == 200, response.body
    return response.json_body


# -- pure rules ---------------------------------------------------------------------------

@pytest.mark.parametrize("module", [rules, links, clicks, counters])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_generated_codes_skip_look_alikes_and_offensive_draws():
    spell = [rules.ALPHABET.index(c) for c in "FUCKABC" + "HJKMNPQ"]
    draws = iter(spell)
    code = rules.generate_code(randbelow=lambda n: next(draws))
    assert code == "HJKMNPQ"  # FUCKABC was drawn first and thrown away
    for _ in range(200):
        code = rules.generate_code()
        assert len(code) == rules.CODE_LENGTH and not set(code) & set("01OIL")


@pytest.mark.parametrize("raw,reason", [
    ("abc", "format"), ("A" * 17, "format"), ("AB-CD", "format"), ("张三三三", "format"), ("", "format"),
    ("admin", "reserved"), ("Official", "reserved"),
    ("fuckyou", "offensive"), ("SH1TCODE", "offensive"), ("x5LUTx", "offensive"),
])
def test_vanity_rules(raw, reason):
    with pytest.raises(rules.VanityRejected) as caught:
        rules.normalize_vanity(raw)
    assert caught.value.reason == reason


def test_vanity_is_case_insensitive():
    assert rules.normalize_vanity(" lily2026 ") == "LILY2026"


# -- codes over HTTP ----------------------------------------------------------------------

def test_code_is_stable_per_member_and_campaign(client):
    token, _ = login(client, "a")
    first = my_code(client, token)
    assert my_code(client, token) == first
    assert first["campaign_id"] == "default"
    assert first["url"] == f"{BASE}/r/{first['code']}"
    assert len(first["code"]) == rules.CODE_LENGTH and set(first["code"]) <= set(rules.ALPHABET)

    add_campaign("spring")
    other = my_code(client, token, "spring")
    assert other["campaign_id"] == "spring" and other["code"] != first["code"]
    assert my_code(client, token, "spring") == other

    token_b, _ = login(client, "b")
    assert my_code(client, token_b)["code"] != first["code"]


def test_code_needs_a_member_and_a_known_campaign(client):
    assert client.get("/v1/members/me/code").status_code == 401
    token, _ = login(client, "a")
    response = client.get("/v1/members/me/code?campaign_id=nope", token=token)
    assert response.status_code == 404
    assert response.json_body["error"]["code"] == "campaign_not_found"


@pytest.mark.parametrize("raw,code", [("ab", "vanity_format"), ("AB_CD", "vanity_format"),
                                      ("admin", "vanity_reserved"), ("sh1tcode", "vanity_offensive")])
def test_vanity_refusals_are_422_and_write_nothing(client, raw, code):
    token, member_id = login(client, "a")
    response = client.put("/v1/members/me/code", {"code": raw}, token=token)
    assert response.status_code == 422
    assert response.json_body["error"]["code"] == code
    assert codes.current(member_id, "default") is None


def test_vanity_code_old_code_keeps_resolving(client):
    token, member_id = login(client, "a")
    old = my_code(client, token)["code"]
    response = client.put("/v1/members/me/code", {"code": "lily2026"}, token=token)
    assert response.status_code == 200, response.body
    assert response.json_body == {"code": "LILY2026", "campaign_id": "default", "url": f"{BASE}/r/LILY2026"}
    assert my_code(client, token)["code"] == "LILY2026"
    for code in (old, "LILY2026", "lily2026"):
        resolved = codes.resolve(code)
        assert resolved is not None and resolved.member_id == member_id
    assert codes.resolve("LILY2026").kind == "vanity"
    # setting it again, in any case, is the same answer
    again = client.put("/v1/members/me/code", {"code": "Lily2026"}, token=token)
    assert again.status_code == 200 and again.json_body["code"] == "LILY2026"


def test_vanity_before_any_code_still_creates_the_stable_one(client):
    token, member_id = login(client, "a")
    assert client.put("/v1/members/me/code", {"code": "LILY2026"}, token=token).status_code == 200
    owned = [c for c in Code.scan() if c.member_id == member_id]
    assert sorted(c.kind for c in owned) == ["generated", "vanity"]


def test_taken_vanity_code_is_409_in_any_case(client):
    token_a, member_a = login(client, "a")
    token_b, member_b = login(client, "b")
    assert client.put("/v1/members/me/code", {"code": "lily2026"}, token=token_a).status_code == 200
    taken = client.put("/v1/members/me/code", {"code": "LiLy2026"}, token=token_b)
    assert taken.status_code == 409 and taken.json_body["error"]["code"] == "code_taken"
    # someone's generated code is taken too
    generated_b = my_code(client, token_b)["code"]
    clash = client.put("/v1/members/me/code", {"code": generated_b.lower()}, token=token_a)
    assert clash.status_code == 409
    assert codes.resolve("LILY2026").member_id == member_a
    assert codes.resolve(generated_b).member_id == member_b


def test_vanity_body_refuses_extra_fields(client):
    token, _ = login(client, "a")
    response = client.put("/v1/members/me/code", {"code": "LILY2026", "member_id": "someone"}, token=token)
    assert response.status_code == 422


def test_a_token_for_a_member_who_does_not_exist_is_401_and_writes_nothing(client):
    from tests.helpers import token

    ghost = token("m_ghost")
    calls = [client.get("/v1/members/me/code", token=ghost),
             client.put("/v1/members/me/code", {"code": "GHOST2026"}, token=ghost),
             client.post("/v1/links", {"channel": "qq"}, token=ghost)]
    assert [(r.status_code, r.json_body["error"]["code"]) for r in calls] == [(401, "unknown_member")] * 3
    assert list(Code.scan()) == [] and codes.current("m_ghost", "default") is None
    real, member_id = login(client, "a")
    assert my_code(client, real)["code"]  # a member who exists still gets one


def test_a_campaign_not_running_looks_exactly_like_an_unknown_one(client):
    token, member_id = login(client, "a")
    add_campaign("ended", starts_at="2020-01-01T00:00:00Z", ends_at="2020-02-01T00:00:00Z")
    add_campaign("paused", status="paused")
    add_campaign("later", starts_at="2099-01-01T00:00:00Z")
    answers = {}
    for campaign_id in ("ended", "paused", "later", "nosuch"):
        response = client.get(f"/v1/members/me/code?campaign_id={campaign_id}", token=token,
                              headers={"Accept-Language": "en"})
        error = response.json_body["error"]
        answers[campaign_id] = (response.status_code, error["code"], error["message"])
        assert codes.current(member_id, campaign_id) is None
    assert set(answers.values()) == {(404, "campaign_not_found", "no running campaign with this id")}


# -- collisions ---------------------------------------------------------------------------

def test_forced_collisions_retry_until_a_free_code(backend):
    members("m1", "m2")
    first = codes.code_for("m1", generate=lambda: "TAKEN22")
    assert first.code == "TAKEN22"
    draws = iter(["TAKEN22", "taken22", "FREE234"])
    second = codes.code_for("m2", generate=lambda: next(draws))
    assert second.code == "FREE234"
    assert codes.resolve("TAKEN22").member_id == "m1"  # never two owners
    assert codes.resolve("FREE234").member_id == "m2"


def test_collisions_every_time_give_up_without_writing(backend):
    members("m1", "m2")
    codes.code_for("m1", generate=lambda: "TAKEN22")
    with pytest.raises(codes.CodeSpaceExhausted):
        codes.code_for("m2", generate=lambda: "TAKEN22")
    assert codes.current("m2", "default") is None
    assert [c.member_id for c in Code.scan()] == ["m1"]


def test_concurrent_first_calls_agree_on_one_code(backend, monkeypatch):
    members("m1")
    winner = codes.code_for("m1", generate=lambda: "WINNER2")
    real_current = codes.current
    calls = itertools.count()
    # The loser read "no code yet" just before the winner wrote: replay that moment.
    monkeypatch.setattr(codes, "current", lambda *a, **k: None if next(calls) == 0 else real_current(*a, **k))
    loser = codes.code_for("m1", generate=lambda: "LOSER23")
    assert loser.code == winner.code == "WINNER2"
    assert codes.resolve("LOSER23") is None
    assert MemberCode.get(*MemberCode.key("m1", "default")).code == "WINNER2"


# -- public lookup ------------------------------------------------------------------------

def test_lookup_shows_campaign_and_masked_referrer(client):
    token, _ = login(client, "a", name="张三丰")
    code = my_code(client, token)["code"]
    response = client.get(f"/v1/codes/{code.lower()}")
    assert response.status_code == 200
    assert response.json_body == {
        "valid": True, "code": code,
        "campaign": {"campaign_id": "default", "name": "Invite friends", "offer": "¥20 off your first order"},
        "referrer": {"display_name": "张**"},
    }


@pytest.mark.parametrize("case", ["unknown", "junk", "disabled", "ended", "paused", "over"])
def test_lookup_of_unusable_code_is_200_invalid(client, case):
    token, member_id = login(client, "a")
    code = my_code(client, token)["code"]
    if case == "unknown":
        code = "NOSUCH2"
    elif case == "junk":
        code = "%3Cscript%3E"
    elif case == "disabled":
        item = codes.resolve(code)
        item.status = "disabled"
        item.save()
    else:
        status = {"ended": "ended", "paused": "paused", "over": "active"}[case]
        ends = "2020-01-01T00:00:00Z" if case == "over" else None
        add_campaign("gone")
        code = my_code(client, token, "gone")["code"]  # issued while it ran
        add_campaign("gone", status=status, ends_at=ends)
    response = client.get(f"/v1/codes/{code}")
    assert response.status_code == 200
    assert response.json_body == {"valid": False}


def test_lookup_costs_two_read_calls(client, monkeypatch):
    token, _ = login(client, "a")
    code = my_code(client, token)["code"]
    monkeypatch.setattr(ratelimit, "FLUSH_SECONDS", 10**9)  # flush by count only: no clock in the test
    client.get(f"/v1/codes/{code}")  # a warm instance: what only the first call pays is left out
    n = 10
    with count_dynamodb_calls() as calls:
        for _ in range(n):
            assert client.get(f"/v1/codes/{code}").json_body["valid"] is True
    assert calls.count("GetItem") == n and calls.count("BatchGetItem") == n  # 2 read calls a lookup
    assert calls.reads == 2 * n
    assert calls.writes <= 1  # only a rate-limit flush if a new minute began meanwhile
    unknown_reads = None
    with count_dynamodb_calls() as calls:
        client.get("/v1/codes/NOSUCH2")
        unknown_reads = calls.reads
    assert unknown_reads == 1


# -- abuse limits: reserved names, one vanity code, cooling ----------------------------------

@pytest.mark.parametrize("raw", ["NIKE", "apple", "TMALL", "JDCOM", "TAOBAO", "MEITUAN", "LUCKIN", "HEYTEA",
                                 "XIAOMI", "nike2026", "MYTMALLSHOP"])
def test_brand_names_are_reserved_anywhere_in_a_vanity_code(client, raw):
    token, member_id = login(client, "a")
    response = client.put("/v1/members/me/code", {"code": raw}, token=token)
    assert response.status_code == 422 and response.json_body["error"]["code"] == "vanity_reserved"
    assert codes.current(member_id, "default") is None


def test_ops_extend_the_reserved_list(client):
    from tests.helpers import token as mint

    ops = mint("olivia", "ops")
    member_token, _ = login(client, "a")
    assert client.put("/v1/members/me/code", {"code": "ACMEFAN"}, token=member_token).status_code == 200
    assert client.post("/v1/ops/reserved-codes", {"words": ["acme"]}, token=member_token).status_code == 403
    added = client.post("/v1/ops/reserved-codes", {"words": ["acme", "Globex"]}, token=ops)
    assert added.status_code == 200 and added.json_body == {"words": ["ACME", "GLOBEX"]}
    assert client.get("/v1/ops/reserved-codes", token=ops).json_body == {"words": ["ACME", "GLOBEX"]}
    other, _ = login(client, "b")
    refused = client.put("/v1/members/me/code", {"code": "GLOBEX88"}, token=other)
    assert refused.status_code == 422 and refused.json_body["error"]["code"] == "vanity_reserved"
    assert client.post("/v1/ops/reserved-codes", {"words": ["a/b"]}, token=ops).status_code == 422


def test_one_vanity_code_a_change_cools_for_30_days_before_anyone_else_may_take_it(client):
    from datetime import timedelta

    token_a, member_a = login(client, "a")
    token_b, member_b = login(client, "b")
    assert client.put("/v1/members/me/code", {"code": "LILY2026"}, token=token_a).status_code == 200
    assert client.put("/v1/members/me/code", {"code": "ROSE2026"}, token=token_a).status_code == 200
    third = client.put("/v1/members/me/code", {"code": "IRIS2026"}, token=token_a)
    assert third.status_code == 409 and third.json_body["error"]["code"] == "vanity_change_cooling"
    assert codes.resolve("IRIS2026") is None
    assert codes.resolve("LILY2026").member_id == member_a  # shared links keep working while it cools
    early = client.put("/v1/members/me/code", {"code": "LILY2026"}, token=token_b)
    assert early.status_code == 409 and early.json_body["error"]["code"] == "code_taken"
    clock.advance(timedelta(days=31))
    token_a, token_b = login(client, "a")[0], login(client, "b")[0]
    taken = client.put("/v1/members/me/code", {"code": "LILY2026"}, token=token_b)
    assert taken.status_code == 200, taken.body
    assert codes.resolve("LILY2026").member_id == member_b
    assert client.put("/v1/members/me/code", {"code": "IRIS2026"}, token=token_a).status_code == 200
    assert my_code(client, token_a)["code"] == "IRIS2026"
