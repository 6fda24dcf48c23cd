"""The member lifecycle on the stream: stages, tiers, own-purchase points and the moments they
cause, with the clock moved — through the HTTP API, the stream handlers and the clock sweep."""
from __future__ import annotations

from datetime import timedelta

import pytest

from chalicelib.core import clock
from chalicelib.lifecycle import sweep
from chalicelib.lifecycle.models import timeline_of
from chalicelib.rewards import sweeps as release
from tests.flows import code_of, login, member
from tests.helpers import token
from tests.ledger_checks import assert_balances_match_entries, by_rule, points

PROGRAM = {"tiers": [{"name": "bronze", "points_per_yuan": 1, "perks": ["1 point per yuan"]},
                     {"name": "silver", "min_spend_fen_12m": 500_00, "points_per_yuan": 2, "perks": ["double points"]},
                     {"name": "gold", "min_spend_fen_12m": 2000_00, "points_per_yuan": 3}],
           "review": "quarterly", "grace_days": 30, "return_window_days": 7, "second_purchase_nudge_days": 14,
           "win_back_coupon_fen": 20_00, "birthday_points": 200,
           "contact_policy": {"max_messages_per_7d": 3, "quiet_hours": None}}


def purchase(client, order_id: str, member_id: str, amount_fen: int):
    """A purchase reported now, with a token issued now (the clock moves by months here)."""
    return client.post("/v1/events/purchases", {"order_id": order_id, "member_id": member_id,
                                                "amount_fen": amount_fen}, token=token("brand", "service"))


def refund(client, order_id: str, refund_id: str, amount_fen: int):
    return client.post("/v1/events/refunds", {"order_id": order_id, "refund_id": refund_id,
                                              "amount_fen": amount_fen}, token=token("brand", "service"))


def signup(client, member_id: str, code: str):
    response = client.post("/v1/events/signups", {"member_id": member_id, "display_name": member_id,
                                                  "referral": {"code": code}}, token=token("brand", "service"))
    assert response.status_code == 200, response.body


def put_program(client, **changes):
    response = client.put("/v1/ops/program", {**PROGRAM, **changes}, token=token("ada", "admin"))
    assert response.status_code == 200, response.body
    clock.advance(timedelta(minutes=2))  # a new version is in force a minute after the put
    return response.json_body


def days(n: float) -> None:
    clock.advance(timedelta(days=n))


class Watcher:
    """A member's view through the API: what changed since the last look."""

    def __init__(self, client, member_id: str):
        self.client, self.member_id, self.seen = client, member_id, 0

    def me(self) -> dict:
        response = self.client.get("/v1/members/me", token=token(self.member_id))
        assert response.status_code == 200, response.body
        return response.json_body

    def new_notes(self) -> list[tuple[str, str]]:
        response = self.client.get("/v1/members/me/notifications?limit=100", token=token(self.member_id))
        notes = list(reversed(response.json_body["items"]))
        fresh, self.seen = notes[self.seen:], len(notes)
        return [(n["kind"], n["source_id"]) for n in fresh]


def settle(streams) -> None:
    streams.drain()
    sweep.run_due()
    streams.drain()


