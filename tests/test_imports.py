"""Bulk import (POST /v1/ops/imports): 10,000 rows with 3 % bad ones report exactly those rows
and a re-run changes nothing; imported history pays nothing unless asked, yet the imported graph
pays the referrer on the referee's next live purchase; imported members log in as themselves."""
from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from chalicelib.core import aws
from chalicelib.imports import parallel
from chalicelib.store.base import table_name
from tests.conftest import BACKEND
from tests.flows import SERVICE, login, member, purchase, signed_up, spring_campaign
from tests.helpers import token

ADMIN = token("ada-admin", "admin")


@pytest.fixture(autouse=True)
def threads_only_on_ddblocal(monkeypatch):
    if BACKEND == "moto":  # moto is not thread-safe (PITFALLS)
        monkeypatch.setattr(parallel, "run_all", parallel.in_turn)
        monkeypatch.setattr(LimitedSizeDict, "__setitem__", _sized_setitem)


try:
    from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    from moto.dynamodb.models.utilities import bytesize
    from moto.dynamodb.exceptions import ItemSizeTooLarge
except ImportError:  # the ddblocal pass may run without moto's internals
    LimitedSizeDict = None


def _sized_setitem(self, key, value):
    """moto's 400 KB item check, kept, without re-measuring the whole item on every attribute
    it sets (quadratic in the attributes: most of moto's time on 10,000 imported rows)."""
    def measure(k, v):
        return bytesize(k) + (v.size() if type(v) is DynamoType else bytesize(str(v)))

    total = self.__dict__.get("_bytes")
    if total is None:
        total = sum(measure(k, v) for k, v in self.items())
    if key in self:
        total -= measure(key, self[key])
    total += measure(key, value)
    if total > 405000:
        raise ItemSizeTooLarge
    dict.__setitem__(self, key, value)
    self._bytes = total


def send(client, kind: str, rows: list, as_token: str = ADMIN, **extra):
    return client.post("/v1/ops/imports", {"kind": kind, "rows": rows, **extra}, token=as_token)


def imported(client, kind: str, rows: list, **extra) -> dict:
    response = send(client, kind, rows, **extra)
    assert response.status_code == 200, response.body
    return response.json_body


def items_of(kind: str) -> list[dict]:
    """Every item of one type in the main table (a test may scan; the service never does)."""
    items, start = [], None
    while True:
        page = aws.dynamodb().scan(TableName=table_name("main"), FilterExpression="#t = :t",
                                   ExpressionAttributeNames={"#t": "type"}, ExpressionAttributeValues={":t": {"S": kind}},
                                   **({"ExclusiveStartKey": start} if start else {}))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def table_snapshot() -> dict:
    """The main table's items (but the audit log, which records each call) by key."""
    items, start = {}, None
    while True:
        page = aws.dynamodb().scan(TableName=table_name("main"), **({"ExclusiveStartKey": start} if start else {}))
        for item in page["Items"]:
            if item.get("type", {}).get("S") != "audit":
                items[(item["pk"]["S"], item["sk"]["S"])] = item
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


# -- the 10,000-row import ---------------------------------------------------------------------

