"""Leaderboards from the stream: order and ties, periods rolling over, refunds taking scores
back, masked names for members, my rank (exact, and estimated with its error), redelivery."""
from __future__ import annotations

from datetime import timedelta

from chalicelib.core import clock
from chalicelib.leaderboards import ranking
from tests.flows import code_of, login, spring_campaign
from tests.helpers import keep_main_records, redrive_main, token


def ops():
    return token("olivia", "ops")


def purchase(client, order_id, member_id, amount_fen):
    response = client.post("/v1/events/purchases", {"order_id": order_id, "member_id": member_id,
                                                    "amount_fen": amount_fen}, token=token("brand", "service"))
    assert response.status_code == 200, response.body


def signup(client, member_id, code):
    """A sign-up with a service token issued now (the clock moves by months here)."""
    response = client.post("/v1/events/signups", {"member_id": member_id, "display_name": member_id,
                                                  "referral": {"code": code}}, token=token("brand", "service"))
    assert response.status_code == 200, response.body


def refund(client, order_id, refund_id, amount_fen):
    response = client.post("/v1/events/refunds", {"order_id": order_id, "refund_id": refund_id,
                                                  "amount_fen": amount_fen}, token=token("brand", "service"))
    assert response.status_code == 200, response.body


def board(client, metric="referrals", period="all", as_token=None, limit=20):
    response = client.get(f"/v1/leaderboards/spring?metric={metric}&period={period}&limit={limit}",
                          token=as_token or ops())
    assert response.status_code == 200, response.body
    rows = [(row["rank"], row["member"].get("display_name"), row["score"]) for row in response.json_body["items"]]
    assert [rank for rank, _, _ in rows] == sorted(rank for rank, _, _ in rows)
    return sorted(rows)  # tied members share a rank; their order among themselves is by member id


def advocates(client):
    spring_campaign(client)
    ids = {}
    for name in ("Ada", "Bob", "Cai"):
        _, ids[name], _ = login(client, f"{name.lower()}-openid", name)
    return ids


def refer(client, advocate_id, referee, amount_fen=100_00, order=None):
    signup(client, referee, code_of(advocate_id, "spring"))
    purchase(client, order or f"o-{referee}", referee, amount_fen)


def test_order_ties_masked_names_and_my_rank(client, streams):
    ids = advocates(client)
    for n in range(3):
        refer(client, ids["Ada"], f"ada-friend-{n}", 100_00)
    refer(client, ids["Bob"], "bob-friend", 80_00)
    refer(client, ids["Cai"], "cai-friend", 60_00)
    refer(client, ids["Cai"], "cai-small", 10_00)  # under the ¥50 minimum: no conversion, but referred GMV
    streams.drain()
    assert board(client) == [(1, "Ada", 3), (2, "Bob", 1), (2, "Cai", 1)]
    assert board(client, "gmv") == [(1, "Ada", 300_00), (2, "Bob", 80_00), (3, "Cai", 70_00)]
    points = board(client, "points")
    assert points[0][:2] == (1, "Ada") and points[0][2] > 0
    assert board(client, limit=1) == [(1, "Ada", 3)]
    # members see masked names, and their own rank
    member = token(ids["Bob"])
    assert board(client, as_token=member) == [(1, "A*a", 3), (2, "B*b", 1), (2, "C*i", 1)]
    me = client.get("/v1/leaderboards/spring/me?metric=gmv", token=member).json_body
    assert (me["rank"], me["score"], me["exact"]) == (2, 80_00, True)
    nobody = client.get("/v1/leaderboards/spring/me", token=token("m-nobody")).json_body
    assert (nobody["rank"], nobody["score"]) == (None, 0)
    assert client.get("/v1/leaderboards/spring/me", token=ops()).status_code == 403