def test_one_member_from_sign_up_to_reactivated(client, streams):
    put_program(client)
    _, lily, _ = login(client, "lily", "Lily")
    watch = Watcher(client, lily)
    answer = client.put("/v1/members/me/preferences", {"marketing_opt_in": True, "locale": "en"}, token=token(lily))
    assert answer.status_code == 200 and answer.json_body["marketing_opt_in"] is True, answer.body
    settle(streams)
    me = watch.me()
    assert (me["stage"], me["tier"]["name"], me["tier"]["next"]) == (
        "new", "bronze", {"name": "silver", "needs": {"spend_fen_12m": 500_00}})
    assert watch.new_notes() == [("welcome", lily)]

    # first purchase: active, thank-you, 100 points pending through the return window
    assert purchase(client, "o1", lily, 100_00).status_code == 200
    settle(streams)
    me = watch.me()
    assert (me["stage"], me["tier"]["name"], me["points"]) == ("active", "bronze",
                                                                {"available": 0, "pending": 100, "expiring": None})
    assert watch.new_notes() == [("first_purchase", "o1")]

    # two weeks without a second purchase: the nudge, once however often the sweep runs
    days(14.1)
    settle(streams)
    settle(streams)
    assert watch.new_notes() == [("second_purchase_nudge", "o1")]

    # a second purchase crosses silver's 500 yuan at once; points at the tier held before it
    days(1)
    assert purchase(client, "o2", lily, 450_00).status_code == 200
    settle(streams)
    me = watch.me()
    assert (me["stage"], me["tier"]["name"]) == ("active", "silver")
    assert me["tier"]["next"] == {"name": "gold", "needs": {"spend_fen_12m": 2000_00 - 550_00}}
    [(kind, _)] = watch.new_notes()
    assert kind == "tier_up"

    # a third purchase: loyal, and silver's double points
    days(1)
    assert purchase(client, "o3", lily, 100_00).status_code == 200
    settle(streams)
    assert watch.me()["stage"] == "loyal"
    assert watch.new_notes() == []
    release.release_due()
    assert by_rule(lily) == {"purchase": 100 + 450 + 200}

    # a friend she invited converts: advocate
    signup(client, "bob", code_of(lily))
    assert purchase(client, "o-bob", "bob", 80_00).status_code == 200
    settle(streams)
    assert watch.me()["stage"] == "advocate"
    watch.new_notes()  # the referral's own messages (level, rewards) are the rewards' business

    # 60 days without a purchase: at risk; 120: churned, with a win-back coupon
    days(60)
    settle(streams)
    assert watch.me()["stage"] == "at_risk"
    assert [kind for kind, _ in watch.new_notes()] == ["at_risk"]
    days(60)
    settle(streams)
    settle(streams)
    assert watch.me()["stage"] == "churned"
    assert [kind for kind, _ in watch.new_notes() if kind != "reward_available"] == ["win_back"]
    coupons = [e for e in client.get("/v1/members/me/ledger?limit=100", token=token(lily)).json_body["items"]
               if e["kind"] == "win_back"]
    assert [(c["unit"], c["amount"]) for c in coupons] == [("coupon_fen", 20_00)]

    # a purchase after the churn: reactivated (for active_days), then back to advocate
    assert purchase(client, "o4", lily, 100_00).status_code == 200
    settle(streams)
    assert watch.me()["stage"] == "reactivated"
    days(31)
    settle(streams)
    assert watch.me()["stage"] == "advocate"
    stages = [(e["from"], e["to"]) for e in timeline_of(lily) if e["kind"] == "stage"]
    assert stages == [("new", "active"), ("active", "loyal"), ("loyal", "advocate"), ("advocate", "at_risk"),
                      ("at_risk", "churned"), ("churned", "reactivated"), ("reactivated", "advocate")]
    streams.replay_from_start()
    settle(streams)
    assert [(e["from"], e["to"]) for e in timeline_of(lily) if e["kind"] == "stage"] == stages
    assert watch.new_notes() == []
    assert_balances_match_entries([lily, "bob"])


def test_a_repeat_purchase_writes_no_lifecycle_state_yet_at_risk_counts_from_it(client, streams):
    """A purchase that changes no stage or tier leaves the member's lifecycle as it was (its
    due time stays the earlier one: no write); the sweep at that time finds the member active,
    moves the due time on, and at-risk comes 60 days after the last purchase, not the first."""
    put_program(client)
    _, lily, _ = login(client, "lily", "Lily")
    watch = Watcher(client, lily)
    for order_id in ("o1", "o2", "o3"):  # loyal after the third
        assert purchase(client, order_id, lily, 100_00).status_code == 200
        settle(streams)
        days(1)
    assert watch.me()["stage"] == "loyal"
    days(20)
    settle(streams)  # the sweep moves the due time on (the second purchase had left the nudge's)
    rev = int(member(lily).lifecycle_rev)
    assert purchase(client, "o4", lily, 100_00).status_code == 200
    streams.drain()
    assert int(member(lily).lifecycle_rev) == rev  # nothing to write: same stage, same tier
    assert by_rule(lily)["purchase"] == 400  # its own points paid all the same
    days(45)  # 60 days after o3, 45 after o4
    settle(streams)
    assert watch.me()["stage"] == "loyal"
    days(16)  # 61 days after o4
    settle(streams)
    assert watch.me()["stage"] == "at_risk"


