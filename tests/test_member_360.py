"""Member 360 for ops: a chain A → B → C → D with purchases converting some, a flagged sign-up,
and what ops see: two levels up, counts two levels down (exact under replay, following voids and
refunds), identities masked, the ledger summed, the timeline; members get 403, nobody 404."""
from __future__ import annotations

import json

from chalicelib.members import wechat
from tests.flows import OPS, code_of, purchase, refund, signup, spring_campaign
from tests.helpers import count_dynamodb_calls, token
from tests.ledger_checks import entries

RAW_OPENID = "oWx3f9Kq2LmZ8pR7tY-raw-openid"
SHARED_DEVICE = "device-4f1c2e9a7b"


def view(client, member_id, **query):
    path = f"/v1/ops/members/{member_id}" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    response = client.get(path, token=OPS)
    assert response.status_code == 200, response.body
    return response.json_body, response.body.decode()


def chain(client, streams, monkeypatch):
    """A (WeChat login) → B, B2; B → C, C2 (C2 on B's device: flagged); C → D. B, C and D buy;
    B2 and C2 do not. Returns the member ids by name."""
    spring_campaign(client)
    monkeypatch.setattr(wechat, "code_to_session", lambda code: {"openid": RAW_OPENID})
    login = client.post("/v1/auth/login", {"provider": "wechat", "code": "js-code", "display_name": "Ada"})
    assert login.status_code == 200, login.body
    ids = {"A": login.json_body["member"]["member_id"]}
    for name, referrer, extra in (("B", "A", {"device_id": SHARED_DEVICE}), ("B2", "A", {}), ("C", "B", {}),
                                  ("C2", "B", {"device_id": SHARED_DEVICE}), ("D", "C", {})):
        signup(client, name, code_of(ids[referrer], "spring"), display_name=f"Member {name}", **extra)
        ids[name] = name
    for name in ("B", "C", "D"):
        assert purchase(client, f"o-{name}", name, 120_00).status_code == 200
    streams.drain()
    return ids


def test_two_levels_up_and_down_identities_ledger_flags_timeline(client, streams, monkeypatch):
    ids = chain(client, streams, monkeypatch)

    a, a_text = view(client, ids["A"])
    assert a["member"]["display_name"] == "Ada" and a["upline"] == [] and a["referral"] is None
    assert a["downline"] == {"level_1": {"signed_up": 2, "converted": 1}, "level_2": {"signed_up": 2, "converted": 1}}
    # the WeChat openid is masked, and appears nowhere in the answer
    assert a["identities"] == [{"provider": "wechat", "subject": "oWx…id", "created_at": a["member"]["created_at"]}]
    assert RAW_OPENID not in a_text and RAW_OPENID[3:-2] not in a_text
    assert [c["campaign_id"] for c in a["codes"]] == ["spring"]

    # D sees C and B above, never A
    d, d_text = view(client, "D")
    assert [(u["level"], u["member_id"], u["display_name"]) for u in d["upline"]] == \
        [(1, "C", "Member C"), (2, "B", "Member B")]
    assert ids["A"] not in d_text
    assert d["referral"]["status"] == "converted" and d["referral"]["converting_order_id"] == "o-D"

    # B: her downline (C converted, C2 flagged on her device), her own referral, and her ledger
    b, b_text = view(client, "B")
    assert b["downline"] == {"level_1": {"signed_up": 2, "converted": 1}, "level_2": {"signed_up": 1, "converted": 1}}
    assert [(u["level"], u["display_name"]) for u in b["upline"]] == [(1, "Ada")]
    flags = [(f["role"], f["referee_id"], f["status"], f["reasons"]) for f in b["fraud_flags"]]
    assert flags == [("referrer", "C2", "open", ["shared_device"])]
    assert SHARED_DEVICE not in b_text and b["member"]["fingerprints"]["device_id"] == "dev…7b"
    assert b["identities"] == [{"provider": "backend", "subject": "B", "created_at": b["member"]["created_at"]}]
    stored = entries("B")
    sums = {"available": 0, "pending": 0}
    for e in stored:
        if e.bucket:
            sums[e.bucket] += e.standing
    assert b["ledger"]["balances"] == sums and sums["pending"] > 0  # conversion, commission, own purchase
    newest = sorted(stored, key=lambda e: e.created_at, reverse=True)
    assert [e["entry_id"] for e in b["ledger"]["recent"]] == [e.entry_id for e in newest][:10]

    # C2, the flagged referee: the flag and its hold on her side, and in her timeline
    c2, _ = view(client, "C2")
    assert [(f["role"], f["status"]) for f in c2["fraud_flags"]] == [("referee", "open")]
    assert c2["referral"]["hold"] == "fraud_review"
    assert "flagged" in [t["kind"] for t in c2["timeline"]]

    # C: the timeline joins the sources, newest first
    c, _ = view(client, "C")
    kinds = {(t["source"], t["kind"]) for t in c["timeline"]}
    assert {("referral", "joined"), ("referral", "converted"), ("orders", "purchase"), ("lifecycle", "stage")} <= kinds
    ats = [t["at"] for t in c["timeline"]]
    assert ats == sorted(ats, reverse=True)
    joined = next(t for t in c["timeline"] if t["kind"] == "joined")
    assert (joined["referred_by"], joined["channel"]) == ("B", "code")
    assert len(view(client, "C", timeline_limit=2)[0]["timeline"]) == 2


