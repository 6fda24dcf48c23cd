"""DynamoDB failing as it does under contention and load (chalicelib/store/faults.py): nothing
is lost or paid twice, routes answer a clean, retryable 503, and the hot items of a viral code
(budget, sign-up window) are sharded without ever passing the budget."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from chalicelib.core import clock
from chalicelib.facts.models import Order, SignupWindow
from chalicelib.rewards import budget, sweeps
from chalicelib.store import faults
from chalicelib.store.base import transient
from tests.conftest import BACKEND
from tests.flows import SERVICE, change_rules, code_of, login, member, signed_up, spring_campaign
from tests.ledger_checks import assert_balances_match_entries, entries

class Scripted(faults.Plan):
    """Meets the listed faults on the first calls of the listed operations, then none."""

    def __init__(self, **script: list[str | None]):
        super().__init__(backoff=0.0)
        self.script = {op: list(kinds) for op, kinds in script.items()}

    def draw(self, operation: str) -> str | None:
        kinds = self.script.get(operation)
        kind = kinds.pop(0) if kinds else None
        if kind:
            self.injected[kind] += 1
        return kind


@pytest.fixture
def injected():
    def start(plan: faults.Plan) -> faults.Plan:
        faults.install(plan)
        return plan

    yield start
    faults.uninstall()


# -- how a failure reaches the caller ------------------------------------------------------------

def test_a_throttled_route_answers_a_retryable_503_and_writes_nothing(client, injected):
    client.post("/v1/events/signups", {"member_id": "b", "display_name": "B"}, token=SERVICE)
    injected(faults.Plan(throttle=1.0, backoff=0.0))
    answer = client.post("/v1/events/purchases", {"order_id": "o1", "member_id": "b", "amount_fen": 100_00},
                         token=SERVICE)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert answer.json_body["error"]["code"] == "service_busy"
    faults.uninstall()
    with pytest.raises(Order.DoesNotExist):
        Order.get(*Order.key("o1"), consistent_read=True)


def test_a_conflict_is_tried_again_and_a_lost_answer_is_absorbed(client, injected):
    client.post("/v1/events/signups", {"member_id": "b", "display_name": "B"}, token=SERVICE)
    client.post("/v1/events/purchases", {"order_id": "o1", "member_id": "b", "amount_fen": 100_00}, token=SERVICE)
    # the refund's transaction meets a conflict (retried below the service), its retry then
    # happens but its answer is lost (botocore retries with the same token: written once)
    plan = injected(Scripted(TransactWriteItems=["conflict", "timeout_after"],
                             PutItem=["timeout_after"]))
    refund = client.post("/v1/events/refunds", {"order_id": "o1", "refund_id": "r1", "amount_fen": 30_00},
                         token=SERVICE)
    assert refund.status_code == 200, refund.body
    # a new order whose put was applied but whose answer was lost: the retry meets its own order
    again = client.post("/v1/events/purchases", {"order_id": "o2", "member_id": "b", "amount_fen": 10_00},
                        token=SERVICE)
    assert again.status_code == 200, again.body
    assert plan.injected == {"conflict": 1, "timeout_after": 2}
    assert int(Order.get(*Order.key("o1"), consistent_read=True).refunded_fen) == 30_00


def test_transient_tells_passing_failures_from_bugs():
    from botocore.exceptions import ClientError, ReadTimeoutError

    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")
    condition = ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")
    assert transient(throttled) and transient(ReadTimeoutError(endpoint_url="x"))
    assert not transient(condition) and not transient(ValueError("bug"))


def test_faults_stay_off_in_a_deployed_stage_unless_named(monkeypatch):
    monkeypatch.setenv("FAULTS", "conflict=0.5")
    monkeypatch.setenv("STAGE", "prod")
    assert faults.from_env() is None
    monkeypatch.setenv("FAULTS_STAGE", "prod")
    assert faults.from_env().conflict == 0.5
    monkeypatch.setenv("FAULTS", "explode=1")
    with pytest.raises(ValueError):
        faults.from_env()


# -- lost answers: a write applied, its answer lost, the call resent by botocore ---------------

def test_a_first_login_whose_answer_was_lost_still_says_created(client, injected):
    # the member and identity are one transaction: its resend carries the same token, so the
    # login that made the member says so (the mini-program shows its welcome) and a second does not
    plan = injected(Scripted(TransactWriteItems=["timeout_after"]))
    first = client.post("/v1/auth/login", {"provider": "dev", "openid": "lily", "display_name": "Lily"})
    assert plan.injected == {"timeout_after": 1}
    assert first.status_code == 200 and first.json_body["created"] is True, first.body
    again = login(client, "lily")[2]
    assert again["created"] is False and again["member"] == first.json_body["member"]


def test_a_share_link_whose_answer_was_lost_is_created_once(client, injected):
    from chalicelib.referrals.models import Link

    token = login(client, "lily")[0]
    client.get("/v1/members/me/code", token=token)  # the code exists: the link's write is the only one
    plan = injected(Scripted(TransactWriteItems=["timeout_after"]))  # the link with its day's quota
    answer = client.post("/v1/links", {"channel": "wechat_moments"}, token=token)
    assert plan.injected == {"timeout_after": 1}
    assert answer.status_code == 201, answer.body  # its own link, not a 500
    faults.uninstall()
    link_id = answer.json_body["link_id"]
    assert Link.get(*Link.key(link_id), consistent_read=True).channel == "wechat_moments"
    assert client.get(f"/v1/links/{link_id}", token=token).status_code == 200


# -- a viral code under faults: the same money as without --------------------------------------

def _send(client, path: str, body: dict, role: str = "service", tries: int = 20):
    """The brand's backend (or ops): retries a busy answer with the same request."""
    from tests.helpers import token

    for _ in range(tries):
        answer = client.post(path, body, token=token(f"brand-{role}", role))  # minted on the moved clock
        if answer.status_code != 503:
            assert answer.status_code == 200, (path, answer.status_code, answer.body)
            return answer.json_body
    raise AssertionError(f"{path} stayed busy")


