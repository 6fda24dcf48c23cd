"""Engagement: daily check-ins with streaks, share-for-gift with assists, quizzes. Each pays
through the ledger exactly once (stream replays change nothing); concurrency on DynamoDB Local."""
from __future__ import annotations

import os
import threading
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.core import clock
from tests.flows import OPS, login, member, spring_campaign
from tests.helpers import token
from tests.ledger_checks import assert_balances_match_entries, budget_spent, by_rule, entries


def move_to(iso: str) -> None:
    """Set the service's clock to an absolute moment (forward only, as tests move it)."""
    target = clock.parse(iso)
    assert target > clock.now()
    clock.advance(target - clock.now())


def check_in(client, member_id: str, campaign_id: str = "spring"):
    return client.post("/v1/checkins", {"campaign_id": campaign_id}, token=token(member_id))


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.body
    assert response.json_body["error"]["code"] == code, response.json_body


# --- check-ins --------------------------------------------------------------------------------

def test_once_a_day_streak_bonus_and_points_paid_once(client, streams):
    spring_campaign(client, checkin_points=10, checkin_streak_bonus={"3": 50}, hold_days=0)
    _, lily, _ = login(client, "lily")
    first = check_in(client, lily)
    assert first.status_code == 200, first.body
    assert first.json_body | {"day": None} == {"campaign_id": "spring", "day": None, "streak": 1,
                                               "points_awarded": 10, "streak_bonus": 0,
                                               "already_checked_in": False}
    again = check_in(client, lily).json_body
    assert again["already_checked_in"] is True and again["points_awarded"] == 0 and again["streak"] == 1
    days = [first.json_body["day"]]
    for expected_streak, expected_points in ((2, 10), (3, 60)):
        clock.advance(timedelta(days=1))
        answer = check_in(client, lily).json_body
        assert (answer["streak"], answer["points_awarded"]) == (expected_streak, expected_points)
        days.append(answer["day"])
    assert len(set(days)) == 3
    streams.drain()
    assert by_rule(lily) == {"checkin": 30, "checkin_streak": 50}
    streams.replay_from_start()
    streams.drain()
    assert by_rule(lily) == {"checkin": 30, "checkin_streak": 50}
    assert_balances_match_entries([lily])


def test_a_missed_day_starts_the_streak_again(client):
    spring_campaign(client, checkin_points=5)
    _, lily, _ = login(client, "lily")
    assert check_in(client, lily).json_body["streak"] == 1
    clock.advance(timedelta(days=1))
    assert check_in(client, lily).json_body["streak"] == 2
    clock.advance(timedelta(days=2))  # a day missed
    assert check_in(client, lily).json_body["streak"] == 1


def test_a_day_is_the_campaign_time_zone_day(client):
    spring_campaign(client, checkin_points=5)  # Asia/Shanghai: UTC+8
    _, lily, _ = login(client, "lily")
    year = clock.now().year + 1
    move_to(f"{year}-03-10T15:59:00Z")  # 23:59 in Shanghai
    assert check_in(client, lily).json_body["day"] == f"{year}-03-10"
    clock.advance(timedelta(minutes=2))  # 00:01 the next day in Shanghai, the same day in UTC
    answer = check_in(client, lily).json_body
    assert (answer["day"], answer["streak"], answer["already_checked_in"]) == (f"{year}-03-11", 2, False)


def test_checkin_points_stay_inside_the_budget(client, streams):
    spring_campaign(client, checkin_points=10, budget_points=15)
    _, lily, _ = login(client, "lily")
    check_in(client, lily)
    clock.advance(timedelta(days=1))
    check_in(client, lily)
    streams.drain()
    assert by_rule(lily) == {"checkin": 15}
    assert budget_spent("spring") == 15


def test_checkin_refuses_bad_input_and_writes_nothing(client):
    spring_campaign(client, checkin_points=10)
    _, lily, _ = login(client, "lily")
    assert_error(client.post("/v1/checkins", {"campaign_id": "spring", "points": 99}, token=token(lily)),
                 422, "validation_failed")
    assert_error(check_in(client, lily, "no-such-campaign"), 404, "campaign_not_found")
    assert_error(check_in(client, "m_nobody"), 401, "unknown_member")
    assert_error(client.post("/v1/checkins", {}, token=OPS), 403, "wrong_role")
    assert check_in(client, lily).json_body["already_checked_in"] is False  # nothing was stored before


