"""The API conventions every route gets from `core.http`: validation (422/400/413), mass
assignment refused, Idempotency-Key, signed pagination cursors and rate limits."""
from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from datetime import timedelta

import pytest

from tests.conftest import with_test_routes
from pydantic import Field

from chalicelib.core import aws, clock, ratelimit
from chalicelib.core.auth import MEMBER, SERVICE
from chalicelib.core.config import settings
from chalicelib.core.errors import NotFound, error_body
from chalicelib.core.http import Reply, Req, Routes
from chalicelib.core.validation import AmountFen, Body, Currency, Id, ShortText
from chalicelib.lifecycle import outbox
from chalicelib.store.base import table_name
from tests.helpers import count_dynamodb_calls, token

# --- test-only routes: the mechanism, independent of any capability ----------------------------

routes = Routes("tests.test_conventions")


class OrderIn(Body):
    order_ref: Id
    amount_fen: AmountFen
    currency: Currency = "CNY"
    note: ShortText | None = None
    tags: list[ShortText] = Field(default_factory=list, max_length=5)


executions: list[str] = []  # the side effect: one entry per execution of the view
behaviour: dict[str, object] = {}  # what the next execution does: fail how, or take its time


@routes.post("/test/conventions/orders", roles=(MEMBER,), body=OrderIn, summary="test only: a side effect")
def create_order(req: Req):
    executions.append(req.body.order_ref)
    time.sleep(float(behaviour.get("delay", 0)))  # widens the race window; nothing asserts on time
    failure = behaviour.pop("fail", None)
    if failure == "raise":
        raise NotFound("no such thing", code="thing_not_found")
    if failure == "reply":
        return Reply(error_body("not_today", "this order cannot be taken now"), 422)
    if failure == "crash":
        raise RuntimeError("boom")
    return Reply({"order_id": uuid.uuid4().hex, "order_ref": req.body.order_ref,
                  "execution": len(executions)}, 201, {"Location": "/test/conventions/orders/x"})


@routes.get("/test/conventions/ping", rate_limit="test-ping", summary="test only: a rate-limited public route")
def ping(req: Req):
    return {"pong": True}


@pytest.fixture
def app(app):
    with_test_routes(app, routes)
    executions.clear()
    behaviour.clear()
    return app




def assert_envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.body
    error = json.loads(response.body)["error"]
    assert set(error) == {"code", "message", "details"}
    if code:
        assert error["code"] == code, response.body
    return error


def fields_of(response) -> dict[str, str]:
    error = assert_envelope(response, 422, "validation_failed")
    return {f["field"]: f["type"] for f in error["details"]["fields"]}


def main_table_items() -> int:
    return aws.dynamodb().scan(TableName=table_name("main"), Select="COUNT", ConsistentRead=True)["Count"]


ORDER = {"order_ref": "o-1", "amount_fen": 1999}
ALICE = "m_alice"


def order(client, body=ORDER, key: str | None = None, sub: str = ALICE, **kw):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/test/conventions/orders", body, token=token(sub), headers=headers, **kw)


# --- validation -------------------------------------------------------------------------------

def test_a_valid_body_passes(client):
    r = order(client, {**ORDER, "currency": "USD", "note": "生日礼物", "tags": ["a"]})
    assert r.status_code == 201, r.body
    assert executions == ["o-1"]


@pytest.mark.parametrize("change, field, error_type", [
    ({"amount_fen": "1999"}, "amount_fen", "int_type"),          # money as a string
    ({"amount_fen": 19.99}, "amount_fen", "int_type"),           # fractional money
    ({"amount_fen": 1999.0}, "amount_fen", "int_type"),          # a float, even a whole one
    ({"amount_fen": True}, "amount_fen", "int_type"),
    ({"amount_fen": -1}, "amount_fen", "greater_than_equal"),    # negative money
    ({"amount_fen": 10**13}, "amount_fen", "less_than_equal"),
    ({"amount_fen": None}, "amount_fen", "int_type"),
    ({"order_ref": 42}, "order_ref", "string_type"),             # wrong type
    ({"order_ref": "has spaces"}, "order_ref", "string_pattern_mismatch"),
    ({"order_ref": "x" * 129}, "order_ref", "string_too_long"),  # oversize strings
    ({"note": "x" * 201}, "note", "string_too_long"),
    ({"note": "x" * 5000}, "note", "string_too_long"),
    ({"tags": ["x"] * 6}, "tags", "too_long"),
    ({"tags": "a,b"}, "tags", "list_type"),
    ({"currency": "cny"}, "currency", "string_pattern_mismatch"),
])
def test_invalid_values_are_422_with_field_details(client, change, field, error_type):
    fields = fields_of(order(client, {**ORDER, **change}))
    assert fields == {field: error_type}
    assert executions == []


