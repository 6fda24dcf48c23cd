"""A campaign's facts by time (main table), kept from the stream for dry runs.

Access pattern:
- a campaign's facts (referred sign-ups, their purchases and refunds) in [start, end), oldest
  first: Query pk=CFACT#<campaign>#<yyyy-mm>#<shard> (UTC month of the fact, FACT_SHARDS by
  member), sk BETWEEN <start> AND <end> (sk = <occurred_at>#<kind>#<fact id>), shards merged on sk

Like the ledger's export rows: the month bounds a partition, the shards spread a viral
campaign's writes. A row copies what the dry run needs of its fact (ids, amounts, the binding),
so replaying a period reads no order and no sign-up. Ids and amounts only (no names): erasing a
member's personal data leaves it as is, like the ledger's export rows.
"""
from __future__ import annotations

import zlib

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..store.base import MainItem

FACT_SHARDS = 4
KIND_ORDER = {"signup": 0, "purchase": 1, "refund": 2}  # the same instant: bound, then bought, then refunded


def partition(campaign_id: str, month: str, shard: int) -> str:
    return f"CFACT#{campaign_id}#{month}#{shard}"


class CampaignFact(MainItem, discriminator="campaign_fact"):
    campaign_id = UnicodeAttribute()
    kind = UnicodeAttribute()  # signup | purchase | refund
    member_id = UnicodeAttribute()  # the referee (the buyer)
    occurred_at = UnicodeAttribute()
    # sign-up: the binding
    referrer_id = UnicodeAttribute(null=True)
    grandparent_id = UnicodeAttribute(null=True)
    campaign_version = NumberAttribute(null=True)
    window_ends_at = UnicodeAttribute(null=True)
    # purchase and refund
    order_id = UnicodeAttribute(null=True)
    refund_id = UnicodeAttribute(null=True)
    amount_fen = NumberAttribute(null=True)

    @classmethod
    def key(cls, campaign_id: str, occurred_at: str, member_id: str, kind: str, fact_id: str) -> tuple[str, str]:
        shard = zlib.crc32(member_id.encode()) % FACT_SHARDS
        return partition(campaign_id, occurred_at[:7], shard), f"{occurred_at}#{KIND_ORDER[kind]}{kind}#{fact_id}"
