"""Pure rules of the leaderboards: which boards a fact counts on, rank keys and score buckets.

A board is (campaign, metric, period); the periods of a fact are `all`, its month (`2026-11`)
and its ISO week (`2026-W48`), in the campaign's time zone.
"""
from __future__ import annotations

import re
import zlib
from datetime import datetime
from zoneinfo import ZoneInfo

METRICS = ("referrals", "gmv", "points")
RANK_SHARDS = 2  # the ranking index's write partitions per board; top-N reads one page of each
PERIOD = re.compile(r"^(all|\d{4}-(0[1-9]|1[0-2])|\d{4}-W(0[1-9]|[1-4]\d|5[0-3]))$")
SCORE_DIGITS = 15


def periods(at: datetime, zone: str) -> list[str]:
    local = at.astimezone(ZoneInfo(zone))
    year, week, _ = local.isocalendar()
    return ["all", local.strftime("%Y-%m"), f"{year}-W{week:02d}"]


def board(campaign_id: str, metric: str, period: str) -> str:
    return f"{campaign_id}|{metric}|{period}"


def shard(member_id: str) -> int:
    return zlib.crc32(member_id.encode()) % RANK_SHARDS


def rank_key(score: int, member_id: str) -> str:
    """Sorts by score (a fixed-width number), then member id: ties are listed by member id."""
    return f"{max(0, score):0{SCORE_DIGITS}d}#{member_id}"


def above(score: int) -> str:
    """The smallest rank key of any score higher than `score`."""
    return f"{score + 1:0{SCORE_DIGITS}d}"


SUB_BUCKETS = 8  # per power of two: a bucket spans at most 1/8 of its scores' magnitude


def bucket(score: int) -> int:
    """Score buckets for the approximate rank: 0 none, 1-15 one score each, then eight buckets
    per power of two (16-17, 18-19, …, 30-31; 32-35, …). Finer buckets, a tighter stated error.

    >>> [bucket(s) for s in (0, 1, 15, 16, 17, 18, 31, 32, 36)]
    [0, 1, 15, 16, 16, 17, 23, 24, 25]
    """
    score = max(0, score)
    n = score.bit_length()
    if n <= 4:
        return score
    return 16 + (n - 5) * SUB_BUCKETS + ((score >> (n - 4)) & (SUB_BUCKETS - 1))


def bucket_group(b: int) -> int:
    """The item a bucket's count lives in: one for scores 1-15, then one per power of two, so a
    score that moves to the next bucket mostly writes one item (`BucketGroup`), not two.

    >>> [bucket_group(b) for b in (1, 15, 16, 23, 24)]
    [0, 0, 1, 1, 2]
    """
    return 0 if b < 16 else 1 + (b - 16) // SUB_BUCKETS


def bucket_range(b: int) -> tuple[int, int]:
    """The lowest and highest score of bucket `b`.

    >>> [bucket_range(b) for b in (0, 7, 16, 23, 24)]
    [(0, 0), (7, 7), (16, 17), (30, 31), (32, 35)]
    """
    if b < 16:
        return b, b
    n, sub = 5 + (b - 16) // SUB_BUCKETS, (b - 16) % SUB_BUCKETS
    width = 1 << (n - 4)
    low = (SUB_BUCKETS | sub) * width
    return low, low + width - 1


def competition_ranks(scores: list[int]) -> list[int]:
    """Ranks of scores sorted high to low; ties share a rank ("1, 2, 2, 4").

    >>> competition_ranks([9, 7, 7, 3])
    [1, 2, 2, 4]
    """
    ranks, previous = [], None
    for position, score in enumerate(scores, start=1):
        ranks.append(ranks[-1] if score == previous else position)
        previous = score
    return ranks
