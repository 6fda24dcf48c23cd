"""Importing purchase history: orders the live stream then counts like any other.

An imported order is the live purchase fact (same fields, same checks: the member exists, the
amount is in the member's campaign currency) plus `history` when the call did not ask for
rewards: attribution counts it for the member's orders and spend (stage and tier follow), but
it never converts a referral and earns no ledger entry of any kind (rewards/handlers.py,
lifecycle/service.py). Its `request_hash` is the live one, so an order the brand already
reported live with the same values is accepted unchanged; other values are `order_conflict`.

Cost: BatchGetItems for the orders and members, then one conditional PutItem per new order
(`attribute_not_exists`: 1 WRU for an order under 1 KB), on the import's threads.
"""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError

from ..core.errors import ApiError
from ..facts import service as facts
from ..facts.models import Order
from ..facts.schemas import PurchaseIn
from ..members.models import Member
from ..store.base import MainItem, condition_failed, patiently
from . import parallel, rows
from .context import Context
from .schemas import PurchaseRow
from ..i18n import t


def import_purchases(parsed: dict[int, PurchaseRow], ctx: Context) -> dict[int, dict[str, Any]]:
    errors: dict[int, dict[str, Any]] = {}
    keys = [Order.key(r.order_id) for r in parsed.values()] + [Member.key(m) for m in {r.member_id for r in parsed.values()}]
    found = list(MainItem.batch_get(keys, consistent_read=True))
    orders = {i.order_id: i for i in found if isinstance(i, Order)}
    members = {i.member_id: i for i in found if isinstance(i, Member)}
    new: list[tuple[int, Order]] = []
    for index, row in parsed.items():
        body = PurchaseIn(**row.model_dump(exclude_none=True))
        digest = facts.request_hash(body)
        if row.order_id in orders:
            if orders[row.order_id].request_hash != digest:
                errors[index] = rows.rejection("order_conflict", t("this order id was already recorded with other values"))
            continue
        member = members.get(row.member_id)
        if member is None:
            errors[index] = rows.rejection("member_not_found", t("member {member_id!r} does not exist", member_id=row.member_id))
            continue
        try:
            order = facts.new_order(body, member, digest)
        except ApiError as exc:  # currency_mismatch: the live rule
            errors[index] = rows.rejection(exc.code, exc.message, **exc.details)
            continue
        order.history = None if ctx.apply_rewards else True
        order.import_id = ctx.import_id
        new.append((index, order))
    for failed in parallel.each(_write_part, [new[i::parallel.WORKERS] for i in range(parallel.WORKERS)]):
        errors.update(failed)
    return errors


def _write_part(part: list[tuple[int, Order]]) -> dict[int, dict[str, Any]]:
    """Each order on its own conditional put: orders are independent, so no transaction (1 WRU,
    not 2); a put refused because the order exists is a replay (a re-sent call, or this put
    re-sent after its answer was lost) or a conflict."""
    failed = {}
    for index, order in part:
        try:
            patiently(lambda: order.save(condition=Order.pk.does_not_exist()))
        except PutError as exc:
            if not condition_failed(exc):
                raise
            stored = Order.get(*Order.key(order.order_id), consistent_read=True)
            if stored.request_hash != order.request_hash:
                failed[index] = rows.rejection("order_conflict", t("this order id was recorded meanwhile with other values"))
    return failed
