"""Points that expire: lots by expiry day, oldest spent first, the notice N days before, the
expiry entry written once by the sweep, and `points.expiring` on the profile."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chalicelib.core import clock
from chalicelib.members.models import Member
from chalicelib.points import expiry, lots as lot_store
from chalicelib.points.models import PointsLot
from chalicelib.points.rules import lot_dates, spread_debt
from chalicelib.program.rules import default_program
from chalicelib.rewards import ledger, sweeps
from tests.flows import purchase, signup
from tests.helpers import token
from tests.ledger_checks import assert_balances_match_entries, entries, lots, points

ADMIN = token("root", "admin")


def move_to(instant: str, seconds: float = 1) -> None:
    """Move the clock to `seconds` after `instant`."""
    clock.advance(clock.parse(instant) - clock.now() + timedelta(seconds=seconds))


def adjust(member_id: str, amount: int, tag: str) -> None:
    ledger.spend(member_id, f"adjustment.{tag}", amount, "test", "adjustment", status="available")


def refund(client, order_id: str, refund_id: str, amount_fen: int):
    """A refund with a service token issued now (the clock has moved)."""
    return client.post("/v1/events/refunds", {"order_id": order_id, "refund_id": refund_id, "amount_fen": amount_fen},
                       token=token("brand", "service"))


def notes(client, member_id: str, kind: str) -> list[dict]:
    items = client.get("/v1/members/me/notifications?limit=100", token=token(member_id)).json_body["items"]
    return [n for n in items if n["kind"] == kind]


def me(client, member_id: str) -> dict:
    return client.get("/v1/members/me", token=token(member_id)).json_body


# -- pure rules -------------------------------------------------------------------------------

def test_lot_dates_end_of_the_day_in_the_program_time_zone():
    # 00:30 on 2 March in Shanghai is still 1 March in UTC: the program's day counts
    dates = lot_dates("2026-03-01T16:30:00.000000Z", default_program())
    assert dates.day == "2027-03-02"
    assert dates.expiry_at == "2027-03-02T16:00:00.000000Z"  # midnight ending the day, Shanghai
    assert dates.notice_at == "2027-01-31T16:00:00.000000Z"  # 30 days before
    assert dates.first_phase == "notice"
    no_notice = default_program().model_copy(update={"points_expiring_notice_days": 0, "points_expire_days": 10})
    short = lot_dates("2026-03-01T16:30:00.000000Z", no_notice)
    assert (short.day, short.first_phase) == ("2026-03-12", "expire")


def test_debt_is_spread_soonest_lot_first():
    assert spread_debt([100, 50, 20], 120) == ([0, 30, 20], 0)
    assert spread_debt([10, 5], 40) == ([0, 0], 25)  # more than every lot: the rest stays owed
    assert spread_debt([], 0) == ([], 0)


# -- through the API, the stream and the sweeps ---------------------------------------------

def test_earned_points_expire_once_with_a_notice_before(client, streams):
    signup(client, "ann")
    assert purchase(client, "o1", "ann", 100_00).status_code == 200  # 100 own-purchase points, pending
    streams.drain()
    clock.advance(timedelta(days=8))
    assert sweeps.release_due() == 1
    streams.drain()
    assert points("ann") == {"available": 100, "pending": 0}
    [lot] = lots("ann")
    released_on = default_program().local(clock.now()).date()
    assert lot.day == (released_on + timedelta(days=365)).isoformat() and int(lot.remaining) == 100
    assert me(client, "ann")["points"]["expiring"] == {"points": 100, "at": lot.expiry_at}

    assert expiry.run_due() == {"noticed": 0, "expired": 0}  # nothing due yet
    move_to(lot.notice_at, -60)
    assert expiry.run_due() == {"noticed": 0, "expired": 0}
    clock.advance(timedelta(minutes=2))
    assert expiry.run_due() == {"noticed": 1, "expired": 0}
    assert expiry.run_due() == {"noticed": 0, "expired": 0}  # told once
    [notice] = notes(client, "ann", "points_expiring")
    assert notice["source_id"] == lot.day and notice["payload"] == {"points": 100, "expires_at": lot.expiry_at}

    move_to(lot.expiry_at, -60)  # the last minute of the day: still spendable
    assert expiry.run_due() == {"noticed": 0, "expired": 0}
    clock.advance(timedelta(minutes=2))
    stale = list(PointsLot.by_gsi2.query(lot.gsi2pk))  # an index copy, as a duplicated run would hold
    assert expiry.run_due() == {"noticed": 0, "expired": 1}
    assert expiry.run_due() == {"noticed": 0, "expired": 0}
    assert [expiry.handle(hit, clock.now_iso()) for hit in stale] == [None]  # the duplicate writes nothing
    assert points("ann") == {"available": 0, "pending": 0}
    assert lots("ann") == []
    [expired] = [e for e in entries("ann") if e.rule == "expiry"]
    assert (expired.entry_id, int(expired.amount), expired.status) == (f"expiry.{lot.day}", -100, "expired")
    page = client.get("/v1/members/me/ledger", token=token("ann")).json_body["items"]
    assert page[0]["kind"] == "expiry" and page[0]["amount"] == -100
    assert me(client, "ann")["points"]["expiring"] is None
    assert len(notes(client, "ann", "points_expiring")) == 1
    assert_balances_match_entries(["ann"])


def test_spending_takes_the_oldest_lot_first(client, streams):
    signup(client, "bo")
    adjust("bo", 100, "a")
    first = lots("bo")[0]
    clock.advance(timedelta(days=10))
    adjust("bo", 50, "b")
    second = [lot for lot in lots("bo") if lot.day != first.day][0]
    ledger.spend("bo", "redemption.r1", -120, "mug", "redemption")
    assert points("bo")["available"] == 30
    assert int(Member.get(*Member.key("bo")).lot_debt) == 120  # a spend touches no lot
    assert me(client, "bo")["points"]["expiring"] == {"points": 30, "at": second.expiry_at}

    move_to(first.notice_at)
    assert expiry.run_due() == {"noticed": 0, "expired": 0}  # the debt took the whole first lot: no notice
    assert [(lot.day, int(lot.remaining)) for lot in lots("bo")] == [(second.day, 30)]
    assert int(Member.get(*Member.key("bo"), consistent_read=True).lot_debt) == 0
    move_to(first.expiry_at)
    assert expiry.run_due() == {"noticed": 1, "expired": 0}  # the second lot's notice is due by now
    [notice] = notes(client, "bo", "points_expiring")
    assert notice["payload"]["points"] == 30
    move_to(second.expiry_at)
    assert expiry.run_due() == {"noticed": 0, "expired": 1}
    assert {e.entry_id: int(e.amount) for e in entries("bo") if e.rule == "expiry"} == {f"expiry.{second.day}": -30}
    assert points("bo")["available"] == 0
    assert_balances_match_entries(["bo"])


def test_a_spend_between_settle_and_expiry_is_taken_from_the_expiring_lot(client):
    signup(client, "cy")
    adjust("cy", 100, "a")
    clock.advance(timedelta(days=1))
    adjust("cy", 100, "b")
    first, second = lots("cy")
    move_to(first.expiry_at)
    [hit] = [h for h in PointsLot.by_gsi2.query(first.gsi2pk) if h.day == first.day]
    ledger.spend("cy", "redemption.r1", -50, "mug", "redemption")  # after the sweep read the index
    assert expiry.handle(hit, clock.now_iso()) == "expired"
    assert {e.entry_id: int(e.amount) for e in entries("cy") if e.rule == "expiry"} == {f"expiry.{first.day}": -50}
    assert points("cy")["available"] == 100 and [int(lot.remaining) for lot in lots("cy")] == [100]
    assert_balances_match_entries(["cy"])


def test_a_refund_after_release_never_makes_the_balance_negative(client, streams):
    signup(client, "di")
    assert purchase(client, "o1", "di", 100_00).status_code == 200
    streams.drain()
    clock.advance(timedelta(days=8))
    sweeps.release_due()
    ledger.spend("di", "redemption.r1", -80, "mug", "redemption")
    assert refund(client, "o1", "r1", 100_00).status_code == 200
    streams.drain()
    assert points("di") == {"available": 0, "pending": 0}  # 20 taken back, 80 already spent (a shortfall)
    assert_balances_match_entries(["di"])
    [lot] = lots("di")
    move_to(lot.expiry_at)
    assert expiry.run_due() == {"noticed": 0, "expired": 0}
    assert points("di") == {"available": 0, "pending": 0} and lots("di") == []
    assert not [e for e in entries("di") if e.rule == "expiry"]
    assert_balances_match_entries(["di"])


def test_the_version_in_force_when_points_became_available_sets_their_day(client):
    program = client.get("/v1/ops/program", token=ADMIN).json_body["rules"]
    answer = client.put("/v1/ops/program", {**program, "points_expire_days": 10, "points_expiring_notice_days": 0},
                        token=ADMIN)
    assert answer.status_code == 200, answer.body
    signup(client, "ed")
    adjust("ed", 40, "before")  # the new version is in force only a minute after the put
    clock.advance(timedelta(minutes=2))
    adjust("ed", 60, "after")
    today = default_program().local(clock.now()).date()
    by_day = {lot.day: (int(lot.remaining), lot.phase) for lot in lots("ed")}
    assert by_day == {(today + timedelta(days=10)).isoformat(): (60, "expire"),
                      (today + timedelta(days=365)).isoformat(): (40, "notice")}
    move_to(min(lot.expiry_at for lot in lots("ed")))
    assert expiry.run_due() == {"noticed": 0, "expired": 1}  # no notice configured: expired without one
    assert points("ed")["available"] == 40 and not notes(client, "ed", "points_expiring")
    assert_balances_match_entries(["ed"])


def test_points_from_before_lots_keep_the_debt_owed_never_negative(client):
    signup(client, "fi")
    Member(*Member.key("fi")).update(actions=[Member.points_available.add(100)])  # credited before lots existed
    ledger.spend("fi", "redemption.r1", -70, "mug", "redemption")
    assert lot_store.settle("fi")[1] == []  # no lot to take it from: it stays owed
    adjust("fi", 50, "a")
    member, live = lot_store.settle("fi")
    assert (int(member.lot_debt), live) == (20, [])
    assert int(Member.get(*Member.key("fi"), consistent_read=True).points_available) == 80


@pytest.mark.ddblocal_only
def test_concurrent_sweeps_expire_each_lot_once(client):
    for n in range(6):
        signup(client, f"g{n}")
        adjust(f"g{n}", 10 + n, f"g{n}")
    move_to(lots("g0")[0].expiry_at)
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(expiry.run_due())) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["expired"] for r in results) == 6
    for n in range(6):
        assert [int(e.amount) for e in entries(f"g{n}") if e.rule == "expiry"] == [-(10 + n)]
    assert_balances_match_entries([f"g{n}" for n in range(6)])
