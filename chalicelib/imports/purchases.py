"""Importing purchase history: orders the live stream then counts like any other.

An imported order is the live purchase fact (same fields, same checks: the member exists, the
amount is in the member's campaign currency) plus `history` when the call did not ask for
rewards: attribution counts it for the member's orders and spend (stage and tier follow), but
it never converts a referral and earns no ledger entry of any kind (rewards/handlers.py,
lifecycle/service.py). Its `request_hash` is the live one, so an order the brand already
reported live with the same values is accepted unchanged; other values are `order_conflict`.

Cost: BatchGetItems for the orders and members, then one TransactWriteItems per ≤ 100 new
orders (each put conditioned on `attribute_not_exists`); a cancelled group is retried row by row.
"""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError

from ..core.errors import ApiError
from ..facts import service as facts
from ..facts.models import Order
from ..facts.schemas import PurchaseIn
from ..members.models import Member
from ..store.base import MainItem, cancelled_by_condition, condition_failed, transaction
from . import parallel, rows
from .context import Context
from .schemas import PurchaseRow

GROUP = 100


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
                errors[index] = rows.rejection("order_conflict", "this order id was already recorded with other values")
            continue
        member = members.get(row.member_id)
        if member is None:
            errors[index] = rows.rejection("member_not_found", f"member {row.member_id!r} does not exist")
            continue
        try:
            order = facts.new_order(body, member, digest)
        except ApiError as exc:  # currency_mismatch: the live rule
            errors[index] = rows.rejection(exc.code, exc.message, **exc.details)
            continue
        order.history = None if ctx.apply_rewards else True
        order.import_id = ctx.import_id
        new.append((index, order))
    groups = [new[i:i + GROUP] for i in range(0, len(new), GROUP)]
    for failed in parallel.each(_write_group, groups):
        errors.update(failed)
    return errors


def _write_group(group: list[tuple[int, Order]]) -> dict[int, dict[str, Any]]:
    try:
        with transaction() as tx:
            for _, order in group:
                tx.save(order, condition=Order.pk.does_not_exist())
        return {}
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
    failed = {}
    for index, order in group:  # someone recorded some of these meanwhile: one by one
        try:
            order.save(condition=Order.pk.does_not_exist())
        except PutError as exc:
            if not condition_failed(exc):
                raise
            stored = Order.get(*Order.key(order.order_id), consistent_read=True)
            if stored.request_hash != order.request_hash:
                failed[index] = rows.rejection("order_conflict", "this order id was recorded meanwhile with other values")
    return failed
