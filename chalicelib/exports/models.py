"""The ledger's export rows (main table): one compact copy of each campaign ledger entry,
kept from the stream, so a campaign's entries of a period are a Query, never a Scan.

Access pattern:
- a campaign's ledger entries created in [start, end), oldest first: Query
  pk=LEDGERX#<campaign>#<yyyy-mm>#<shard> (UTC month of created_at, EXPORT_SHARDS by member),
  sk BETWEEN <start> AND <end> (sk = <created_at>#<member>#<entry>), shards merged on sk

The month bounds each partition (the table has an LSI, so one partition key holds at most
10 GB: about 30 million rows); the shards spread a viral campaign's writes over 4 partitions.
The row holds ids and amounts only (no names): erasing a member's personal data leaves it as is.
"""
from __future__ import annotations

import zlib

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..store.base import MainItem

EXPORT_SHARDS = 4


def partition(campaign_id: str, month: str, shard: int) -> str:
    return f"LEDGERX#{campaign_id}#{month}#{shard}"


class LedgerExportRow(MainItem, discriminator="ledger_export_row"):
    campaign_id = UnicodeAttribute()
    entry_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    rule = UnicodeAttribute()
    unit = UnicodeAttribute()
    amount = NumberAttribute()
    reversed_amount = NumberAttribute(default=0)
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    available_at = UnicodeAttribute(null=True)
    order_id = UnicodeAttribute(null=True)
    referee_id = UnicodeAttribute(null=True)
    seq = UnicodeAttribute()  # the stream sequence number of the image it copies (fixed width)

    @classmethod
    def key(cls, campaign_id: str, created_at: str, member_id: str, entry_id: str) -> tuple[str, str]:
        shard = zlib.crc32(member_id.encode()) % EXPORT_SHARDS
        return partition(campaign_id, created_at[:7], shard), f"{created_at}#{member_id}#{entry_id}"
