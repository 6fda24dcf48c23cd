"""Ledger entries and the counters that bound them (main table).

Access patterns:
- a member's ledger, newest entry id first: Query pk=M#<member>, sk begins_with LEDGER#
- one entry (idempotent award): GetItem pk=M#<member>, sk=LEDGER#<rule>.<source>
- entries due for release: Query gsi2 gsi2pk=RELEASE#<shard>, gsi2sk <= <now> (sparse: pending, unheld)
- every entry tied to a referral (welcome, coupon, conversion, commission, second level, the
  milestone its conversion reached) — what a fraud flag holds, releases or voids: by key, from the
  referee's orders (BatchGetItem; rewards/handlers._referral_entries), no index. Entries an older
  deployment wrote carry gsi1 keys REFEREE#<referee>, which nothing reads any more
- a member's monthly cap usage in a campaign: GetItem pk=CAP#<member>, sk=<campaign>#<yyyy-mm>
- a campaign's budget usage: BatchGetItem pk=BUDGET#<campaign>#<shard>, sk=BUDGET (budget.py), plus
  pk=BUDGET#<campaign>, sk=BUDGET, the unsharded item written before sharding (read, never written)
"""
from __future__ import annotations

import zlib

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..members.models import member_pk
from ..store.base import MainItem

RELEASE_SHARDS = 4


class LedgerEntry(MainItem, discriminator="ledger_entry"):
    entry_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    rule = UnicodeAttribute()
    unit = UnicodeAttribute(default="points")  # points | coupon_fen
    amount = NumberAttribute()
    status = UnicodeAttribute()  # pending | available | reversed | redeemed
    bucket = UnicodeAttribute(null=True)  # which balance it counts in: pending | available | None (coupons)
    reason = UnicodeAttribute(default="")
    source_id = UnicodeAttribute()
    order_id = UnicodeAttribute(null=True)
    referee_id = UnicodeAttribute(null=True)
    campaign_id = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    available_at = UnicodeAttribute(null=True)
    reversed_amount = NumberAttribute(default=0)
    shortfall = NumberAttribute(default=0)  # reversed but already spent: not clawed back
    capped_from = NumberAttribute(null=True)  # the amount before a cap or the budget cut it
    hold = UnicodeAttribute(null=True)  # "fraud_review" while the referral's flag is open
    voided = UnicodeAttribute(null=True)  # why it was voided ("fraud_rejected"): never restated again

    @classmethod
    def key(cls, member_id: str, entry_id: str) -> tuple[str, str]:
        return member_pk(member_id), f"LEDGER#{entry_id}"

    @property
    def standing(self) -> int:
        """What the entry contributes to its balance now."""
        return int(self.amount) - int(self.reversed_amount or 0) + int(self.shortfall or 0)

    @staticmethod
    def release_keys(member_id: str, entry_id: str, available_at: str) -> dict[str, str]:
        shard = zlib.crc32(member_id.encode()) % RELEASE_SHARDS
        return {"gsi2pk": f"RELEASE#{shard}", "gsi2sk": f"{available_at}#{member_id}#{entry_id}"}


class CapUsage(MainItem, discriminator="cap_usage"):
    points = NumberAttribute(default=0)

    @classmethod
    def key(cls, member_id: str, campaign_id: str, month: str) -> tuple[str, str]:
        return f"CAP#{member_id}", f"{campaign_id}#{month}"


class BudgetUsage(MainItem, discriminator="budget_usage"):
    """One shard of a campaign's budget usage (budget.py); shard None: the legacy unsharded item."""

    spent = NumberAttribute(default=0)  # points
    spent_fen = NumberAttribute(null=True)  # coupons and red packets, in the campaign currency's minor unit
    basis = UnicodeAttribute(null=True)  # the points limit the shards are sliced for (budget.py)
    basis_fen = UnicodeAttribute(null=True)  # the same for the money budget

    @classmethod
    def key(cls, campaign_id: str, shard: int | None = None) -> tuple[str, str]:
        return (f"BUDGET#{campaign_id}" if shard is None else f"BUDGET#{campaign_id}#{shard}"), "BUDGET"
