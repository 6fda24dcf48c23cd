"""Facts reported by the brand's backend: orders and refunds (main table).

Access patterns:
- an order: GetItem pk=O#<order_id>, sk=ORDER
- a member's orders by time (re-attribution after a refund): Query gsi1 gsi1pk=ORDERS#<member_id>
- a refund: GetItem pk=O#<order_id>, sk=REFUND#<refund_id>; an order's refunds: Query pk=O#<order_id>
"""
from __future__ import annotations

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


class SignupWindow(MainItem, discriminator="signup_window"):
    """Sign-ups through one code in one hour (fraud signal: scripted bulk sign-ups)."""

    signups = NumberAttribute(default=0)

    @classmethod
    def key(cls, code: str, hour: str) -> tuple[str, str]:
        return f"SIGNUPS#{code}", f"H#{hour}"