def ten_thousand_rows() -> list[tuple[str, list[list[dict]], list[set[tuple[int, str]]]]]:
    """(kind, calls of ≤ 1,000 rows, the (row, error code) each call must reject): 4,000 members,
    1,000 codes, 5,000 purchases; 300 rows (3 %) bad in six ways. Rows are shuffled inside each
    call, so referees often come before their referrers."""
    rng = random.Random(7)
    good_members = 3880
    members = [{"member_id": f"m{i:05d}", "display_name": f"Member {i}", "openid": f"oid-{i}",
                "joined_at": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T08:00:00Z",
                **({"referrer_id": f"m{i // 3:05d}"} if i else {})} for i in range(good_members)]
    calls, expected = [], []
    for c in range(4):
        chunk = members[c * 970:(c + 1) * 970]
        rng.shuffle(chunk)
        bad: list[tuple[dict, str]] = []
        for k in range(6):
            bad.append(({"member_id": f"bd{c}-{k}", "joined_at": "2025-02-30T08:00:00Z"}, "validation_failed"))
            bad.append(({"member_id": f"cy{c}-{k}a", "joined_at": "2025-03-01T08:00:00Z",
                         "referrer_id": f"cy{c}-{k}b"}, "would_create_cycle"))
            bad.append(({"member_id": f"cy{c}-{k}b", "joined_at": "2025-03-01T08:00:00Z",
                         "referrer_id": f"cy{c}-{k}a"}, "would_create_cycle"))
            twin = dict(chunk[k], display_name="Someone else")  # same key, other values, same call
            bad.append((twin, "row_conflict"))
            if c:  # a member of an earlier call, now with another referrer
                earlier = members[(c - 1) * 970 + 100 + k]
                bad.append((dict(earlier, referrer_id="m00001" if earlier.get("referrer_id") != "m00001" else "m00002"),
                            "already_referred"))
            else:
                bad.append(({"member_id": f"self-{k}", "joined_at": "2025-03-01T08:00:00Z",
                             "referrer_id": f"self-{k}"}, "self_referral"))
        rows = chunk + [row for row, _ in bad]
        calls.append(rows)
        expected.append({(len(chunk) + n, code) for n, (_, code) in enumerate(bad)})
    out = [("members", calls, expected)]
    codes = [{"code": f"VIP{i:05d}", "member_id": f"m{i:05d}", "vanity": True} for i in range(970)]
    bad_codes = ([({"code": f"NIKE{i}", "member_id": "m00001", "vanity": True}, "vanity_reserved") for i in range(10)]
                 + [({"code": "AB", "member_id": "m00001"}, "code_format") for _ in range(10)]
                 + [({"code": f"TWO{i:05d}", "member_id": f"m{i:05d}", "vanity": True}, "vanity_already_set")
                    for i in range(10)])
    rows = codes + [row for row, _ in bad_codes]
    out.append(("codes", [rows], [{(970 + n, code) for n, (_, code) in enumerate(bad_codes)}]))
    orders = [{"order_id": f"o{i:05d}", "member_id": f"m{i % good_members:05d}", "amount_fen": 100_00 + i,
               "currency": "CNY", "occurred_at": f"2026-{1 + i % 9:02d}-{1 + i % 28:02d}T12:00:00+08:00"}
              for i in range(4850)]
    calls, expected = [], []
    for c in range(5):
        chunk = orders[c * 970:(c + 1) * 970]
        bad = []
        for k in range(6):
            bad.append(({**chunk[k], "order_id": f"bd{c}-{k}", "occurred_at": "2026-13-01T00:00:00Z"}, "validation_failed"))
            bad.append(({**chunk[k], "order_id": f"cur{c}-{k}", "currency": "XYZ"}, "validation_failed"))
            bad.append(({**chunk[k], "order_id": f"usd{c}-{k}", "currency": "USD"}, "currency_mismatch"))
            # the same order id with another amount: from an earlier call, or earlier in this one
            bad.append(({**orders[max(0, c - 1) * 970 + 500 + k], "amount_fen": 1}, "order_conflict" if c else "row_conflict"))
            bad.append(({**chunk[k], "order_id": f"who{c}-{k}", "member_id": f"cy{c}-{k}a"}, "member_not_found"))
        rows = chunk + [row for row, _ in bad]
        calls.append(rows)
        expected.append({(len(chunk) + n, code) for n, (_, code) in enumerate(bad)})
    out.append(("purchases", calls, expected))
    return out


def run_import(client, plan) -> list[set[tuple[int, str]]]:
    got = []
    for kind, calls, _ in plan:
        for rows in calls:
            assert len(rows) <= 1000
            body = imported_patiently(client, kind, rows)
            assert body["accepted"] + len(body["rejected"]) == len(rows)
            got.append({(r["row"], r["error"]["code"]) for r in body["rejected"]})
    return got