def _settle(streams) -> None:
    for _ in range(40):
        if streams.drain(ignore_backoff=True) == 0:
            return
    raise AssertionError("the streams never went quiet")


def _release() -> None:
    for _ in range(20):  # the scheduler fires again on the next tick
        try:
            sweeps.release_due()
            return
        except Exception as exc:  # noqa: BLE001 - only passing failures may happen here
            assert transient(exc), exc
    raise AssertionError("the release sweep stayed busy")


CAMPAIGN_POINTS = {"welcome", "conversion", "commission", "second_level", "milestone"}


def viral_scenario(client, streams, ns: str) -> dict:
    """A KOC's code brings 12 friends; two of them bring 2 each; most buy, some twice; one
    refund; the hold passes and the rewards are released. Returns what a user would notice."""
    campaign = f"viral-{ns}"
    _send(client, "/v1/campaigns", {
        "campaign_id": campaign, "name": "Viral", "landing_url": "https://shop.example.com/viral",
        "rules": {"min_purchase_fen": 50_00, "referrer_conversion_points": 500, "hold_days": 7,
                  "advocate_levels": [{"name": "friend", "min_conversions": 0, "commission_bps": 300}],
                  "budget_points": 1_000_000, "referee_signup_points": 100, "second_level_bps": 100}},
          role="ops")
    signup = lambda member_id, code=None: _send(  # noqa: E731
        client, "/v1/events/signups",
        {"member_id": member_id, "display_name": member_id, **({"referral": {"code": code}} if code else {})})
    koc = f"{ns}-koc"
    signup(koc)
    code = code_of(koc, campaign)
    friends = [f"{ns}-f{i}" for i in range(12)]
    for friend in friends:
        signup(friend, code)
    grandchildren = [f"{ns}-g{i}{j}" for i in range(2) for j in range(2)]
    for g in grandchildren:
        signup(g, code_of(friends[int(g[-2])], campaign))
    buy = lambda order, who, fen: _send(client, "/v1/events/purchases",  # noqa: E731
                                        {"order_id": f"{ns}-{order}", "member_id": who, "amount_fen": fen})
    for i, friend in enumerate(friends[:10]):
        buy(f"o{i}", friend, 80_00 + 10_00 * i)
    for i, g in enumerate(grandchildren):
        buy(f"og{i}", g, 120_00)
    buy("o0b", friends[0], 60_00)
    buy("o1b", friends[1], 200_00)
    _settle(streams)
    clock.advance(timedelta(days=3))  # past the quick-refund window: no fraud flag
    _send(client, "/v1/events/refunds", {"order_id": f"{ns}-o1b", "refund_id": "r1", "amount_fen": 50_00})
    _settle(streams)
    clock.advance(timedelta(days=5))
    _release()
    _settle(streams)
    everyone = [koc, *friends, *grandchildren]
    assert_balances_match_entries(everyone)
    strip = lambda text: (text or "").replace(ns, "NS")  # noqa: E731 - the two runs' ids differ only by it
    return {
        "ledger": sorted((strip(e.member_id), strip(e.entry_id), e.rule, int(e.amount), int(e.reversed_amount or 0),
                          e.status, bool(e.hold), strip(e.campaign_id)) for m in everyone for e in entries(m)),
        "balances": {strip(m): (int(x.points_available), int(x.points_pending), signed_up(m),
                                int(x.referrals_converted), int(x.orders), int(x.gmv_fen))
                     for m in everyone for x in [member(m)]},
        "budget": budget.totals(campaign),
        "signups_through_code": sum(int(w.signups) for w in SignupWindow.query(f"SIGNUPS#{code}")),
    }


