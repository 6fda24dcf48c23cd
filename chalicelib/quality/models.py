"""Referral-quality items (main table).

Access patterns:
- what one referee contributes, and the orders it was computed from: GetItem pk=QF#<referee>, sk=QF
- a campaign's cohorts by day and channel: Query pk=QC#<campaign>#<shard> (SHARDS of them),
  sk between D#<from> and D#<to>~ (sk = D#<cohort day>#<channel>)
- one advocate's referees by cohort day: Query pk=QA#<campaign>#<advocate>, sk between D#<from> and D#<to>
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..store.base import MainItem


class QualityContribution(MainItem, discriminator="quality_fact"):
    referee_id = UnicodeAttribute()
    values = UnicodeAttribute(default="{}")  # JSON {"<pk> <sk>": {"kind": ..., "counts": {...}}}
    orders = UnicodeAttribute(default="{}")  # JSON {order_id: [occurred_at, amount_fen, refunded_fen]}
    rev = NumberAttribute(default=0)

    @classmethod
    def key(cls, referee_id: str) -> tuple[str, str]:
        return f"QF#{referee_id}", "QF"


class _Tally(MainItem, discriminator="quality_tally"):
    members = NumberAttribute(default=0)
    repeat_30d = NumberAttribute(default=0)
    repeat_90d = NumberAttribute(default=0)
    gmv_fen = NumberAttribute(default=0)
    refunded_fen = NumberAttribute(default=0)
    refunders = NumberAttribute(default=0)

    @property
    def day(self) -> str:
        return self.sk.split("#")[1]

    def counts(self) -> dict[str, int]:
        from .rules import FIELDS

        return {name: int(getattr(self, name) or 0) for name in FIELDS}


class CohortTally(_Tally, discriminator="quality_cohort"):
    @classmethod
    def key(cls, campaign_id: str, shard: int, day: str, channel: str) -> tuple[str, str]:
        return f"QC#{campaign_id}#{shard}", f"D#{day}#{channel}"

    @property
    def channel(self) -> str:
        return self.sk.split("#", 2)[2]


class AdvocateTally(_Tally, discriminator="quality_advocate"):
    @classmethod
    def key(cls, campaign_id: str, advocate_id: str, day: str) -> tuple[str, str]:
        return f"QA#{campaign_id}#{advocate_id}", f"D#{day}"


TALLIES = {"cohort": CohortTally, "advocate": AdvocateTally}