@pytest.mark.parametrize("missing", ["order_ref", "amount_fen"])
def test_missing_fields_are_422(client, missing):
    body = {k: v for k, v in ORDER.items() if k != missing}
    assert fields_of(order(client, body)) == {missing: "missing"}


def test_empty_body_lists_every_missing_field(client):
    assert fields_of(order(client, raw=b"")) == {"order_ref": "missing", "amount_fen": "missing"}


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"42", b"null"])
def test_a_body_that_is_not_an_object_is_422(client, raw):
    assert_envelope(order(client, raw=raw), 422, "validation_failed")


@pytest.mark.parametrize("raw", [b"{nope", b'{"order_ref": "o-1",}', b"\xff\xfe{}", b"[" * 50_000,
                                 b'{"order_ref": "o-1"'])
def test_malformed_json_is_400(client, raw):
    assert_envelope(order(client, raw=raw), 400, "malformed_json")
    assert executions == []


def test_body_over_the_limit_is_413(client):
    limit = settings().max_body_bytes
    big = json.dumps({**ORDER, "note": "x" * limit}).encode()
    assert_envelope(order(client, raw=big), 413, "payload_too_large")
    assert executions == []


@pytest.mark.parametrize("extra", [{"member_id": "m_mallory"}, {"role": "admin"}, {"points": 10_000},
                                   {"tier": "gold"}])
def test_extra_fields_are_refused(client, extra):
    assert fields_of(order(client, {**ORDER, **extra})) == {next(iter(extra)): "extra_forbidden"}
    assert executions == []


@pytest.mark.parametrize("extra", [{"role": "admin"}, {"points": 10_000}, {"member_id": "m_chosen"}])
def test_login_refuses_extra_fields_and_stores_nothing(client, extra):
    before = main_table_items()
    r = client.post("/v1/auth/login", {"provider": "dev", "openid": "o_mass", **extra})
    assert fields_of(r) == {next(iter(extra)): "extra_forbidden"}
    assert main_table_items() == before


# --- Idempotency-Key --------------------------------------------------------------------------

def test_same_key_and_body_replays_the_stored_response(client):
    first = order(client, key="k-1")
    assert first.status_code == 201, first.body
    assert "Idempotent-Replayed" not in first.headers
    again = order(client, key="k-1")
    assert again.status_code == 201
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert executions == ["o-1"]  # the side effect ran once


def test_same_key_with_another_body_is_409(client):
    assert order(client, key="k-1").status_code == 201
    assert_envelope(order(client, {**ORDER, "amount_fen": 1}, key="k-1"), 409, "idempotency_key_reused")
    assert executions == ["o-1"]


def test_without_a_key_every_request_runs(client):
    order(client)
    order(client)
    assert executions == ["o-1", "o-1"]


def test_keys_belong_to_their_caller(client):
    first = order(client, key="shared", sub=ALICE)
    other = order(client, key="shared", sub="m_bob")
    assert other.status_code == 201
    assert other.json_body["order_id"] != first.json_body["order_id"]
    assert len(executions) == 2


def test_an_overlong_key_is_422(client):
    assert_envelope(order(client, key="k" * 129), 422, "validation_failed")
    assert executions == []