def test_refund_in_the_return_window_cancels_an_upgrade_and_takes_points_back(client, streams):
    put_program(client)
    _, lily, _ = login(client, "lily")
    purchase(client, "o1", lily, 600_00)
    streams.drain()
    assert member(lily).tier == "silver"
    assert points(lily) == {"available": 0, "pending": 600}
    refund(client, "o1", "r1", 300_00)
    streams.drain()
    assert (member(lily).tier, points(lily)) == ("bronze", {"available": 0, "pending": 300})
    tiers = [(e["from"], e["to"], e["reason"]) for e in timeline_of(lily) if e["kind"] == "tier"]
    assert tiers == [("bronze", "silver", "upgrade"), ("silver", "bronze", "upgrade_cancelled")]
    assert_balances_match_entries([lily])


def test_downgrade_only_at_the_review_after_a_warning_and_the_grace(client, streams):
    put_program(client, review="monthly", grace_days=10)
    _, lily, _ = login(client, "lily")
    purchase(client, "o1", lily, 600_00)
    streams.drain()
    days(10)
    refund(client, "o1", "r1", 300_00)  # after the return window: the upgrade stands
    streams.drain()
    assert member(lily).tier == "silver"
    watch = Watcher(client, lily)
    watch.new_notes()
    for _ in range(4):  # from one due time to the next (the nudge comes first) until the review warns
        due = member(lily).lifecycle_due_at
        assert due and due > clock.now_iso()
        clock.advance(clock.parse(due) - clock.now() + timedelta(minutes=1))
        settle(streams)
        if member(lily).tier_warning:
            break
    lily_now = member(lily)
    assert lily_now.tier == "silver" and lily_now.tier_warning
    [(kind, source)] = watch.new_notes()
    assert kind == "tier_down" and source.startswith("warning.")
    [warning] = [n["payload"] for n in client.get("/v1/members/me/notifications", token=token(lily)).json_body["items"]
                 if n["source_id"] == source]
    assert (warning["would_be"], warning["needs"]) == ("bronze", {"spend_fen_12m": 500_00 - 300_00})
    assert watch.me()["tier"]["downgrade"]["at"] == warning["downgrade_at"]
    days(10.1)
    settle(streams)
    assert member(lily).tier == "bronze"
    assert [kind for kind, _ in watch.new_notes()] == ["tier_down"]


def test_marketing_moments_respect_opt_in_and_the_weekly_cap(client, streams):
    put_program(client, contact_policy={"max_messages_per_7d": 0, "quiet_hours": None})
    _, lily, _ = login(client, "lily")
    _, ming, _ = login(client, "ming")
    client.put("/v1/members/me/preferences", {"marketing_opt_in": True}, token=token(ming))
    purchase(client, "o1", lily, 100_00)
    purchase(client, "o2", ming, 100_00)
    streams.drain()
    days(15)
    settle(streams)
    from chalicelib.lifecycle.outbox import Notification
    from chalicelib.members.models import member_pk

    for who, reason in ((lily, "not_opted_in"), (ming, "weekly_cap")):
        kinds = [n["kind"] for n in client.get("/v1/members/me/notifications", token=token(who)).json_body["items"]]
        assert "second_purchase_nudge" not in kinds
        skipped = list(Notification.query(member_pk(who), Notification.sk.startswith("SKIP#")))
        assert [(n.kind, n.dropped) for n in skipped] == [("second_purchase_nudge", reason)]