@pytest.mark.ddblocal_only
def test_concurrent_taps_check_in_once(client, streams):
    spring_campaign(client, checkin_points=10)
    _, lily, _ = login(client, "lily")
    answers = concurrently(16, lambda _: check_in(client, lily))
    assert [r.status_code for r in answers] == [200] * 16
    assert sorted(r.json_body["already_checked_in"] for r in answers) == [False] + [True] * 15
    streams.drain()
    assert by_rule(lily) == {"checkin": 10}
    assert_balances_match_entries([lily])


def resent_after_a_lost_answer(monkeypatch, model) -> None:
    """Every put of `model` is applied, its answer lost, and resent (as botocore does after a
    timeout): the resent put's condition meets the item the first one wrote."""
    real = model.save

    def save(self, *args, **kwargs):
        real(self, *args, **kwargs)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(model, "save", save)


def test_a_checkin_resent_after_its_answer_was_lost_is_still_this_taps(client, streams, monkeypatch):
    from chalicelib.engagement.models import CheckIn

    spring_campaign(client, checkin_points=10)
    _, lily, _ = login(client, "lily")
    resent_after_a_lost_answer(monkeypatch, CheckIn)
    first = check_in(client, lily)
    assert first.status_code == 200, first.body
    assert (first.json_body["already_checked_in"], first.json_body["points_awarded"]) == (False, 10)
    assert check_in(client, lily).json_body["already_checked_in"] is True  # a second tap is one
    streams.drain()
    assert by_rule(lily) == {"checkin": 10}


def test_a_share_whose_answer_was_lost_opens_once(client, monkeypatch):
    from chalicelib.engagement.models import Share

    spring_campaign(client)
    _, sam, _ = login(client, "sam")
    resent_after_a_lost_answer(monkeypatch, Share)
    opened = open_share(client, sam)  # 201, not a 500
    assert (opened["assists"], opened["completed"]) == (0, False)