def test_a_record_older_than_24h_counts_as_absent(client):
    assert order(client, key="k-old").status_code == 201
    clock.advance(timedelta(hours=24, seconds=5))
    # emulators (and DynamoDB for up to two days) still hold the record: the read side must ignore it
    from chalicelib.core.auth import Principal
    from chalicelib.core.idempotency import record_key

    pk = record_key(Req(Principal(ALICE, "member"), None, None, {}, {}, "ip", "r", b""), "k-old")
    stored = aws.dynamodb().get_item(TableName=table_name("control"), ConsistentRead=True,
                                     Key={"pk": {"S": pk}, "sk": {"S": "IDEM"}})
    assert "Item" in stored
    renewed = order(client, {**ORDER, "amount_fen": 1}, key="k-old")
    assert renewed.status_code == 201, renewed.body
    assert "Idempotent-Replayed" not in renewed.headers
    assert order(client, {**ORDER, "amount_fen": 1}, key="k-old").body == renewed.body
    assert len(executions) == 2


def test_a_record_younger_than_24h_still_replays(client):
    first = order(client, key="k-young")
    clock.advance(timedelta(hours=23))
    assert order(client, key="k-young").body == first.body
    assert len(executions) == 1


@pytest.mark.parametrize("failure, status", [("raise", 404), ("reply", 422), ("crash", 500)])
def test_a_failed_first_execution_releases_the_key(client, failure, status):
    behaviour["fail"] = failure
    assert_envelope(order(client, key="k-retry"), status)
    retried = order(client, key="k-retry")
    assert retried.status_code == 201, retried.body
    assert "Idempotent-Replayed" not in retried.headers
    assert order(client, key="k-retry").body == retried.body
    assert len(executions) == 2


def test_validation_failure_does_not_claim_the_key(client):
    assert order(client, {**ORDER, "amount_fen": "1"}, key="k-v").status_code == 422
    assert order(client, key="k-v").status_code == 201


