"""Reading the boards: the top N, and a member's own rank.

Top N: one descending page of each rank shard (RANK_SHARDS queries), merged. A member's rank:
1 + how many members score higher, counted on the rank index when that is at most
EXACT_UP_TO per shard; beyond that the rank is estimated from the per-shard score buckets
(counts of members per score range, kept with every score change, one item per power of two):
the members in higher buckets are counted exactly, those in the member's own bucket are
prorated, and the answer says `exact: false` with the error bound (the members of that bucket).
"""
from __future__ import annotations

from typing import Any, Iterator

from pynamodb.constants import COUNT

from ..core.masking import mask_name
from ..i18n import t
from ..members.models import Member
from . import rules
from .models import BucketGroup, Score

EXACT_UP_TO = 1000


def top(b: str, limit: int) -> list[dict[str, Any]]:
    hits: list[Score] = []
    for shard in range(rules.RANK_SHARDS):
        page = list(Score.by_gsi1.query(f"LB#{b}#{shard}", scan_index_forward=False, limit=limit))
        if len(page) == limit:
            # Read from the top, a tie comes highest member id first: the page may have cut off the
            # lowest ids, which rank first. Re-read the last score's tie from the lowest id up.
            low = int(page[-1].score)
            tied = Score.by_gsi1.query(f"LB#{b}#{shard}", Score.gsi1sk.startswith(rules.rank_key(low, "")),
                                       scan_index_forward=True, limit=limit)
            page = [s for s in page if int(s.score) != low] + list(tied)
        hits += page
    hits.sort(key=lambda s: (-int(s.score), s.member_id))
    hits = hits[:limit]
    ranks = rules.competition_ranks([int(s.score) for s in hits])
    return [{"rank": rank, "member_id": s.member_id, "score": int(s.score)} for rank, s in zip(ranks, hits)]


def with_names(rows: list[dict[str, Any]], masked: bool) -> list[dict[str, Any]]:
    ids = list({row["member_id"] for row in rows})
    names = {m.member_id: m.display_name for m in Member.batch_get([Member.key(i) for i in ids],
                                                                 attributes_to_get=["member_id", "display_name"])}
    out = []
    for row in rows:
        name = names.get(row["member_id"], "")
        member = {"display_name": mask_name(name)} if masked else {"member_id": row["member_id"], "display_name": name}
        out.append({"rank": row["rank"], "member": member, "score": row["score"]})
    return out


def rank_of(b: str, member_id: str) -> dict[str, Any]:
    try:
        score = int(Score.get(*Score.key(b, member_id)).score)
    except Score.DoesNotExist:
        score = 0
    if score <= 0:
        return {"rank": None, "score": 0, "exact": True}
    higher, exact = 0, True
    for shard in range(rules.RANK_SHARDS):
        counted = _count_above(b, shard, score)
        if counted > EXACT_UP_TO:
            exact = False
            break
        higher += counted
    if exact:
        return {"rank": higher + 1, "score": score, "exact": True}
    return _estimate(b, score)


def _count_above(b: str, shard: int, score: int) -> int:
    """How many members of a shard score higher, up to EXACT_UP_TO + 1: one page of a count query
    limited to that many keys. (PynamoDB's `count(limit=…)` pages on to the end of the range: on
    a 100,000-member board that read every key above the member, 20 queries and ~400 RRU.)"""
    page = Score._get_connection().query(f"LB#{b}#{shard}", range_key_condition=Score.gsi1sk >= rules.above(score),
                                         index_name="gsi1", limit=EXACT_UP_TO + 1, select=COUNT)
    return int(page.get("Count", 0))


def _bucket_counts(b: str, shard: int) -> Iterator[tuple[int, int]]:
    """(bucket, members) of one shard: from the group items (`G#`, a `b<bucket>` attribute per
    bucket) and the single-bucket items written before them (`B#<bucket>`, `count`); a bucket
    may be in both, and its members are the sum. Raw items: the group attributes are not declared."""
    pages = BucketGroup._get_connection().query(f"LBH#{b}#{shard}")
    while True:
        for item in pages.get("Items", []):
            sk = item["sk"]["S"]
            if sk.startswith("B#"):
                yield int(sk[2:]), int(item.get("count", {}).get("N", 0))
            elif sk.startswith("G#"):
                for name, value in item.items():
                    if name[0] == "b" and name[1:].isdigit():
                        yield int(name[1:]), int(value["N"])
        if "LastEvaluatedKey" not in pages:
            return
        pages = BucketGroup._get_connection().query(f"LBH#{b}#{shard}", exclusive_start_key=pages["LastEvaluatedKey"])


def _estimate(b: str, score: int) -> dict[str, Any]:
    mine = rules.bucket(score)
    low, high = rules.bucket_range(mine)
    higher = in_bucket = 0
    for shard in range(rules.RANK_SHARDS):
        for bucket, count in _bucket_counts(b, shard):
            if bucket > mine:
                higher += count
            elif bucket == mine:
                in_bucket += count
    if score >= high or in_bucket <= 1:  # its bucket's top score, or alone in it: nobody there scores higher
        return {"rank": higher + 1, "score": score, "exact": True}
    share = round(in_bucket * (high - score) / max(1, high - low + 1))
    return {"rank": higher + share + 1, "score": score, "exact": False, "error": in_bucket,
            "note": t("estimated beyond the top {exact_up_to} of a shard: within ±{error}", exact_up_to=EXACT_UP_TO,
                      error=in_bucket)}
