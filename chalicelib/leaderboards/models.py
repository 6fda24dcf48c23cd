"""Leaderboard items (`boards` table: it has no stream, so a score write wakes no handler).

Access patterns:
- what one fact contributes, to which boards and members: GetItem pk=LBF#<fact>, sk=LBF
- a member's score on a board: GetItem pk=LBS#<board>#<member>, sk=S (one item per member and
  board: the writes of a viral campaign spread over as many partitions as there are advocates)
- a board's top N: Query gsi1 gsi1pk=LB#<board>#<shard> (RANK_SHARDS of them), gsi1sk = score
  then member, descending, one page each (sparse: members with a score above 0)
- how many members a board has per score bucket (the approximate rank): Query pk=LBH#<board>#<shard>
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..store.base import BoardItem


class Contribution(BoardItem, discriminator="board_fact"):
    fact_id = UnicodeAttribute()
    values = UnicodeAttribute(default="{}")  # JSON {"<board>": {"member": m, "score": n}}
    rev = NumberAttribute(default=0)

    @classmethod
    def key(cls, fact_id: str) -> tuple[str, str]:
        return f"LBF#{fact_id}", "LBF"


class Score(BoardItem, discriminator="board_score"):
    board = UnicodeAttribute()
    member_id = UnicodeAttribute()
    score = NumberAttribute(default=0)

    @classmethod
    def key(cls, board: str, member_id: str) -> tuple[str, str]:
        return f"LBS#{board}#{member_id}", "S"


class BucketCount(BoardItem, discriminator="board_bucket"):
    count = NumberAttribute(default=0)

    @classmethod
    def key(cls, board: str, shard: int, bucket: int) -> tuple[str, str]:
        return f"LBH#{board}#{shard}", f"B#{bucket:03d}"