def test_second_level_counts_follow_voids_and_refunds_and_survive_replay(client, streams, monkeypatch):
    ids = chain(client, streams, monkeypatch)
    streams.replay_from_start()
    assert streams.drain() > 0
    assert view(client, ids["A"])[0]["downline"]["level_2"] == {"signed_up": 2, "converted": 1}

    # ops reject C2's referral: it stops counting for B (level 1) and for A (level 2)
    assert client.post("/v1/ops/fraud-flags/C2/resolve", {"action": "reject"}, token=OPS).status_code == 200
    # C's purchase is refunded in full: her conversion is undone at both levels
    assert refund(client, "o-C", "r-C", 120_00).status_code == 200
    streams.drain()
    a = view(client, ids["A"])[0]["downline"]
    b_view = view(client, "B")[0]
    assert a == {"level_1": {"signed_up": 2, "converted": 1}, "level_2": {"signed_up": 1, "converted": 0}}
    assert b_view["downline"]["level_1"] == {"signed_up": 1, "converted": 0}
    # the refund came within 48 hours: C's referral is flagged too, under B, newest first
    assert [(f["referee_id"], f["status"], f["reasons"]) for f in b_view["fraud_flags"]] == \
        [("C", "open", ["quick_refund"]), ("C2", "rejected", ["shared_device"])]
    streams.replay_from_start()
    streams.drain()
    assert view(client, ids["A"])[0]["downline"] == a


def test_reads_are_a_few_calls_whatever_the_downline(client, streams, monkeypatch):
    ids = chain(client, streams, monkeypatch)
    with count_dynamodb_calls() as small:
        view(client, ids["A"])
    for n in range(6):  # more referees under A, and under them
        signup(client, f"X{n}", code_of(ids["A"], "spring"))
        signup(client, f"Y{n}", code_of(f"X{n}", "spring"))
    streams.drain()
    with count_dynamodb_calls() as large:
        assert view(client, ids["A"])[0]["downline"]["level_2"]["signed_up"] == 8
    # the rate limiter shares its count now and then (an UpdateItem, by time): the reads are what grows
    assert [c for c in large.calls if c != "UpdateItem"] == [c for c in small.calls if c != "UpdateItem"]
    assert large.count("Scan") == 0
    assert large.count("BatchGetItem") == 1  # A has nobody above: the upline needs no second batch
    with count_dynamodb_calls() as d:
        view(client, "D")
    assert d.count("BatchGetItem") == 2 and d.count("Scan") == 0 and d.reads <= 9


def test_members_are_refused_and_unknown_members_are_404(client):
    ids = {"A": signup(client, "A")["member"]["member_id"]}
    own = client.get(f"/v1/ops/members/{ids['A']}", token=token(ids["A"]))
    assert own.status_code == 403 and own.json_body["error"]["code"] == "wrong_role"
    for unknown in ("m_nobody", "x" * 300):
        response = client.get(f"/v1/ops/members/{unknown}", token=OPS)
        assert response.status_code == 404 and response.json_body["error"]["code"] == "member_not_found"
    assert client.get(f"/v1/ops/members/{ids['A']}?timeline_limit=0", token=OPS).status_code == 422
    admin = client.get(f"/v1/ops/members/{ids['A']}", token=token("root", "admin"))
    assert admin.status_code == 200 and json.loads(admin.body)["member"]["member_id"] == ids["A"]


def test_pure_rules():
    import doctest

    from chalicelib.core.masking import mask_secret
    from chalicelib.referrals import downline

    result = doctest.testmod(downline)
    assert result.attempted >= 2 and result.failed == 0
    for secret in ("oWx3f9Kq2LmZ8pR7tY", "13800138000", "a1b2c3", "abc"):
        shown = mask_secret(secret).replace("…", "")
        assert len(shown) * 3 <= len(secret) and secret not in mask_secret(secret)
