"""The member's timeline: every stage and tier change, kept for the member 360 view.

Access pattern: a member's timeline in the order the service saw it: Query pk=M#<id>, sk
begins_with TL# (sk TL#<observed_at>#<kind>#<to>: written once, in the transaction that makes the
change). `at` is when the facts made it, which a late, backdated fact can place before an
earlier entry; the order of observation is the one that chains from → to.
"""
from __future__ import annotations

import json
from typing import Any

from pynamodb.attributes import UnicodeAttribute

from ..members.models import member_pk
from ..store.base import MainItem


class TimelineEvent(MainItem, discriminator="timeline"):
    member_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # stage | tier
    at = UnicodeAttribute()  # when the facts made the change
    observed_at = UnicodeAttribute()  # when the service wrote it
    data = UnicodeAttribute(default="{}")  # {"from", "to", "reason"}

    @classmethod
    def new(cls, member_id: str, kind: str, at: str, observed_at: str, data: dict[str, Any]) -> "TimelineEvent":
        return cls(member_pk(member_id), f"TL#{observed_at}#{kind}#{data.get('to')}", member_id=member_id, kind=kind,
                   at=at, observed_at=observed_at, data=json.dumps(data, ensure_ascii=False))


def timeline_of(member_id: str, limit: int | None = None, newest_first: bool = False) -> list[dict[str, Any]]:
    """The member's stage and tier changes in the order they were observed (the latest `limit`
    of them, newest first, for the member 360 view)."""
    return [{"kind": e.kind, "at": e.at, **json.loads(e.data)}
            for e in TimelineEvent.query(member_pk(member_id), TimelineEvent.sk.startswith("TL#"), limit=limit,
                                         scan_index_forward=not newest_first)]
