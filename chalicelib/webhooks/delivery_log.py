"""A subscription's delivery log, and re-driving a dead delivery."""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import UpdateError

from ..core import clock
from ..core.errors import Conflict, NotFound
from ..core.pagination import PageQuery, page
from ..i18n import t
from ..insight import audit
from ..store.base import condition_failed
from .models import Delivery
from .subscriptions import find


def render(item: Delivery) -> dict[str, Any]:
    return {"delivery_id": item.delivery_id, "event_id": item.event_id, "type": item.event_type,
            "occurred_at": item.occurred_at, "attempts": int(item.attempts), "status": item.status,
            "last_status_code": int(item.last_status_code) if item.last_status_code is not None else None,
            "last_error": item.last_error, "last_attempt_at": item.last_attempt_at,
            "next_attempt_at": item.next_attempt_at, "delivered_at": item.delivered_at}


def list_for(webhook_id: str, page_query: PageQuery, status: str | None = None) -> dict[str, Any]:
    find(webhook_id)
    kwargs: dict[str, Any] = {}
    if status:
        kwargs["filter_condition"] = Delivery.status == status
    return page(Delivery.query, page_query, f"deliveries:{webhook_id}:{status or ''}", render,
                hash_key=Delivery.key(webhook_id, "")[0], range_key_condition=Delivery.sk.startswith("DLV#"),
                scan_index_forward=False, **kwargs)


def redrive(webhook_id: str, delivery_id: str, actor: str) -> dict[str, Any]:
    """A dead delivery becomes due now, with a fresh retry window; its attempts keep counting."""
    find(webhook_id)
    try:
        item = Delivery.get(*Delivery.key(webhook_id, delivery_id), consistent_read=True)
    except Delivery.DoesNotExist:
        raise NotFound(t("no such delivery"), code="delivery_not_found", details={"delivery_id": delivery_id}) from None
    if item.status != "dead":
        raise Conflict(t("only a dead delivery can be re-driven; this one is {status}", status=item.status),
                       code="delivery_not_dead",
                       details={"status": item.status})
    now = clock.now_iso()
    keys = Delivery.due_keys(webhook_id, delivery_id, now)
    try:
        item.update(actions=[Delivery.status.set("pending"), Delivery.window_started_at.set(now),
                             Delivery.next_attempt_at.set(now), Delivery.gsi2pk.set(keys["gsi2pk"]),
                             Delivery.gsi2sk.set(keys["gsi2sk"])],
                    condition=Delivery.status == "dead")
    except UpdateError as exc:
        if condition_failed(exc):
            raise Conflict(t("the delivery changed meanwhile; read it again"), code="delivery_not_dead") from None
        raise
    audit.record(actor, "webhook.redrive", webhook_id, {"delivery_id": delivery_id}).save()
    return render(item)