def test_a_viral_code_under_faults_pays_exactly_what_it_pays_without(client, streams, injected):
    calm = viral_scenario(client, streams, "calm")
    plan = injected(faults.Plan(conflict=0.08, throttle=0.03, timeout=0.04, after=0.5, seed=18, backoff=0.0))
    stormy = viral_scenario(client, streams, "storm")
    faults.uninstall()
    assert sum(plan.injected.values()) > 50 and set(plan.injected) == {"conflict", "throttle", "timeout_before",
                                                                        "timeout_after"}
    assert stormy == calm
    campaign_points = [(a, r) for _, _, rule, a, r, _, _, campaign in calm["ledger"]
                       if campaign == "viral-NS" and rule in CAMPAIGN_POINTS]
    assert calm["budget"]["points"] == sum(a - r for a, r in campaign_points) > 0  # the shards add up
    failures = client.get("/v1/ops/stream-failures", token=_admin()).json_body["items"]
    assert failures == []  # nothing was handed to the failure destination


def _admin() -> str:
    from tests.helpers import token

    return token("root", "admin")


# -- the sharded budget -------------------------------------------------------------------------

def test_an_award_bigger_than_its_shard_borrows_from_the_next_and_the_budget_still_binds(client, streams):
    spring_campaign(client, budget_points=2_000, referee_signup_points=0)  # slices of 250
    client.post("/v1/events/signups", {"member_id": "koc", "display_name": "K"}, token=SERVICE)
    code = code_of("koc", "spring")
    for i in range(4):
        client.post("/v1/events/signups", {"member_id": f"f{i}", "display_name": "F",
                                           "referral": {"code": code}}, token=SERVICE)
        client.post("/v1/events/purchases", {"order_id": f"o{i}", "member_id": f"f{i}", "amount_fen": 100_00},
                    token=SERVICE)  # each: 500 + 300 wanted, 3,200 in all
    streams.drain()
    paid = sorted((e.entry_id, int(e.amount)) for e in entries("koc") if e.campaign_id == "spring")
    assert sum(a for _, a in paid) == 2_000 == budget.totals("spring")["points"]
    # the awards as handled: whole while the budget lasts, the one that meets its end cut, then none
    assert [a for _, a in sorted(paid, key=lambda p: p[1], reverse=True)].count(0) >= 1
    shards = budget.usage("spring", budget.POINTS).shards
    assert all(0 <= s <= 250 for s in shards) and sum(shards) == 2_000