def imported_patiently(client, kind: str, rows: list) -> dict:
    """What tools/import_csv.py does: a call answered 503 `service_busy` (the engine stayed busy
    past every retry, e.g. a loaded DynamoDB Local) is sent again, rows idempotent by key."""
    for _ in range(3):
        response = send(client, kind, rows)
        if response.status_code != 503:
            break
        assert response.json_body["error"]["code"] == "service_busy", response.body
        time.sleep(int(response.headers["Retry-After"]))
    assert response.status_code == 200, f"{kind}: {response.status_code} {response.body[:2000]!r}"
    return response.json_body


@pytest.mark.ddblocal_only  # on moto 10,000 rows take ~17 minutes (~15 rows/s); the tests below cover the rules there
def test_ten_thousand_rows_reject_exactly_the_bad_ones_and_a_rerun_changes_nothing(client):
    plan = ten_thousand_rows()
    assert sum(len(rows) for _, calls, _ in plan for rows in calls) == 10_000
    wanted = [e for _, _, expected in plan for e in expected]
    assert sum(len(e) for e in wanted) == 300

    started = time.monotonic()
    got = run_import(client, plan)
    assert got == wanted, [(n, sorted(g - w)[:10], sorted(w - g)[:10]) for n, (g, w) in enumerate(zip(got, wanted)) if g != w]
    first_run = time.monotonic() - started
    print(f"\n{BACKEND}: 10,000 rows in {first_run:.1f} s ({10_000 / first_run:.0f} rows/s)")

    before = table_snapshot()
    counts = Counter(item["type"]["S"] for item in before.values())
    assert counts["member"] == 3880 and counts["order"] == 4850 and counts["code"] == 970
    assert counts["identity"] == 3880  # the login identity of each
    referrer = next(i for i in before.values() if i.get("member_id", {}).get("S") == "m00010" and i["type"]["S"] == "member")
    assert referrer["referrals_signed_up"]["N"] == "3"  # m00030..m00032, whichever call and order

    started = time.monotonic()
    got = run_import(client, plan)
    assert got == wanted, [(n, sorted(g - w)[:10], sorted(w - g)[:10]) for n, (g, w) in enumerate(zip(got, wanted)) if g != w]
    print(f"{BACKEND}: re-run in {time.monotonic() - started:.1f} s")
    assert table_snapshot() == before


def test_a_busy_engine_or_a_lost_answer_leaves_the_rows_imported_once(client, monkeypatch):
    """A group refused by a busy engine after botocore's retries (DynamoDB Local answers a long lock
    wait with InternalServerError; DynamoDB throttles) is tried again; one whose answer was lost
    after it was written is recognised row by row. Each member and each referrer count once."""
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.imports import members as member_import

    real = member_import._transact
    seen: Counter = Counter()

    def flaky(group):
        key = group[0].member.member_id
        seen[key] += 1
        busy = ClientError({"Error": {"Code": "InternalServerError", "Message": "waiting for a lock"}},
                           "TransactWriteItems")
        if seen[key] == 1:  # refused: nothing written
            raise TransactWriteError("Failed to write transaction items", busy)
        if seen[key] == 2 and key == "r0":  # written, but the answer lost
            real(group)
            raise TransactWriteError("Failed to write transaction items", busy)
        return real(group)

    monkeypatch.setattr(member_import, "_transact", flaky)
    rows = ([{"member_id": f"r{i}", "joined_at": "2025-01-01T08:00:00Z"} for i in range(2)]
            + [{"member_id": f"f{i}", "joined_at": "2025-02-01T08:00:00Z", "referrer_id": f"r{i % 2}"}
               for i in range(6)])
    body = imported(client, "members", rows)
    assert (body["accepted"], body["rejected"]) == (8, [])
    assert [signed_up(f"r{i}") for i in range(2)] == [3, 3]
    assert len(items_of("member")) == 8


