"""Every date the API takes is a real, in-range moment (422 otherwise, nothing written):
sign-ups, purchases, refunds and campaign times share one validated type."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.core import clock
from tests.flows import SERVICE, purchase, refund, signup
from tests.helpers import token

IMPOSSIBLE = ["2026-13-01T00:00:00Z", "2026-02-30T10:00:00Z", "2026-01-01T25:00:00Z",
              "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-23:59", "next tuesday",
              "2026-01-01T00:00:00+25:00", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"]
OPS = token("alice", "ops")


def _rejects(response, field: str) -> None:
    assert response.status_code == 422, response.body
    error = response.json_body["error"]
    assert error["code"] == "validation_failed"
    assert [f["field"] for f in error["details"]["fields"]] == [field]


@pytest.mark.parametrize("when", IMPOSSIBLE)
def test_signup_with_a_bad_date_is_422_and_creates_nobody(client, when):
    response = client.post("/v1/events/signups", {"member_id": "m-dates", "occurred_at": when}, token=SERVICE)
    _rejects(response, "occurred_at")
    from chalicelib.members.models import Member

    assert Member.find("m-dates") is None


@pytest.mark.parametrize("when", IMPOSSIBLE)
def test_purchase_and_refund_with_a_bad_date_are_422_and_write_nothing(client, when):
    signup(client, "m-buyer")
    _rejects(purchase(client, "o-1", "m-buyer", 100_00, occurred_at=when), "occurred_at")
    assert purchase(client, "o-2", "m-buyer", 100_00).status_code == 200
    _rejects(refund(client, "o-2", "r-1", 10_00, occurred_at=when), "occurred_at")
    # the refused ids are still free: the same ids with a good date are new facts
    assert purchase(client, "o-1", "m-buyer", 100_00).json_body["order_id"] == "o-1"
    assert refund(client, "o-2", "r-1", 10_00).status_code == 200


def test_facts_may_not_lie_in_the_future_beyond_clock_skew(client):
    signup(client, "m-future")
    soon = clock.iso(clock.now() + timedelta(minutes=2))
    later = clock.iso(clock.now() + timedelta(hours=1))
    assert purchase(client, "o-soon", "m-future", 100_00, occurred_at=soon).status_code == 200
    _rejects(purchase(client, "o-later", "m-future", 100_00, occurred_at=later), "occurred_at")


def test_dates_with_an_offset_are_stored_in_utc(client):
    signup(client, "m-offset")
    response = purchase(client, "o-offset", "m-offset", 100_00, occurred_at="2026-01-02T08:00:00+08:00")
    assert response.status_code == 200, response.body
    assert response.json_body["occurred_at"] == "2026-01-02T00:00:00.000000Z"


def _campaign(**overrides) -> dict:
    return {"campaign_id": "spring", "name": "Spring", "landing_url": "https://shop.example.com/spring",
            **overrides}


@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
@pytest.mark.parametrize("when", IMPOSSIBLE)
def test_campaign_times_are_validated_on_write(client, field, when):
    _rejects(client.post("/v1/campaigns", _campaign(**{field: when}), token=OPS), field)
    assert client.get("/v1/campaigns/spring", token=OPS).status_code == 404