def test_a_budget_written_before_sharding_still_counts(client, streams):
    from chalicelib.rewards.models import BudgetUsage

    spring_campaign(client, budget_points=1_000, referee_signup_points=0)
    BudgetUsage(*BudgetUsage.key("spring"), spent=900).save()  # the unsharded item of the old code
    budget._legacy.clear()
    client.post("/v1/events/signups", {"member_id": "koc", "display_name": "K"}, token=SERVICE)
    client.post("/v1/events/signups", {"member_id": "f", "display_name": "F",
                                       "referral": {"code": code_of("koc", "spring")}}, token=SERVICE)
    client.post("/v1/events/purchases", {"order_id": "o1", "member_id": "f", "amount_fen": 100_00}, token=SERVICE)
    streams.drain()
    assert sum(int(e.amount) for e in entries("koc")) == 100  # 500 + 300 wanted, 100 left
    assert budget.totals("spring")["points"] == 1_000


def _pay(rules, member_id: str, source: str, points: int) -> int:
    """Award `points` in the spring campaign straight through the ledger: what it paid."""
    from chalicelib.rewards import ledger
    from chalicelib.rewards.rules import Award

    return int(ledger.award(Award(member_id, "adjustment_test", source, points, "test"), "spring", rules).amount)


def _sources_at(shard: int, count: int) -> list[str]:
    """Award sources whose home shard is `shard` (budget.home hashes the entry id)."""
    found = (f"s{n}" for n in range(10_000) if budget.home("spring", f"adjustment_test.s{n}") == shard)
    return [next(found) for _ in range(count)]


def test_a_lowered_budget_pays_nothing_even_on_a_shard_with_room(client, streams):
    """All the spend sits on one shard; ops lower the budget under it: an award whose own shard is
    empty pays nothing, until a return brings the spend under the budget, then only what is left."""
    from chalicelib.campaigns import service as campaigns
    from chalicelib.rewards import ledger

    campaign = spring_campaign(client, budget_points=8_000)  # slices of 1,000
    rules = campaigns.rules_of(campaigns.current("spring"))
    client.post("/v1/events/signups", {"member_id": "m", "display_name": "M"}, token=SERVICE)
    big, *small = _sources_at(0, 1) + _sources_at(1, 3)

    def pay(source: str, points: int) -> int:
        return _pay(rules, "m", source, points)

    assert pay(big, 1_000) == 1_000
    change_rules(client, campaign, budget_points=800)
    assert pay(small[0], 50) == 0  # its shard has room; the budget has none
    ledger.reverse_to("m", f"adjustment_test.{big}", 300)  # 700 spent: 100 left
    assert [pay(small[1], 50), pay(small[2], 100)] == [50, 50]
    assert budget.totals("spring")["points"] == 800
    assert_balances_match_entries(["m"])


def test_a_budget_removed_and_set_again_counts_what_was_spent_without_it(client, streams):
    """Spend while no budget binds is counted; the same budget set again is a new basis: the
    shards are re-cut with that spend in, and nothing passes the budget."""
    from chalicelib.campaigns import service as campaigns

    campaign = spring_campaign(client, budget_points=800)  # slices of 100
    rules = campaigns.rules_of(campaigns.current("spring"))
    client.post("/v1/events/signups", {"member_id": "m", "display_name": "M"}, token=SERVICE)
    first, big = _sources_at(0, 2)

    def pay(source: str, points: int) -> int:
        return _pay(rules, "m", source, points)

    assert pay(first, 100) == 100
    change_rules(client, campaign, budget_points=None)
    assert pay(big, 600) == 600
    change_rules(client, campaign, budget_points=800)
    assert [pay(source, 100) for shard in range(1, 8) for source in _sources_at(shard, 1)] == [100] + [0] * 6
    assert budget.totals("spring")["points"] == 800
    assert_balances_match_entries(["m"])