def concurrently(count: int, call):
    """Run `call(i)` on `count` threads released together; their answers."""
    barrier = threading.Barrier(count)
    answers: list = [None] * count
    environ = os.environ  # the test client swaps os.environ per request, which is not thread-safe

    def run(i):
        barrier.wait()
        answers[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        os.environ = environ
    return answers


# --- shares and assists -----------------------------------------------------------------------

def open_share(client, member_id: str, campaign_id: str = "spring"):
    response = client.post("/v1/shares", {"campaign_id": campaign_id, "channel": "wechat_friend"},
                           token=token(member_id))
    assert response.status_code == 201, response.body
    return response.json_body


def assist(client, share_id: str, member_id: str):
    return client.post(f"/v1/shares/{share_id}/assists", token=token(member_id))


def friends(client, count: int, prefix: str = "friend", **login_args) -> list[str]:
    return [login(client, f"{prefix}{i}", f"Friend {i}", **login_args)[1] for i in range(count)]


def test_assists_up_to_the_target_reward_the_sharer_once(client, streams):
    spring_campaign(client, assist_target=3, assist_reward_points=200, hold_days=0)
    _, sam, _ = login(client, "sam", "Samantha")
    share = open_share(client, sam)
    assert (share["target"], share["assists"], share["completed"]) == (3, 0, False)
    pals = friends(client, 4)
    assert_error(assist(client, share["share_id"], sam), 409, "own_share")
    answers = [assist(client, share["share_id"], pal) for pal in pals[:3]]
    assert [a.json_body["assists"] for a in answers] == [1, 2, 3]
    assert answers[-1].json_body["completed"] is True
    repeat = assist(client, share["share_id"], pals[0])
    assert repeat.status_code == 200 and repeat.json_body["already_assisted"] is True
    assert_error(assist(client, share["share_id"], pals[3]), 409, "share_completed")
    public = client.get(f"/v1/shares/{share['share_id']}").json_body
    assert (public["assists"], public["target"], public["completed"]) == (3, 3, True)
    assert public["sharer"]["display_name"] == "S******a"
    streams.drain()
    assert by_rule(sam) == {"share_goal": 200}
    streams.replay_from_start()
    streams.drain()
    assert by_rule(sam) == {"share_goal": 200}
    assert_balances_match_entries([sam, *pals])
    notes = client.get("/v1/members/me/notifications", token=token(sam)).json_body["items"]
    assert [n["kind"] for n in notes].count("share_completed") == 1


def test_new_member_assisters_join_through_the_share_and_bind_to_the_sharer(client, streams):
    spring_campaign(client, assist_target=2, assist_new_members_only=True)
    _, old_friend, _ = login(client, "old-friend")
    _, sam, _ = login(client, "sam")
    share = open_share(client, sam)
    assert_error(assist(client, share["share_id"], old_friend), 409, "not_a_new_member")
    query = parse_qs(urlsplit(share["assist_url"]).query)
    assert query["share"] == [share["share_id"]]
    _, newcomer, answer = login(client, "newcomer", referral={"code": query["ref"][0]})
    assert answer["attribution"]["status"] == "bound"
    assert member(newcomer).referrer_id == sam
    assert assist(client, share["share_id"], newcomer).json_body["assists"] == 1


def test_assists_per_assister_per_day_are_capped(client):
    spring_campaign(client, assist_target=5, assists_per_assister_per_day=1)
    sharers = friends(client, 2, prefix="sharer")
    shares = [open_share(client, s)["share_id"] for s in sharers]
    _, pal, _ = login(client, "pal")
    assert assist(client, shares[0], pal).status_code == 200
    assert_error(assist(client, shares[1], pal), 429, "assist_limit_reached")
    assert client.get(f"/v1/shares/{shares[1]}").json_body["assists"] == 0  # the refusal wrote nothing
    clock.advance(timedelta(days=1))
    assert assist(client, shares[1], pal).json_body["assists"] == 1


def test_one_device_assisting_many_shares_is_flagged_and_then_refused(client, streams):
    spring_campaign(client, assist_target=5, assists_per_device_per_day=2)
    _, sam, _ = login(client, "sam")
    code = client.get("/v1/members/me/code?campaign_id=spring", token=token(sam)).json_body["code"]
    sharers = friends(client, 3, prefix="sharer")
    shares = [open_share(client, s)["share_id"] for s in sharers]
    farm = friends(client, 3, prefix="farm", device_id="dev-1", referral={"code": code})
    assert assist(client, shares[0], farm[0]).status_code == 200
    assert assist(client, shares[1], farm[1]).status_code == 200  # reaches the day's limit
    assert_error(assist(client, shares[2], farm[2]), 429, "device_assist_limit")
    streams.drain()
    streams.replay_from_start()
    streams.drain()
    flags = client.get("/v1/ops/fraud-flags?status=open", token=OPS).json_body["items"]
    assert [(f["referee_id"], f["reasons"]) for f in flags] == [(farm[1], ["assist_farming_device"])]
    assert member(farm[1]).referral_hold == "fraud_review"  # their referral's rewards wait for review
    welcome = [e for e in entries(farm[1]) if e.rule == "welcome"]
    assert all(e.hold == "fraud_review" for e in welcome)


def test_share_progress_and_refusals(client):
    spring_campaign(client, assist_target=2)
    _, sam, _ = login(client, "sam")
    assert_error(client.get("/v1/shares/nope"), 404, "share_not_found")
    assert_error(client.post("/v1/shares", {"channel": "fax"}, token=token(sam)), 422, "validation_failed")
    assert_error(client.post("/v1/shares", {"campaign_id": "nope", "channel": "qq"}, token=token(sam)),
                 404, "campaign_not_found")
    share = open_share(client, sam)
    _, pal, _ = login(client, "pal")
    assert_error(assist(client, "nope", pal), 404, "share_not_found")
    campaign = client.get("/v1/campaigns/spring", token=OPS).json_body
    body = {k: campaign[k] for k in ("campaign_id", "name", "offer", "landing_url", "rules")} | {"status": "ended"}
    assert client.put("/v1/campaigns/spring", body, token=OPS).status_code == 200
    assert_error(assist(client, share["share_id"], pal), 409, "share_ended")
    assert client.get(f"/v1/shares/{share['share_id']}").json_body["open"] is False


@pytest.mark.ddblocal_only
def test_concurrent_assists_at_the_target_count_exactly_the_target_and_pay_once(client, streams):
    spring_campaign(client, assist_target=5, assist_reward_points=200)
    _, sam, _ = login(client, "sam")
    share = open_share(client, sam)
    pals = friends(client, 16)
    answers = concurrently(16, lambda i: assist(client, share["share_id"], pals[i]))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 5 + [409] * 11, [r.body for r in answers]
    assert all(r.json_body["error"]["code"] == "share_completed" for r in answers if r.status_code == 409)
    assert client.get(f"/v1/shares/{share['share_id']}").json_body["assists"] == 5
    streams.drain()
    assert by_rule(sam) == {"share_goal": 200}


# --- quizzes ----------------------------------------------------------------------------------

def quiz_body(**overrides):
    starts = clock.iso(clock.now() - timedelta(hours=1))
    ends = clock.iso(clock.now() + timedelta(days=7))
    return {"campaign_id": "spring", "title": "Know our tea",
            "questions": [{"text": "Where is Longjing grown?", "options": ["Hangzhou", "Lhasa"], "answer": 0},
                          {"text": "Green or black?", "options": ["black", "green", "white"], "answer": 1}],
            "points": 50, "starts_at": starts, "ends_at": ends, **overrides}


def create_quiz(client, **overrides):
    response = client.post("/v1/quizzes", quiz_body(**overrides), token=OPS)
    assert response.status_code == 201, response.body
    return response.json_body


def test_quiz_members_see_no_answers_and_are_rewarded_once(client, streams):
    spring_campaign(client, hold_days=0)
    quiz = create_quiz(client)
    _, lily, _ = login(client, "lily")
    _, tom, _ = login(client, "tom")
    shown = client.get(f"/v1/quizzes/{quiz['quiz_id']}", token=token(lily)).json_body
    assert shown["questions"] == [{"text": "Where is Longjing grown?", "options": ["Hangzhou", "Lhasa"]},
                                  {"text": "Green or black?", "options": ["black", "green", "white"]}]
    path = f"/v1/quizzes/{quiz['quiz_id']}/answers"
    right = client.post(path, {"answers": [0, 1]}, token=token(lily)).json_body
    assert (right["correct"], right["passed"], right["points_awarded"]) == (2, True, 50)
    again = client.post(path, {"answers": [0, 1]}, token=token(lily)).json_body
    assert (again["already_answered"], again["points_awarded"]) == (True, 0)
    wrong = client.post(path, {"answers": [0, 2]}, token=token(tom)).json_body
    assert (wrong["correct"], wrong["passed"], wrong["points_awarded"]) == (1, False, 0)
    streams.drain()
    streams.replay_from_start()
    streams.drain()
    assert by_rule(lily) == {"quiz": 50}
    assert by_rule(tom) == {}
    assert_balances_match_entries([lily, tom])
    listed = client.get("/v1/quizzes?campaign_id=spring", token=OPS).json_body["items"]
    assert [q["quiz_id"] for q in listed] == [quiz["quiz_id"]] and listed[0]["questions"][0]["answer"] == 0


def test_a_quiz_and_an_answer_whose_answers_were_lost_count_as_their_own(client, streams, monkeypatch):
    from chalicelib.engagement.models import Quiz, QuizAttempt

    spring_campaign(client, hold_days=0)
    _, lily, _ = login(client, "lily")
    resent_after_a_lost_answer(monkeypatch, Quiz)
    quiz = create_quiz(client)  # 201, not a 500
    resent_after_a_lost_answer(monkeypatch, QuizAttempt)
    path = f"/v1/quizzes/{quiz['quiz_id']}/answers"
    right = client.post(path, {"answers": [0, 1]}, token=token(lily)).json_body
    assert (right["already_answered"], right["points_awarded"]) == (False, 50)
    again = client.post(path, {"answers": [0, 1]}, token=token(lily)).json_body
    assert (again["already_answered"], again["points_awarded"]) == (True, 0)  # a second answer is one
    streams.drain()
    assert by_rule(lily) == {"quiz": 50}


def test_quiz_pass_mark_rewards_fewer_than_all(client):
    spring_campaign(client)
    quiz = create_quiz(client, pass_mark=1)
    _, tom, _ = login(client, "tom")
    answer = client.post(f"/v1/quizzes/{quiz['quiz_id']}/answers", {"answers": [0, 2]}, token=token(tom)).json_body
    assert (answer["correct"], answer["passed"], answer["points_awarded"]) == (1, True, 50)


def test_quiz_refuses_bad_definitions_and_answers(client):
    spring_campaign(client)
    _, lily, _ = login(client, "lily")
    bad_answer = quiz_body()
    bad_answer["questions"][0]["answer"] = 5
    assert_error(client.post("/v1/quizzes", bad_answer, token=OPS), 422, "answer_not_an_option")
    later = clock.iso(clock.now() + timedelta(days=1))
    assert_error(client.post("/v1/quizzes", quiz_body(ends_at=later, starts_at=later), token=OPS),
                 422, "validation_failed")
    assert_error(client.post("/v1/quizzes", quiz_body(pass_mark=3), token=OPS), 422, "pass_mark_too_high")
    assert_error(client.post("/v1/quizzes", quiz_body(), token=token(lily)), 403, "wrong_role")
    assert client.get("/v1/quizzes?campaign_id=spring", token=OPS).json_body["items"] == []
    quiz = create_quiz(client)
    path = f"/v1/quizzes/{quiz['quiz_id']}/answers"
    assert_error(client.post(path, {"answers": [0]}, token=token(lily)), 422, "wrong_answer_count")
    assert_error(client.post(path, {"answers": [0, "1"]}, token=token(lily)), 422, "validation_failed")
    assert_error(client.post("/v1/quizzes/nope/answers", {"answers": [0]}, token=token(lily)), 404, "quiz_not_found")
    future = create_quiz(client, starts_at=later, ends_at=clock.iso(clock.now() + timedelta(days=2)))
    assert_error(client.post(f"/v1/quizzes/{future['quiz_id']}/answers", {"answers": [0, 1]}, token=token(lily)),
                 409, "quiz_not_open")
    assert client.post(path, {"answers": [0, 1]}, token=token(lily)).json_body["already_answered"] is False


@pytest.mark.parametrize("action", ["approve", "reject"])
def test_a_farming_flag_on_a_member_without_a_referral_can_be_resolved(client, streams, action):
    spring_campaign(client, assist_target=5, assists_per_device_per_day=1)
    _, sam, _ = login(client, "sam")
    share = open_share(client, sam)
    _, pal, _ = login(client, "pal", device_id="dev-9")
    assert assist(client, share["share_id"], pal).status_code == 200
    streams.drain()
    flags = client.get("/v1/ops/fraud-flags?status=open", token=OPS).json_body["items"]
    assert [(f["referee_id"], f["reasons"]) for f in flags] == [(pal, ["assist_farming_device"])]
    resolved = client.post(f"/v1/ops/fraud-flags/{pal}/resolve", {"action": action}, token=OPS)
    assert resolved.status_code == 200, resolved.body
    assert member(pal).referral_status is None and member(pal).referral_hold is None


# --- rules ------------------------------------------------------------------------------------

def test_pure_rules_doctests():
    import doctest

    from chalicelib.engagement import rules

    result = doctest.testmod(rules)
    assert result.attempted >= 6 and result.failed == 0


@pytest.mark.parametrize("bad", [{"assists_per_assister_per_day": 0}, {"assist_new_members_only": "yes"},
                                 {"assists_per_device_per_day": 0}, {"checkin_streak_bonus": {"0": 5}},
                                 {"assist_target": 0}])
def test_engagement_rule_fields_are_validated_on_write(client, bad):
    body = {"campaign_id": "summer", "name": "Summer", "landing_url": "https://shop.example.com/s", "rules": bad}
    assert_error(client.post("/v1/campaigns", body, token=OPS), 422, "validation_failed")
    assert client.get("/v1/campaigns/summer", token=OPS).status_code == 404
