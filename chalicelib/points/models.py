"""Lots of available points by expiry day (main table).

Access patterns:
- a member's live lots, soonest to expire first: Query pk=M#<member>, sk begins_with LOT#
- one lot: GetItem pk=M#<member>, sk=LOT#<day>
- lots due for their notice or their expiry: Query gsi2 gsi2pk=EXPIRE#<shard>, gsi2sk <= <now>
  (sparse: every live lot, keyed by its notice time, then by its expiry time)
"""
from __future__ import annotations

import zlib

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..members.models import member_pk
from ..store.base import MainItem

EXPIRE_SHARDS = 4


class PointsLot(MainItem, discriminator="points_lot"):
    member_id = UnicodeAttribute()
    day = UnicodeAttribute()  # the expiry day, program time zone
    # not `expires_at`: that name is the table's TTL attribute (epoch seconds)
    expiry_at = UnicodeAttribute()
    notice_at = UnicodeAttribute()
    remaining = NumberAttribute(default=0)
    phase = UnicodeAttribute(default="notice")  # notice | expire: what the index key waits for

    @classmethod
    def key(cls, member_id: str, day: str) -> tuple[str, str]:
        return member_pk(member_id), f"LOT#{day}"

    @staticmethod
    def due_keys(member_id: str, day: str, when: str) -> dict[str, str]:
        shard = zlib.crc32(member_id.encode()) % EXPIRE_SHARDS
        return {"gsi2pk": f"EXPIRE#{shard}", "gsi2sk": f"{when}#{member_id}#{day}"}

    @property
    def due_at(self) -> str:
        return self.notice_at if self.phase == "notice" else self.expiry_at