def test_spend_recorded_before_sharding_above_the_budget_binds_with_returns_on_the_shards(client):
    """The unsharded item alone passes the budget; returns took the shards below zero: the shards
    are re-cut without changing the sum, and two charges read at once cannot both take the room."""
    from chalicelib.rewards.models import BudgetUsage
    from pynamodb.exceptions import TransactWriteError

    from chalicelib.store.base import transaction

    BudgetUsage(*BudgetUsage.key("old"), spent=1_000).save()
    budget._legacy.clear()
    for shard in range(8):
        with transaction() as tx:
            budget.adjust(tx, "old", _sources_at(shard, 1)[0], -40, budget.POINTS)  # returns: 680 in all
    limit, read = budget.ready("old", budget.POINTS, budget.Limit(600))  # over: the sum is kept
    assert read.total == budget.totals("old")["points"] == 680
    limit, read = budget.ready("old", budget.POINTS, budget.Limit(800))
    assert read.total == 680
    taken = 0
    for source in ("a", "b"):  # both bounded by the same read: 120 left
        try:
            with transaction() as tx:
                assert budget.charge(tx, "old", source, 800 - read.total, budget.POINTS, limit, read)
            taken += 120
        except TransactWriteError:
            pass
    assert taken == 120 and budget.totals("old")["points"] == 800


@pytest.mark.ddblocal_only
def test_concurrent_awards_on_a_viral_code_never_pass_the_budget(client, streams, app):
    """Threads award at once (DynamoDB Local serialises them for real): the shards' slices hold."""
    from chalicelib.campaigns import service as campaigns
    from chalicelib.rewards import ledger
    from chalicelib.rewards.rules import Award

    spring_campaign(client, budget_points=3_000)
    rules = campaigns.rules_of(campaigns.current("spring"))
    for i in range(3):
        client.post("/v1/events/signups", {"member_id": f"m{i}", "display_name": "M"}, token=SERVICE)
    errors: list[Exception] = []

    def pay(n: int) -> None:
        try:
            ledger.award(Award(f"m{n % 3}", "adjustment_test", f"s{n}", 170, "test"), "spring", rules)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=pay, args=(n,)) for n in range(24)]  # 4,080 wanted
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    paid = sum(int(e.amount) for i in range(3) for e in entries(f"m{i}") if e.rule == "adjustment_test")
    assert paid == budget.totals("spring")["points"] == 3_000
    assert_balances_match_entries([f"m{i}" for i in range(3)])


@pytest.mark.ddblocal_only
def test_a_budget_lowered_while_awards_and_returns_land_keeps_the_spend_exact(client, streams, app):
    """Awards, returns and a budget cut at once: the shards are re-cut under load (each shard
    conditioned on what was read), the spend stays the sum of what stands, and once the dust
    settles nothing is paid past the new budget."""
    from chalicelib.campaigns import service as campaigns
    from chalicelib.rewards import ledger

    campaign = spring_campaign(client, budget_points=3_000)
    rules = campaigns.rules_of(campaigns.current("spring"))
    for i in range(3):
        client.post("/v1/events/signups", {"member_id": f"m{i}", "display_name": "M"}, token=SERVICE)
    for n in range(6):  # paid before: returned during the run
        _pay(rules, f"m{n % 3}", f"early{n}", 170)
    errors: list[Exception] = []

    def run(work) -> None:
        try:
            work()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def cut() -> None:
        change_rules(client, campaign, budget_points=1_500)

    works = [lambda n=n: _pay(rules, f"m{n % 3}", f"s{n}", 170) for n in range(18)]
    works += [lambda n=n: ledger.reverse_to(f"m{n % 3}", f"adjustment_test.early{n}", 170) for n in range(6)]
    works.insert(9, cut)
    threads = [threading.Thread(target=run, args=(w,)) for w in works]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    standing = sum(e.standing for i in range(3) for e in entries(f"m{i}") if e.rule == "adjustment_test")
    assert standing == budget.totals("spring")["points"] <= 3_000
    after = _pay(rules, "m0", "last", 170)
    assert after == max(0, min(170, 1_500 - standing))
    assert budget.totals("spring")["points"] == standing + after
    assert_balances_match_entries([f"m{i}" for i in range(3)])


