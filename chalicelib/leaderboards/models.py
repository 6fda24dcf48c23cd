"""Leaderboard items (`boards` table: it has no stream, so a score write wakes no handler).

Access patterns:
- what one fact contributes, to which boards and members: GetItem pk=LBF#<fact>, sk=LBF
- a member's score on a board: GetItem pk=LBS#<board>#<member>, sk=S (one item per member and
  board: the writes of a viral campaign spread over as many partitions as there are advocates)
- a board's top N: Query gsi1 gsi1pk=LB#<board>#<shard> (RANK_SHARDS of them), gsi1sk = score
  then member, descending, one page each (sparse: members with a score above 0)
- how many members a board has per score bucket (the approximate rank): Query pk=LBH#<board>#<shard>
  (`BucketGroup` items, sk G#<group>, one number attribute b<bucket> per bucket of the group; and
  `BucketCount` items, sk B#<bucket>, written before the groups: read and added, never written)
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
    """One bucket's count: how the counts were kept before `BucketGroup` (read, never written)."""

    count = NumberAttribute(default=0)

    @classmethod
    def key(cls, board: str, shard: int, bucket: int) -> tuple[str, str]:
        return f"LBH#{board}#{shard}", f"B#{bucket:03d}"


class BucketGroup(BoardItem, discriminator="board_bucket_group"):
    """The counts of a group of buckets (rules.bucket_group), one number attribute per bucket
    (`b016`): a score that moves within its group moves two of them in one item write."""

    @classmethod
    def key(cls, board: str, shard: int, group: int) -> tuple[str, str]:
        return f"LBH#{board}#{shard}", f"G#{group:03d}"

    @staticmethod
    def counter(bucket: int) -> NumberAttribute:
        attribute = NumberAttribute(attr_name=f"b{bucket:03d}")
        attribute.attr_name = f"b{bucket:03d}"  # unbound: PynamoDB names it when a model declares it
        return attribute