def test_refunds_take_scores_back(client, streams):
    ids = advocates(client)
    refer(client, ids["Ada"], "f1", 100_00)
    refer(client, ids["Ada"], "f2", 100_00)
    streams.drain()
    assert board(client) == [(1, "Ada", 2)] and board(client, "gmv") == [(1, "Ada", 200_00)]
    clock.advance(timedelta(days=3))  # past the quick-refund window: no fraud flag
    refund(client, "o-f1", "r1", 30_00)  # partial: GMV only
    refund(client, "o-f2", "r2", 100_00)  # full: the conversion is undone
    streams.drain()
    assert board(client, "gmv") == [(1, "Ada", 70_00)]  # 100 − 30, and 100 − 100
    assert board(client) == [(1, "Ada", 1)]


def test_periods_roll_over(client, streams):
    ids = advocates(client)
    clock.advance(clock.parse("2027-01-28T04:00:00Z") - clock.now())  # a Thursday, ISO week 4
    refer(client, ids["Ada"], "f1")
    streams.drain()
    clock.advance(timedelta(days=7))  # 4 February: next month, next week
    refer(client, ids["Ada"], "f2")
    refer(client, ids["Bob"], "f3")
    streams.drain()
    assert board(client) == [(1, "Ada", 2), (2, "Bob", 1)]
    assert board(client, period="2027-01") == [(1, "Ada", 1)]
    assert board(client, period="2027-02") == [(1, "Ada", 1), (1, "Bob", 1)]
    assert board(client, period="2027-W04") == [(1, "Ada", 1)]
    assert board(client, period="2027-W05") == [(1, "Ada", 1), (1, "Bob", 1)]
    assert board(client, period="2026-12") == []


def test_redelivery_changes_no_score(client, streams):
    ids = advocates(client)
    refer(client, ids["Ada"], "f1")
    refer(client, ids["Bob"], "f2", 70_00)
    refund(client, "o-f1", "r1", 20_00)
    streams.drain()
    before = (board(client), board(client, "gmv"), board(client, "points"))
    streams.replay_from_start()
    assert streams.drain() > 0
    assert (board(client), board(client, "gmv"), board(client, "points")) == before


def test_rank_beyond_the_exact_range_is_estimated_with_its_error(client, streams, monkeypatch):
    ids = advocates(client)
    refer(client, ids["Ada"], "f1", 100_00)  # ¥100 and ¥98 share the bucket ¥92.16–¥102.39
    refer(client, ids["Bob"], "f2", 98_00)
    refer(client, ids["Cai"], "f3", 5_00)
    streams.drain()
    monkeypatch.setattr(ranking, "EXACT_UP_TO", 0)
    me = client.get("/v1/leaderboards/spring/me?metric=gmv", token=token(ids["Bob"]),
                    headers={"Accept-Language": "en"}).json_body
    assert me["exact"] is False and me["score"] == 98_00
    assert abs(me["rank"] - 2) <= me["error"] == 2 and me["note"] == "estimated beyond the top 0 of a shard: within ±2"
    chinese = client.get("/v1/leaderboards/spring/me?metric=gmv", token=token(ids["Bob"])).json_body
    assert chinese["note"] == "估算值（超出分片前 0 名的精确范围）：误差 ±2"
    # A score alone in its bucket, or its bucket's top score: the buckets above count it exactly.
    me = client.get("/v1/leaderboards/spring/me?metric=gmv", token=token(ids["Cai"])).json_body
    assert (me["rank"], me["score"], me["exact"]) == (3, 5_00, True)
    me = client.get("/v1/leaderboards/spring/me", token=token(ids["Bob"])).json_body
    assert (me["rank"], me["score"], me["exact"]) == (1, 1, True)  # tied with Ada (Cai's ¥5 converts no one)