def test_the_hourly_sign_up_window_is_counted_across_its_shards(client, streams):
    spring_campaign(client, signups_per_hour_alert=5)
    client.post("/v1/events/signups", {"member_id": "koc", "display_name": "K"}, token=SERVICE)
    code = code_of("koc", "spring")
    held = []
    for i in range(8):
        answer = client.post("/v1/events/signups", {"member_id": f"f{i}", "display_name": "F",
                                                    "referral": {"code": code}}, token=SERVICE).json_body
        held.append(answer["attribution"]["held_for_review"])
    assert held == [False] * 5 + [True] * 3  # the 6th sign-up in the hour passes the alert
    windows = list(SignupWindow.query(f"SIGNUPS#{code}"))
    assert len(windows) > 1 and sum(int(w.signups) for w in windows) == 8


def test_no_campaign_takes_the_program_budget_key(client):
    from tests.helpers import token

    body = {"campaign_id": "program", "name": "P", "landing_url": "https://shop.example.com/p"}
    answer = client.post("/v1/campaigns", body, token=token("olivia", "ops"))
    assert answer.status_code == 422 and answer.json_body["error"]["code"] == "campaign_id_reserved"


def test_a_viral_codes_sign_ups_count_in_shards_and_never_write_the_referrers_item(client, streams, monkeypatch):
    """DynamoDB cancels transactions that meet on one item: the sign-up transaction adds to a
    shard of the referrer's count (by the friend's id), not to the referrer's member item, and
    the profile and the ops view count every shard; a rejected friend comes off the count."""
    from botocore.client import BaseClient

    from chalicelib.members.models import Member, SignupCount
    from tests.helpers import token

    spring_campaign(client, signups_per_hour_alert=5)
    client.post("/v1/events/signups", {"member_id": "koc", "display_name": "K"}, token=SERVICE)
    code = code_of("koc", "spring")
    written: list[tuple[str, str]] = []
    original = BaseClient._make_api_call

    def capture(self, operation, params):
        if operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                (body,) = action.values()
                key = body.get("Key") or body["Item"]
                written.append((key["pk"]["S"], key["sk"]["S"]))
        return original(self, operation, params)

    with monkeypatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", capture)
        for i in range(8):
            answer = client.post("/v1/events/signups", {"member_id": f"f{i}", "display_name": "F",
                                                        "referral": {"code": code}}, token=SERVICE)
            assert answer.status_code == 200 and answer.json_body["attribution"]["status"] == "bound"
    assert Member.key("koc") not in written
    shards = [key for key in written if key[0] == "M#koc"]
    assert len(shards) == 8 and len(set(shards)) > 1 and set(shards) <= set(SignupCount.keys("koc"))
    streams.drain()
    me = client.get("/v1/members/me", token=token("koc")).json_body
    assert me["advocate"]["referrals"]["signed_up"] == 8
    view = client.get("/v1/ops/members/koc", token=token("olivia", "ops")).json_body
    assert view["downline"]["level_1"]["signed_up"] == 8
    # the 6th to 8th sign-ups of the hour were held for review: rejecting one takes it off the count
    answer = client.post("/v1/ops/fraud-flags/f7/resolve", {"action": "reject"}, token=token("olivia", "ops"))
    assert answer.status_code == 200, answer.body
    assert signed_up("koc") == 7
    assert client.get("/v1/members/me", token=token("koc")).json_body["advocate"]["referrals"]["signed_up"] == 7