def test_birthday_gift_once_a_year_and_set_once(client, streams):
    put_program(client)
    _, lily, _ = login(client, "lily")
    today = clock.parse(clock.now_iso()).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")).date()
    tomorrow = today + timedelta(days=1)
    birthday = f"{tomorrow.month:02d}-{tomorrow.day:02d}"
    if birthday == "02-29":
        pytest.skip("a leap day: the gift moves to 02-28 in other years")
    answer = client.put("/v1/members/me/preferences", {"birthday": birthday, "marketing_opt_in": True},
                        token=token(lily))
    assert answer.status_code == 200, answer.body
    again = client.put("/v1/members/me/preferences", {"birthday": "01-01" if birthday != "01-01" else "01-02"},
                       token=token(lily))
    assert again.status_code == 409 and again.json_body["error"]["code"] == "birthday_already_set"
    bad = client.put("/v1/members/me/preferences", {"birthday": "02-30"}, token=token(lily))
    assert bad.status_code == 422
    streams.drain()
    days(1)
    settle(streams)
    settle(streams)
    assert by_rule(lily) == {"birthday": 200}
    kinds = [n["kind"] for n in client.get("/v1/members/me/notifications", token=token(lily)).json_body["items"]]
    assert kinds.count("birthday") == 1
    days(2)
    settle(streams)
    assert by_rule(lily) == {"birthday": 200}


def test_double_points_period_and_program_versions(client, streams):
    start = clock.iso(clock.now() + timedelta(days=1))
    end = clock.iso(clock.now() + timedelta(days=2))
    put_program(client, double_points=[{"starts_at": start, "ends_at": end, "multiplier": 2}])
    _, lily, _ = login(client, "lily")
    purchase(client, "o1", lily, 100_00)
    days(1.5)
    purchase(client, "o2", lily, 100_00)
    days(1)
    purchase(client, "o3", lily, 100_00)
    streams.drain()
    entries = {e["order_id"]: e["amount"] for e in
               client.get("/v1/members/me/ledger", token=token(lily)).json_body["items"] if e["kind"] == "purchase"}
    assert entries == {"o1": 100, "o2": 200, "o3": 100}
    read = client.get("/v1/ops/program", token=token("ada", "admin")).json_body
    assert read["version"] == 2 and read["rules"]["double_points"][0]["multiplier"] == 2
    assert client.get("/v1/ops/program", token=token("olivia", "ops")).status_code == 403
    assert client.put("/v1/ops/program", {**PROGRAM, "tiers": []}, token=token("ada", "admin")).status_code == 422
    audit = client.get("/v1/ops/audit-log", token=token("ada", "admin")).json_body["items"]
    assert any(a["action"] == "program.update" for a in audit)


def test_a_fully_refunded_purchase_is_restated_when_an_earlier_purchase_arrives_late(client, streams):
    """The purchase points follow the tier the facts give, whatever the arrival order: a
    purchase refunded in full still says what it earned (and what was taken back) at its tier."""
    put_program(client)
    _, lily, _ = login(client, "lily")
    days(1)
    purchase(client, "o2", lily, 100_00)
    refund(client, "o2", "r2", 100_00)
    streams.drain()
    late = clock.iso(clock.now() - timedelta(hours=12))
    response = client.post("/v1/events/purchases", {"order_id": "o1", "member_id": lily, "amount_fen": 600_00,
                                                    "occurred_at": late}, token=token("brand", "service"))
    assert response.status_code == 200, response.body
    streams.drain()
    entries = {e["order_id"]: (e["amount"], e["reversed_amount"]) for e in
               client.get("/v1/members/me/ledger", token=token(lily)).json_body["items"] if e["kind"] == "purchase"}
    assert entries == {"o1": (600, 0), "o2": (200, 200)}
    assert points(lily) == {"available": 0, "pending": 600}
    assert_balances_match_entries([lily])
