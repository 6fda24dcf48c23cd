"""The whole leaderboard in rank order, a page at a time (leaderboards/ranking.py's order:
score high to low, ties by member id, competition ranks "1, 2, 2, 4").

Each rank shard of the index is read in that order and the shards are merged lazily. The index
sorts a shard by score then member id, so read descending it lists tied members backwards: a
page's complete score groups are re-sorted in memory, and the group a page cuts off is read
again ascending (`_tied`), which also resumes a cursor inside a tie. Memory: one index page
per shard, whatever the board's size.
"""
from __future__ import annotations

import heapq
from itertools import groupby
from typing import Any, Iterator

from ..leaderboards import rules
from ..leaderboards.models import Score
from .csvfile import Positioned

COLUMNS = ("rank", "member_id", "display_name", "score")
READ_PAGE = 200


def rows(campaign_id: str, metric: str, period: str, after: dict[str, Any] | None) -> Iterator[Positioned]:
    """Rows after the cursor `after` = {s: score, m: member, n: position, r: rank} of the last row."""
    board = rules.board(campaign_id, metric, period)
    position, rank, last = (after["n"], after["r"], after["s"]) if after else (0, 0, None)
    shards = [_in_rank_order(f"LB#{board}#{shard}", after) for shard in range(rules.RANK_SHARDS)]
    for item in heapq.merge(*shards, key=lambda s: (-int(s.score), s.member_id)):
        score = int(item.score)
        position += 1
        rank = rank if score == last else position
        last = score
        yield ({"rank": rank, "member_id": item.member_id, "score": score},
               {"s": score, "m": item.member_id, "n": position, "r": rank})


def _in_rank_order(partition: str, after: dict[str, Any] | None) -> Iterator[Score]:
    below = None
    if after:
        yield from _tied(partition, after["s"], after["m"])
        below = after["s"]
    while True:
        condition = None if below is None else Score.gsi1sk < _score_prefix(below)  # scores under `below`
        found = list(Score.by_gsi1.query(partition, condition, scan_index_forward=False, limit=READ_PAGE,
                                         page_size=READ_PAGE))
        if not found:
            return
        groups = [(score, list(items)) for score, items in groupby(found, key=lambda s: int(s.score))]
        cut = len(found) == READ_PAGE  # the last group may go on in the next page
        for n, (score, items) in enumerate(groups):
            if cut and n == len(groups) - 1:
                yield from _tied(partition, score, None)
            else:
                yield from sorted(items, key=lambda s: s.member_id)
        if not cut:
            return
        below = groups[-1][0]


def _tied(partition: str, score: int, after_member: str | None) -> Iterator[Score]:
    """Members with `score`, by member id ascending (after `after_member`), read lazily."""
    low = rules.rank_key(score, after_member or "")
    high = _score_prefix(score) + "$"  # '$' sorts just after '#', the separator before the member id
    for item in Score.by_gsi1.query(partition, Score.gsi1sk.between(low, high), page_size=READ_PAGE):
        if item.member_id != after_member:
            yield item


def _score_prefix(score: int) -> str:
    """Where the rank keys of `score` start (rules.rank_key: a fixed-width score, '#', the member)."""
    return rules.rank_key(score, "")[:-1]