@pytest.mark.ddblocal_only
def test_concurrent_requests_with_one_key_execute_once(client):
    behaviour["delay"] = 0.3
    callers = 6
    start = threading.Barrier(callers)
    responses = []
    environ = os.environ  # the test client swaps os.environ per request, which is not thread-safe
    request_token = token(ALICE)

    def send():
        start.wait()
        responses.append(client.post("/test/conventions/orders", ORDER, token=request_token,
                                     headers={"Idempotency-Key": "k-race"}))

    threads = [threading.Thread(target=send) for _ in range(callers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        os.environ = environ
    assert len(responses) == callers
    assert executions == ["o-1"]
    originals = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(originals) == 1
    for r in responses:
        if r.status_code == 201:
            assert r.body == originals[0].body
        else:
            assert_envelope(r, 409, "request_in_progress")
            assert r.headers["Retry-After"]
    assert order(client, key="k-race").body == originals[0].body


# --- pagination -------------------------------------------------------------------------------

def notify(member_id: str, count: int) -> None:
    base = clock.now()
    for i in range(count):
        outbox.post(member_id, "welcome", f"src-{i:03d}", clock.iso(base + timedelta(seconds=i)))


def notifications(client, member_id: str, query: str = ""):
    return client.get(f"/v1/members/me/notifications{query}", token=token(member_id))


def walk(client, member_id: str, limit: str = "") -> tuple[list[str], int]:
    seen, cursor, pages = [], None, 0
    while True:
        query = "?" + "&".join(p for p in (limit, f"cursor={cursor}" if cursor else "") if p)
        r = notifications(client, member_id, query if query != "?" else "")
        assert r.status_code == 200, r.body
        pages += 1
        seen += [item["source_id"] for item in r.json_body["items"]]
        cursor = r.json_body["next_cursor"]
        if cursor is None:
            return seen, pages
        assert pages < 20


def test_default_page_is_20_and_a_cursor_walk_returns_everything_once(client):
    notify(ALICE, 45)
    first = notifications(client, ALICE)
    assert len(first.json_body["items"]) == 20
    assert first.json_body["next_cursor"]
    seen, pages = walk(client, ALICE)
    assert pages == 3
    assert len(seen) == len(set(seen)) == 45
    assert seen == [f"src-{i:03d}" for i in reversed(range(45))]  # newest first


def test_limit_bounds(client):
    notify(ALICE, 25)
    assert len(notifications(client, ALICE, "?limit=100").json_body["items"]) == 25
    assert notifications(client, ALICE, "?limit=100").json_body["next_cursor"] is None
    seen, pages = walk(client, ALICE, "limit=7")
    assert len(seen) == len(set(seen)) == 25 and pages == 4
    for bad in ("101", "0", "-1", "abc", "2.5", ""):
        assert set(fields_of(notifications(client, ALICE, f"?limit={bad}"))) == {"limit"}, bad


def test_limit_101_is_422(client):
    assert fields_of(notifications(client, ALICE, "?limit=101")) == {"limit": "less_than_equal"}


def _cursor_of(client, member_id: str) -> str:
    cursor = notifications(client, member_id, "?limit=5").json_body["next_cursor"]
    assert cursor
    return cursor


@pytest.mark.parametrize("garbage", ["garbage", "abc.def", "...", "e30.AAAA", "%C3%A9.%C3%A9", "e30.%C3%A9", "x" * 500])
def test_garbage_cursor_is_400(client, garbage):
    assert_envelope(notifications(client, ALICE, f"?cursor={garbage}"), 400, "invalid_cursor")


def test_edited_cursor_is_400(client):
    notify(ALICE, 10)
    notify("m_bob", 10)
    body, signature = _cursor_of(client, ALICE).split(".")
    key = base64.urlsafe_b64decode(body + "==").decode()
    assert "m_alice" in key  # the last key read: Alice's partition
    forged = key.replace("m_alice", "m_bob")  # point it at Bob's, keep Alice's signature
    forged_body = base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")
    assert_envelope(notifications(client, ALICE, f"?cursor={forged_body}.{signature}"), 400, "invalid_cursor")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    assert_envelope(notifications(client, ALICE, f"?cursor={body}.{flipped}"), 400, "invalid_cursor")


def test_a_cursor_issued_to_one_member_is_refused_for_another(client):
    notify(ALICE, 10)
    notify("m_bob", 10)
    alices = _cursor_of(client, ALICE)
    assert_envelope(notifications(client, "m_bob", f"?cursor={alices}"), 400, "invalid_cursor")
    assert notifications(client, ALICE, f"?cursor={alices}").status_code == 200


# --- rate limits ------------------------------------------------------------------------------

def at_start_of_window() -> None:
    """Move the clock to a fresh minute so a window boundary cannot fall inside the test."""
    clock.advance(timedelta(seconds=ratelimit.WINDOW_SECONDS - clock.epoch() % ratelimit.WINDOW_SECONDS))


def login(client, openid: str = "o_rl"):
    return client.post("/v1/auth/login", {"provider": "dev", "openid": openid})


def test_login_beyond_the_limit_is_429_until_the_next_minute(client, configure):
    configure(RATE_LIMIT_PER_MINUTE="3")
    at_start_of_window()
    for n in range(3):
        assert login(client, f"o_{n}").status_code == 200
    limited = login(client, "o_4")
    error = assert_envelope(limited, 429, "rate_limited")
    assert error["details"] == {"limit_per_minute": 3}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    clock.advance(timedelta(seconds=int(limited.headers["Retry-After"])))
    assert login(client, "o_4").status_code == 200


def test_the_limit_holds_across_instances(client, configure):
    configure(RATE_LIMIT_PER_MINUTE="20")
    at_start_of_window()
    assert all(client.get("/test/conventions/ping").status_code == 200 for _ in range(15))
    ratelimit.reset()  # another Lambda instance: nothing in memory, the count is in DynamoDB
    statuses = [client.get("/test/conventions/ping").status_code for _ in range(10)]
    assert statuses == [200] * 5 + [429] * 5


def test_most_requests_make_no_rate_limit_write(client, configure, monkeypatch):
    configure(RATE_LIMIT_PER_MINUTE="100")  # one shared write per 5 requests
    monkeypatch.setattr(ratelimit, "FLUSH_SECONDS", 3600.0)  # only the count triggers a flush here
    at_start_of_window()
    with count_dynamodb_calls() as calls:
        statuses = [client.get("/test/conventions/ping").status_code for _ in range(120)]
    assert calls.count() == calls.count("UpdateItem")  # the route itself touches nothing
    assert 1 <= calls.writes <= 120 // 5 + 1
    assert 100 <= statuses.count(200) <= 105  # batching overshoots by at most one batch
    assert statuses[-1] == 429


def test_a_client_s_few_requests_in_a_minute_make_no_rate_limit_write(client, configure, monkeypatch):
    """A member opening the ledger once a minute costs its read only: the count is shared once a
    batch (limit/20 requests) is full or a later request comes a second after the last write."""
    configure(RATE_LIMIT_PER_MINUTE="120")  # a shared write per 6 requests
    monkeypatch.setattr(ratelimit, "monotonic", lambda: 10.0**6)  # an instance up for days, no time passing
    at_start_of_window()
    with count_dynamodb_calls() as calls:
        assert all(client.get("/test/conventions/ping").status_code == 200 for _ in range(5))
    assert calls.count() == 0
    with count_dynamodb_calls() as calls:
        assert client.get("/test/conventions/ping").status_code == 200  # the sixth: the batch is shared
    assert calls.count("UpdateItem") == 1


# --- money-moving routes: Idempotency-Key required ------------------------------------------------

@routes.post("/test/conventions/payouts", roles=(MEMBER, SERVICE), body=OrderIn, moves_money=True,
             summary="test only: moves money")
def create_payout(req: Req):
    executions.append(req.body.order_ref)
    return Reply({"payout": len(executions), "role": req.principal.role}, 201)


def payout(client, key: str | None, role: str = "member", sub: str = ALICE):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/test/conventions/payouts", ORDER, token=token(sub, role), headers=headers)


@pytest.mark.parametrize("key", [None, "", "   "])
def test_a_money_moving_call_without_a_key_is_428_and_runs_nothing(client, key):
    error = assert_envelope(payout(client, key), 428, "idempotency_key_required")
    assert "Idempotency-Key" in error["message"] and error["details"] == {"header": "Idempotency-Key"}
    assert executions == []


def test_a_money_moving_call_with_a_key_runs_once_however_often_it_is_retried(client):
    first, again = payout(client, "pay-1"), payout(client, "pay-1")
    assert first.status_code == again.status_code == 201
    assert again.body == first.body and again.headers["Idempotent-Replayed"] == "true"
    assert executions == ["o-1"]


def test_keys_are_per_role_a_service_never_replays_a_members_answer(client):
    """One subject name under two roles (a member id that is also a service account's name):
    the same key and body are two different requests."""
    member_answer, service_answer = payout(client, "k-same"), payout(client, "k-same", role="service")
    assert member_answer.status_code == service_answer.status_code == 201
    assert "Idempotent-Replayed" not in service_answer.headers
    assert json.loads(service_answer.body)["role"] == "service"
    assert executions == ["o-1", "o-1"]


def test_idempotency_records_name_neither_the_subject_nor_the_key(client):
    from chalicelib.core.auth import Principal
    from chalicelib.core.idempotency import IdempotencyRecord, record_key

    assert payout(client, "visible-key").status_code == 201
    caller = Req(Principal(ALICE, "member"), None, None, {}, {}, "ip", "r", b"")
    pk = record_key(caller, "visible-key")
    assert pk.startswith("IDEM#member#") and ALICE not in pk and "visible-key" not in pk
    assert IdempotencyRecord.get(pk, "IDEM").status == "done"


def test_authenticated_calls_are_limited_per_subject_whatever_the_ip(client, configure):
    configure(RATE_LIMIT_PER_MINUTE="3")
    ratelimit.reset()
    statuses = [client.get("/v1/members/me/notifications", token=token("m_busy"),
                           headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(5)]
    assert statuses == [200] * 3 + [429] * 2
    limited = client.get("/v1/members/me/notifications", token=token("m_busy"))
    assert_envelope(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert client.get("/v1/members/me/notifications", token=token("m_calm")).status_code == 200