def test_a_group_the_engine_keeps_refusing_is_a_busy_answer_and_a_resend_imports_it(client, monkeypatch):
    """Past its own tries a refused member group answers 503 `service_busy` (never a 500), with
    nothing written; the client's re-send of the same rows then imports them once."""
    from botocore.exceptions import ClientError
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.imports import members as member_import

    real = member_import._transact
    refusing = {"on": True}

    def busy_engine(group):
        if refusing["on"]:
            raise TransactWriteError("Failed to write transaction items", ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "waiting for a lock"}}, "TransactWriteItems"))
        return real(group)

    monkeypatch.setattr(member_import, "_transact", busy_engine)
    monkeypatch.setattr(member_import.time, "sleep", lambda seconds: None)
    rows = [{"member_id": "r0", "joined_at": "2025-01-01T08:00:00Z"},
            {"member_id": "f0", "joined_at": "2025-02-01T08:00:00Z", "referrer_id": "r0"}]
    refused = send(client, "members", rows)
    assert refused.status_code == 503 and refused.json_body["error"]["code"] == "service_busy", refused.body
    assert items_of("member") == []
    refusing["on"] = False
    body = imported(client, "members", rows)
    assert (body["accepted"], body["rejected"]) == (2, [])
    assert signed_up("r0") == 1


def test_code_and_order_rows_outlast_a_busy_engine_and_a_lost_answer(client):
    """A code's or an order's put refused past botocore's retries (throttled six times) is tried
    again; one applied whose answer was lost (the put re-sent) meets its own item — the code, its
    member's pointer, the order — and the row is accepted, written once."""
    from chalicelib.referrals.models import Code, MemberCode
    from chalicelib.store import faults
    from tests.test_faults import Scripted

    imported(client, "members", [{"member_id": "owner", "joined_at": "2025-01-01T08:00:00Z"}])
    try:
        faults.install(Scripted(PutItem=["throttle"] * 6 + ["timeout_after", None, "timeout_after"]))
        body = imported(client, "codes", [{"code": "OWNERCODE", "member_id": "owner"}])
        assert (body["accepted"], body["rejected"]) == (1, [])
        faults.install(Scripted(PutItem=["throttle"] * 6 + ["timeout_after"]))
        body = imported(client, "purchases", [{"order_id": "old-1", "member_id": "owner", "amount_fen": 99_00,
                                               "occurred_at": "2025-06-01T12:00:00Z"}])
        assert (body["accepted"], body["rejected"]) == (1, [])
    finally:
        faults.uninstall()
    assert Code.get(*Code.key("OWNERCODE")).member_id == "owner"
    assert [p.code for p in MemberCode.query(MemberCode.key("owner", "default")[0])] == ["OWNERCODE"]
    assert [o["order_id"]["S"] for o in items_of("order")] == ["old-1"]


# -- what imported history does and does not cause ---------------------------------------------

def small_history(client, apply_rewards: bool = False):
    spring_campaign(client)
    members = [{"member_id": "ana", "display_name": "Ana", "openid": "ana-openid", "provider": "dev",
                "joined_at": "2026-01-05T10:00:00Z"},
               {"member_id": "ben", "display_name": "Ben", "openid": "ben-openid", "provider": "dev",
                "joined_at": "2026-02-01T10:00:00Z", "referrer_id": "ana", "campaign_id": "spring"},
               {"member_id": "cyd", "display_name": "Cyd", "joined_at": "2026-02-03T10:00:00Z",
                "referrer_id": "ben", "campaign_id": "spring"}]
    assert imported(client, "members", members[::-1], apply_rewards=apply_rewards)["rejected"] == []
    codes = [{"code": "ANA2026", "member_id": "ana", "campaign_id": "spring", "vanity": True}]
    assert imported(client, "codes", codes)["rejected"] == []
    orders = [{"order_id": f"h{n}", "member_id": who, "amount_fen": 300_00, "occurred_at": f"2026-03-0{n}T10:00:00Z"}
              for n, who in enumerate(("ana", "ben", "ben", "cyd"), start=1)]
    assert imported(client, "purchases", orders, apply_rewards=apply_rewards)["rejected"] == []


