"""Bodies of the brand backend's fact endpoints."""
from __future__ import annotations

from ..core.validation import AmountFen, Body, Currency, Id, FactTime, PositiveFen


class PurchaseIn(Body):
    order_id: Id
    member_id: Id
    amount_fen: AmountFen
    currency: Currency | None = None  # the campaign's currency when left out
    occurred_at: FactTime | None = None
    store_id: Id | None = None
    channel: Id | None = None


class RefundIn(Body):
    order_id: Id
    refund_id: Id
    amount_fen: PositiveFen
    occurred_at: FactTime | None = None
