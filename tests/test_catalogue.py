"""The reward catalogue: ops stock items, members redeem them with points and one unit of stock
in one transaction (POST /v1/redemptions {item_id})."""
from __future__ import annotations

import pytest

from tests.flows import member, signup
from tests.helpers import token
from tests.ledger_checks import assert_balances_match_entries, entries
from tests.test_engagement import assert_error, concurrently

OPS, ADMIN = token("olivia", "ops"), token("root", "admin")


def _stock(client, item_id="mug", name="Brand mug", points=300, stock=5):
    answer = client.post("/v1/ops/catalogue", {"item_id": item_id, "name": name, "points": points, "stock": stock},
                         token=OPS)
    assert answer.status_code == 201, answer.body
    return answer.json_body


def _member_with(client, member_id: str, points: int) -> str:
    signup(client, member_id)
    answer = client.post("/v1/ops/adjustments", {"member_id": member_id, "points": points, "reason": "test grant"},
                         token=ADMIN)
    assert answer.status_code == 200, answer.body
    return token(member_id)


def _redeem(client, who: str, item_id: str, key: str):
    return client.post("/v1/redemptions", {"item_id": item_id}, token=who, headers={"Idempotency-Key": key})


def _catalogue(client, who=None):
    return {i["item_id"]: i for i in client.get("/v1/catalogue", token=who or token("anyone")).json_body["items"]}


def test_a_redemption_spends_the_points_and_one_unit_of_stock(client):
    _stock(client, stock=2)
    lily = _member_with(client, "lily", 1000)
    first = _redeem(client, lily, "mug", "k1")
    assert first.status_code == 200, first.body
    assert first.json_body["item"]["stock"] == 1
    assert first.json_body["points"]["available"] == 700
    assert first.json_body["entry"]["amount"] == -300 and first.json_body["entry"]["kind"] == "redemption"
    assert _redeem(client, lily, "mug", "k1").json_body == first.json_body  # a retry: the same answer
    assert _catalogue(client, lily)["mug"]["stock"] == 1
    assert int(member("lily").points_available) == 700
    assert_balances_match_entries(["lily"])


def test_the_last_unit_goes_to_one_member_and_the_next_is_told_out_of_stock(client):
    _stock(client, stock=1)
    lily, mia = _member_with(client, "lily", 1000), _member_with(client, "mia", 1000)
    assert _redeem(client, lily, "mug", "k1").status_code == 200
    assert_error(_redeem(client, mia, "mug", "k2"), 409, "out_of_stock")
    assert int(member("mia").points_available) == 1000  # nothing spent
    assert [e.rule for e in entries("mia")] == ["adjustment"]


def test_short_of_points_spends_neither_points_nor_stock(client):
    _stock(client, points=300, stock=3)
    lily = _member_with(client, "lily", 299)
    assert_error(_redeem(client, lily, "mug", "k1"), 409, "insufficient_points")
    assert _catalogue(client, lily)["mug"]["stock"] == 3
    assert int(member("lily").points_available) == 299


def test_ops_restock_reprice_and_withdraw_items(client):
    _stock(client, stock=0)
    lily = _member_with(client, "lily", 1000)
    assert_error(_redeem(client, lily, "mug", "k1"), 409, "out_of_stock")
    changed = client.put("/v1/ops/catalogue/mug", {"stock": 10, "points": 450}, token=OPS)
    assert changed.status_code == 200 and changed.json_body["stock"] == 10
    assert _redeem(client, lily, "mug", "k2").json_body["points"]["available"] == 550  # the new price
    assert client.put("/v1/ops/catalogue/mug", {"active": False}, token=OPS).status_code == 200
    assert "mug" not in _catalogue(client, lily)
    assert _catalogue(client, OPS)["mug"]["active"] is False  # ops still see it
    assert_error(_redeem(client, lily, "mug", "k3"), 404, "item_not_found")
    log = client.get("/v1/ops/audit-log", token=ADMIN).json_body["items"]
    assert {"catalogue.create", "catalogue.change"} <= {r["action"] for r in log}


def test_catalogue_refuses_bad_input_and_writes_nothing(client):
    _stock(client)
    lily = _member_with(client, "lily", 1000)
    assert_error(client.post("/v1/ops/catalogue", {"item_id": "mug", "name": "Mug", "points": 1, "stock": 1},
                             token=OPS), 409, "item_exists")
    assert_error(client.post("/v1/ops/catalogue", {"item_id": "cup", "name": "Cup", "points": 0, "stock": 1},
                             token=OPS), 422, "validation_failed")
    assert_error(client.post("/v1/ops/catalogue", {"item_id": "cup", "name": "Cup", "points": 10, "stock": 1},
                             token=lily), 403, "wrong_role")
    assert_error(client.put("/v1/ops/catalogue/nope", {"stock": 1}, token=OPS), 404, "item_not_found")
    assert_error(_redeem(client, lily, "nope", "k1"), 404, "item_not_found")
    both = client.post("/v1/redemptions", {"item_id": "mug", "points": 300, "item": "mug"}, token=lily,
                       headers={"Idempotency-Key": "k2"})
    assert_error(both, 422, "validation_failed")
    nulls = client.post("/v1/redemptions", {"item_id": "mug", "points": None}, token=lily,
                        headers={"Idempotency-Key": "k3"})
    assert_error(nulls, 422, "validation_failed")
    assert_error(client.post("/v1/redemptions", {"item_id": "mug"}, token=lily), 428, "idempotency_key_required")
    assert set(_catalogue(client, OPS)) == {"mug"} and _catalogue(client, OPS)["mug"]["stock"] == 5
    assert int(member("lily").points_available) == 1000


@pytest.mark.ddblocal_only
def test_concurrent_redemptions_never_sell_more_than_the_stock(client):
    _stock(client, stock=3)
    tokens = [_member_with(client, f"m{i}", 1000) for i in range(8)]
    answers = concurrently(8, lambda i: _redeem(client, tokens[i], "mug", f"k{i}"))
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 3 + [409] * 5, [r.body for r in answers]
    assert _catalogue(client, OPS)["mug"]["stock"] == 0
    spent = [i for i in range(8) if int(member(f"m{i}").points_available) == 700]
    assert len(spent) == 3
    assert_balances_match_entries([f"m{i}" for i in range(8)])