def test_imported_history_writes_no_ledger_entry_but_counts_for_the_member(client, streams):
    small_history(client)
    streams.drain()
    assert items_of("ledger_entry") == []
    assert items_of("notification") == []  # no welcome, no first-purchase messages for the past
    stored = member("ben")
    assert (int(stored.orders), int(stored.gmv_fen), stored.referral_status) == (2, 600_00, "signed_up")
    assert stored.stage != "new"  # the stage follows the history
    assert signed_up("ana") == 1 and member("cyd").grandparent_id == "ana"
    assert client.get("/v1/codes/ANA2026").json_body["valid"] is True


def test_an_imported_referees_next_live_purchase_pays_the_referrer(client, streams):
    small_history(client)
    streams.drain()
    response = purchase(client, "live-1", "ben", 300_00)
    assert response.status_code == 200, response.body
    streams.drain()
    paid = Counter((e["member_id"]["S"], e["rule"]["S"]) for e in items_of("ledger_entry"))
    assert paid[("ana", "conversion")] == 1 and paid[("ana", "commission")] == 1
    assert paid[("ben", "purchase")] == 1  # own-purchase points for the live order only
    assert not any(e["order_id"]["S"].startswith("h") for e in items_of("ledger_entry") if "order_id" in e)


def test_apply_rewards_lets_the_history_earn(client, streams):
    small_history(client, apply_rewards=True)
    streams.drain()
    rules = Counter(e["rule"]["S"] for e in items_of("ledger_entry"))
    assert rules["purchase"] == 4  # own-purchase points for each imported order
    assert rules["conversion"] >= 1  # ben's and cyd's history converted their referrals


def test_an_imported_member_logs_in_as_themselves(client):
    small_history(client)
    _, member_id, data = login(client, "ben-openid", name="Ben")
    assert (member_id, data["created"]) == ("ben", False)
    signup = client.post("/v1/events/signups", {"member_id": "cyd"}, token=SERVICE)
    assert signup.json_body["member"]["member_id"] == "cyd" and signup.json_body["created"] is False


def test_an_openid_of_another_member_is_refused(client):
    _, member_id, _ = login(client, "taken-openid")
    body = imported(client, "members", [{"member_id": "dora", "openid": "taken-openid", "provider": "dev",
                                         "joined_at": "2026-01-01T00:00:00Z"}])
    assert [r["error"]["code"] for r in body["rejected"]] == ["identity_taken"]
    assert imported(client, "members", [{"member_id": member_id, "joined_at": "2026-01-01T00:00:00Z"}]
                    )["rejected"][0]["error"]["code"] == "member_exists"


def test_a_referrer_in_a_later_call_is_reported_and_the_row_can_be_resent(client):
    referee = {"member_id": "eve", "joined_at": "2026-01-02T00:00:00Z", "referrer_id": "fay"}
    body = imported(client, "members", [referee])
    assert body["accepted"] == 0 and body["rejected"][0]["error"]["code"] == "referrer_unknown"
    imported(client, "members", [{"member_id": "fay", "joined_at": "2026-01-01T00:00:00Z"}])
    assert imported(client, "members", [referee])["rejected"] == []


# -- the call itself -------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["ops", "service", "member"])
def test_only_admins_import(client, who):
    response = send(client, "members", [{"member_id": "x", "joined_at": "2026-01-01T00:00:00Z"}], as_token=token(who, who))
    assert response.status_code == 403
    assert items_of("member") == []


def test_more_than_a_thousand_rows_is_refused_whole(client):
    rows = [{"member_id": f"n{i}", "joined_at": "2026-01-01T00:00:00Z"} for i in range(1001)]
    response = send(client, "members", rows)
    assert response.status_code in (413, 422), response.body
    assert response.json_body["error"]["code"] in ("validation_failed", "payload_too_large")
    assert items_of("member") == []


def test_an_unknown_kind_is_422(client):
    response = send(client, "referrals", [{"member_id": "x"}])
    assert response.status_code == 422 and response.json_body["error"]["code"] == "validation_failed"


# -- the command-line wrapper -----------------------------------------------------------------

