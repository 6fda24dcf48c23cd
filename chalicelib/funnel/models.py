"""Funnel items (control table: it has no stream, so these writes wake no handler).

Access patterns:
- what one fact contributes, to which cells: GetItem pk=FUNF#<fact>, sk=FUNF
- a campaign's figures over a range of days: Query pk=FUN#<campaign>#<shard> (rules.SHARDS of
  them), sk between `<from>#` and `<to>#~` — every channel and kind of those days, merged in code
  - `<day>#<channel>#f` DayFigures: the additive fact figures of the facts hashed to this shard
  - `<day>#<channel>#c` DaySketch: clicks and the visitors' sketch from the click lanes hashed here
  - `<day>#<channel>#a` DaySketch: the advocates' sketch (members who created a share link)
"""
from __future__ import annotations

from pynamodb.attributes import BinaryAttribute, MapAttribute, NumberAttribute, UnicodeAttribute

from ..store.base import ControlItem


class Contribution(ControlItem, discriminator="funnel_fact"):
    fact_id = UnicodeAttribute()
    shard = NumberAttribute()  # where its cells live: fixed at the first write
    values = UnicodeAttribute(default="{}")  # JSON {"<campaign>|<day>|<channel>": {"<figure>": n}}
    rev = NumberAttribute(default=0)

    @classmethod
    def key(cls, fact_id: str) -> tuple[str, str]:
        return f"FUNF#{fact_id}", "FUNF"


class DayFigures(ControlItem, discriminator="funnel_day"):
    """Changed only by ADDs in a transaction with a Contribution (facts.py)."""

    signups = NumberAttribute(default=0)
    first_purchases = NumberAttribute(default=0)
    gmv_fen = NumberAttribute(default=0)
    points = NumberAttribute(default=0)
    coupon_fen = NumberAttribute(default=0)
    invites = NumberAttribute(default=0)


class DaySketch(ControlItem, discriminator="funnel_sketch"):
    """Read, merged and put back whole, conditioned on `version` (tallies.py)."""

    clicks = NumberAttribute(default=0)
    registers = BinaryAttribute(legacy_encoding=False, null=True)  # hll.pack()
    seen = MapAttribute(default=dict)  # click lane → highest sequence applied (counters.mark)
    version = NumberAttribute(default=0)