def test_bucket_counts_kept_one_item_per_bucket_before_the_groups_still_count(client, monkeypatch):
    """An upgraded deployment holds single-bucket count items (`B#<bucket>`); from then on a
    score's move is counted in the group items (`G#`): my rank adds both."""
    from chalicelib.leaderboards import rules, scores
    from chalicelib.leaderboards.models import BucketCount, BucketGroup

    b = rules.board("spring", "gmv", "all")
    members = ("m_a", "m_b")
    assert rules.shard("m_a") == rules.shard("m_b")  # one shard: the counts below are its own
    for n, member in enumerate(members):
        scores.apply(f"old.{n}", {b: (member, 20_00)})
    shard, bucket = rules.shard("m_a"), rules.bucket(20_00)
    group = BucketGroup.get(*BucketGroup.key(b, shard, rules.bucket_group(bucket)))
    group.delete()  # as the older deployment kept them:
    BucketCount(*BucketCount.key(b, shard, bucket), count=2).save()
    scores.apply("old.0", {b: ("m_a", 200_00)})  # Ada moves up, counted in the groups
    monkeypatch.setattr(ranking, "EXACT_UP_TO", 0)
    assert ranking.rank_of(b, "m_b") == {"rank": 2, "score": 20_00, "exact": True}  # alone in its bucket now
    assert ranking.rank_of(b, "m_a") == {"rank": 1, "score": 200_00, "exact": True}
    counts: dict[int, int] = {}
    for found, count in ranking._bucket_counts(b, shard):
        counts[found] = counts.get(found, 0) + count
    assert {k: v for k, v in counts.items() if v} == {bucket: 1, rules.bucket(200_00): 1}


def test_bad_queries(client):
    spring_campaign(client)
    assert client.get("/v1/leaderboards/spring?period=2026-13", token=ops()).status_code == 422
    assert client.get("/v1/leaderboards/spring?metric=likes", token=ops()).status_code == 422
    assert client.get("/v1/leaderboards/spring?limit=101", token=ops()).status_code == 422
    missing = client.get("/v1/leaderboards/nope", token=ops())
    assert missing.status_code == 404 and missing.json_body["error"]["code"] == "campaign_not_found"
    assert client.get("/v1/leaderboards/spring").status_code == 401


def test_a_tie_cut_by_the_limit_lists_the_lowest_member_ids(client):
    from chalicelib.leaderboards import rules, scores

    b = rules.board("spring", "referrals", "all")
    for n in range(8):  # m0 leads with 9; m1 … m7 tie at 5, spread over both rank shards
        scores.apply(f"tie.{n}", {b: (f"m{n}", 9 if n == 0 else 5)})
    top = [(row["member_id"], row["score"], row["rank"]) for row in ranking.top(b, 3)]
    assert top == [("m0", 9, 1), ("m1", 5, 2), ("m2", 5, 2)]


def test_a_redriven_old_record_moves_no_score_back(client, streams, monkeypatch):
    """A batch re-driven from the failure store comes after later changes of its items: the
    boards mirror the items as they stand, not the old images."""
    seen = keep_main_records(monkeypatch)
    ids = advocates(client)
    refer(client, ids["Ada"], "f1")
    streams.drain()
    assert board(client) == [(1, "Ada", 1)] and board(client, "gmv") == [(1, "Ada", 100_00)]
    before_refund = list(seen)
    refund(client, "o-f1", "r1", 100_00)  # undoes the conversion
    streams.drain()
    assert board(client) == [] and board(client, "gmv") == []
    redrive_main(before_refund)
    assert board(client) == [] and board(client, "gmv") == []


def test_a_batch_of_facts_moves_each_score_once_and_exactly(client):
    """A stream batch's facts are applied together: a member's score moved by several facts is the
    sum of what they contribute; a batch too large for one transaction is split; applying the
    batch again, or a fact's later contribution, changes exactly what it should."""
    from chalicelib.leaderboards import rules, scores

    spring_campaign(client)
    b = rules.board("spring", "points", "all")
    facts = {f"e.{n}": {b: (f"m{n % 40}", 10)} for n in range(120)}  # 40 members, 3 facts each
    assert scores.apply_many(facts) == 120
    assert scores.apply_many(facts) == 0  # redelivered: nothing changes
    top = ranking.top(b, 100)
    assert len(top) == 40 and {row["score"] for row in top} == {30}
    assert scores.apply_many({"e.0": {b: ("m0", 5)}, "e.40": {}, "e.999": {b: ("m1", 1)}}) == 3
    rows = {row["member_id"]: row["score"] for row in ranking.top(b, 100)}
    assert (rows["m0"], rows["m1"], rows["m2"]) == (30 - 5 - 10, 31, 30)