def test_the_csv_tool_resumes_after_a_failure_and_reports_each_bad_row_once(client, tmp_path):
    from tools import import_csv

    lines = ["member_id,display_name,joined_at,referrer_id"]
    lines.append("early,Early,2025-05-01T00:00:00Z,late")  # its referrer comes in the last chunk
    for i in range(117):
        referrer = f"c{i // 2:03d}" if i else ""
        lines.append(f"c{i:03d},Name {i},2025-04-01T00:00:00Z,{referrer}")
    lines.insert(10, "bad-date,X,2025-02-30T00:00:00Z,")
    lines.insert(60, "selfish,Y,2025-03-01T00:00:00Z,selfish")
    lines.append("late,Late,2025-04-01T00:00:00Z,")
    file = tmp_path / "members.csv"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    calls = []

    def post(url, bearer, body, lose_answers_from=None):
        calls.append(len(body["rows"]))
        response = client.post("/v1/ops/imports", body, token=bearer)
        if lose_answers_from and len(calls) >= lose_answers_from:
            raise OSError("connection reset")  # written, but the answer never came back
        return response.status_code, response.json_body

    with pytest.raises(import_csv.Stopped):
        import_csv.run("members", file, "http://api", ADMIN, chunk=40, sleep=lambda s: None,
                       post=lambda *a: post(*a, lose_answers_from=2))
    assert '"done": 40' in (tmp_path / "members.csv.progress.json").read_text()

    calls.clear()
    outcome = import_csv.run("members", file, "http://api", ADMIN, chunk=40, sleep=lambda s: None, post=post)
    assert calls == [40, 40, 1, 1]  # rows 41-121 (chunk 2 again: its answer was lost), then the early referee
    assert outcome == {"rows": 121, "accepted": 119, "rejected": 2}
    with open(f"{file}.rejected.csv", encoding="utf-8") as handle:
        import csv

        rejected = [(r["line"], r["member_id"], r["error_code"]) for r in csv.DictReader(handle)]
    assert rejected == [("11", "bad-date", "validation_failed"), ("61", "selfish", "self_referral")]
    assert len(items_of("member")) == 119 and member("early").referrer_id == "late"
    assert import_csv.run("members", file, "http://api", ADMIN, chunk=40, post=post) == outcome  # done: nothing sent


def test_a_resent_call_reads_in_batches_and_writes_only_its_audit_record(client):
    from tests.helpers import count_dynamodb_calls

    members = [{"member_id": f"r{i:03d}", "openid": f"r-{i}", "joined_at": "2025-06-01T00:00:00Z",
                **({"referrer_id": f"r{i // 2:03d}"} if i else {})} for i in range(150)]
    orders = [{"order_id": f"ro{i}", "member_id": f"r{i % 150:03d}", "amount_fen": 99_00,
               "occurred_at": "2026-01-01T00:00:00Z"} for i in range(300)]
    codes = [{"code": f"RC{i:04d}", "member_id": f"r{i:03d}"} for i in range(100)]
    calls = [("members", members), ("purchases", orders), ("codes", codes)]
    for kind, rows in calls:
        with count_dynamodb_calls() as first:
            assert imported(client, kind, rows)["rejected"] == []
        # members: one transaction per ≤ 100 items (a member, its identity and its downline entry,
        # a counter per referrer), by waves of referrers; purchases and codes: a put per item.
        # Transactions a loaded engine refused and the importer tried again are not grouping.
        assert first.succeeded("TransactWriteItems") <= {"members": 12, "purchases": 0, "codes": 0}[kind]
        assert first.count("PutItem") <= {"members": 1, "purchases": 301, "codes": 201}[kind]
    for kind, rows in calls:
        with count_dynamodb_calls() as again:
            assert imported(client, kind, rows)["rejected"] == []
        assert again.count("PutItem") == 1  # the audit record of the call
        assert again.count("TransactWriteItems", "BatchWriteItem", "DeleteItem") == 0
        assert again.count("UpdateItem") <= 1  # the caller's rate limit window
        assert again.count("BatchGetItem") <= 6 and again.count("GetItem", "Query") <= 2  # ≤ 100 keys a batch
