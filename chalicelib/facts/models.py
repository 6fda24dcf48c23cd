"""Facts reported by the brand's backend: orders and refunds (main table).

Access patterns:
- an order: GetItem pk=O#<order_id>, sk=ORDER
- a member's orders by time (re-attribution after a refund): Query gsi1 gsi1pk=ORDERS#<member_id>
- a refund: GetItem pk=O#<order_id>, sk=REFUND#<refund_id>; an order's refunds: Query pk=O#<order_id>
- sign-ups through a code in an hour: Query pk=SIGNUPS#<code>, sk begins_with H#<hour> (sharded)
"""
from __future__ import annotations

import zlib

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute

from ..store.base import MainItem


class Order(MainItem, discriminator="order"):
    order_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    currency = UnicodeAttribute(default="CNY")
    occurred_at = UnicodeAttribute()
    store_id = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    request_hash = UnicodeAttribute()
    refunded_fen = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    counted = BooleanAttribute(null=True)  # set once the member's counters include this order
    campaign_id = UnicodeAttribute(null=True)  # the buyer's referral campaign (dry runs list its facts)
    # Imported history (imports/purchases.py) without `apply_rewards`: it counts for the member's
    # orders, spend, stage and tier, but never converts a referral nor earns any ledger entry.
    history = BooleanAttribute(null=True)
    import_id = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, order_id: str) -> tuple[str, str]:
        return f"O#{order_id}", "ORDER"

    @staticmethod
    def index_keys(member_id: str, occurred_at: str, order_id: str) -> dict[str, str]:
        return {"gsi1pk": f"ORDERS#{member_id}", "gsi1sk": f"{occurred_at}#{order_id}"}


class Refund(MainItem, discriminator="refund"):
    order_id = UnicodeAttribute()
    refund_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    amount_fen = NumberAttribute()
    occurred_at = UnicodeAttribute()
    request_hash = UnicodeAttribute()
    created_at = UnicodeAttribute()
    counted = BooleanAttribute(null=True)
    campaign_id = UnicodeAttribute(null=True)  # the order's, copied: the refund is listed with it

    @classmethod
    def key(cls, order_id: str, refund_id: str) -> tuple[str, str]:
        return f"O#{order_id}", f"REFUND#{refund_id}"


WINDOW_SHARDS = 4


class SignupWindow(MainItem, discriminator="signup_window"):
    """Sign-ups through one code in one hour (fraud signal: scripted bulk sign-ups), in
    `WINDOW_SHARDS` items so that a viral code's sign-ups do not all update one item (each
    transaction would conflict with the others). The hour's count is one Query of
    `SIGNUPS#<code>`, sk begins_with `H#<hour>`: the shards and the unsharded item written
    before sharding (`H#<hour>`) alike."""

    signups = NumberAttribute(default=0)

    @classmethod
    def key(cls, code: str, hour: str, shard: int | None = None) -> tuple[str, str]:
        return f"SIGNUPS#{code}", f"H#{hour}" if shard is None else f"H#{hour}#{shard}"

    @staticmethod
    def shard_of(member_id: str) -> int:
        return zlib.crc32(member_id.encode()) % WINDOW_SHARDS

    @classmethod
    def count(cls, code: str, hour: str) -> int:
        return sum(int(w.signups or 0) for w in cls.query(f"SIGNUPS#{code}", cls.sk.startswith(f"H#{hour}")))
