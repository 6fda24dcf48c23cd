"""Recording purchases and refunds: idempotent on their ids, attributed later by the stream.

A retried report with the same body gets the same answer; the same id with a different body
is a 409, because the brand's backend is then telling two different stories.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from ..campaigns import service as campaigns
from ..core import clock
from ..core.errors import Conflict, NotFound, Unprocessable
from ..i18n import t
from ..members.models import Member
from ..store.base import cancelled_by_condition, condition_failed, transaction
from .models import Order, Refund
from .schemas import PurchaseIn, RefundIn


def _hash(body: Any) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(exclude_none=True), sort_keys=True).encode()).hexdigest()


request_hash = _hash  # the imports compare re-sent rows the live way


def _when(occurred_at: str | None) -> str:
    return clock.iso(clock.parse(occurred_at)) if occurred_at else clock.now_iso()


def render_order(order: Order) -> dict[str, Any]:
    return {"order_id": order.order_id, "member_id": order.member_id, "amount_fen": int(order.amount_fen),
            "currency": order.currency, "occurred_at": order.occurred_at,
            "refunded_fen": int(order.refunded_fen or 0), "status": "recorded"}


def record_purchase(body: PurchaseIn) -> dict[str, Any]:
    """2 calls for a new order (the member, then the conditional put); a replay finds out from
    the failed condition and reads the stored order to compare."""
    digest = _hash(body)
    member = Member.find(body.member_id)
    if member is None:
        raise NotFound(t("member {member_id!r} does not exist", member_id=body.member_id), code="member_not_found")
    order = new_order(body, member, digest)
    try:
        order.save(condition=Order.pk.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        return _same_or_conflict(Order.get(*Order.key(body.order_id), consistent_read=True), digest, "order")
    return render_order(order)


def new_order(body: PurchaseIn, member: Member, digest: str) -> Order:
    """The order item for a purchase of this member (unsaved); 422 if its currency is not theirs."""
    currency = _currency_of(member, body.currency)
    at = _when(body.occurred_at)
    return Order(*Order.key(body.order_id), order_id=body.order_id, member_id=body.member_id,
                 amount_fen=body.amount_fen, currency=currency, occurred_at=at, store_id=body.store_id,
                 channel=body.channel, request_hash=digest, created_at=clock.now_iso(),
                 campaign_id=member.referral_campaign_id,
                 **Order.index_keys(body.member_id, at, body.order_id))


def _currency_of(member: Member, currency: str | None) -> str:
    """Amounts of one member are only ever in their campaign's currency (the one they were bound
    under, or the default campaign's), so rewards and GMV never add two currencies together."""
    if member.referral_campaign_id:
        expected = campaigns.rules_at(member.referral_campaign_id, member.referral_campaign_version).currency
    else:
        expected = campaigns.rules_of(campaigns.current_or_404(None)).currency
    if currency is not None and currency != expected:
        raise Unprocessable(t("the order is in {currency}, the member's campaign pays in {expected}",
                              currency=currency, expected=expected),
                            code="currency_mismatch", details={"currency": currency, "campaign_currency": expected})
    return expected


def _same_or_conflict(existing: Any, digest: str, what: str) -> dict[str, Any]:
    if existing.request_hash != digest:
        message = (t("this order id was already reported with different values") if what == "order"
                   else t("this refund id was already reported with different values"))
        raise Conflict(message, code=f"{what}_conflict")
    return render_order(existing) if isinstance(existing, Order) else render_refund(existing)


def render_refund(refund: Refund) -> dict[str, Any]:
    return {"order_id": refund.order_id, "refund_id": refund.refund_id, "amount_fen": int(refund.amount_fen),
            "occurred_at": refund.occurred_at, "status": "recorded"}


def record_refund(body: RefundIn) -> dict[str, Any]:
    """2 calls for a new refund (the order, then the transaction); the refund itself is read only
    when the transaction or the amount check says it may be a replay."""
    digest = _hash(body)
    try:
        order = Order.get(*Order.key(body.order_id), consistent_read=True)
    except Order.DoesNotExist:
        raise NotFound(t("order {order_id!r} was never reported", order_id=body.order_id),
                       code="order_not_found") from None
    remaining = int(order.amount_fen) - int(order.refunded_fen or 0)
    if body.amount_fen > remaining:  # also what a replay of the refund that used up the order sees
        return _replayed_refund(body, digest, remaining)
    refund = Refund(*Refund.key(body.order_id, body.refund_id), order_id=body.order_id, refund_id=body.refund_id,
                    member_id=order.member_id, amount_fen=body.amount_fen, occurred_at=_when(body.occurred_at),
                    request_hash=digest, created_at=clock.now_iso(), campaign_id=order.campaign_id)
    try:
        with transaction() as tx:
            tx.save(refund, condition=Refund.pk.does_not_exist())
            # The order's refunded total can never pass its amount, even with concurrent refunds.
            tx.update(order, actions=[Order.refunded_fen.add(body.amount_fen)],
                      condition=Order.refunded_fen <= int(order.amount_fen) - body.amount_fen)
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
        return _replayed_refund(body, digest, None)
    return render_refund(refund)


def _replayed_refund(body: RefundIn, digest: str, remaining: int | None) -> dict[str, Any]:
    """The stored refund's answer if this is a replay (409 if its values differ); else the refund
    does not fit in what is left of the order."""
    try:
        return _same_or_conflict(Refund.get(*Refund.key(body.order_id, body.refund_id), consistent_read=True),
                                 digest, "refund")
    except Refund.DoesNotExist:
        pass
    if remaining is None:
        raise Unprocessable(t("refunds would exceed the order amount"), code="refund_exceeds_order")
    raise Unprocessable(t("refund of {amount_fen} fen exceeds the {remaining} fen left on the order",
                          amount_fen=body.amount_fen, remaining=remaining),
                        code="refund_exceeds_order", details={"refundable_fen": remaining})
