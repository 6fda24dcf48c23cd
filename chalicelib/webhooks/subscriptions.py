"""Webhook subscriptions (admin): register, list, remove; and which ones want an event.

The stream handlers ask `subscribed_to(type)` for every event, so the list is kept in memory
for SUBSCRIPTIONS_CACHE_SECONDS (one Query per container and half minute); a subscription
hears events from then on."""
from __future__ import annotations

import secrets
import time
from typing import Any

from ..core import clock
from ..core.errors import Conflict, NotFound, Unprocessable
from ..i18n import t
from ..insight import audit
from ..store.base import cancelled_by_condition, transaction
from . import addresses, signing
from .models import WEBHOOKS, Webhook

MAX_SUBSCRIPTIONS = 20
SUBSCRIPTIONS_CACHE_SECONDS = 30.0
_cache: tuple[float, list[Webhook]] | None = None


def all_subscriptions(fresh: bool = False) -> list[Webhook]:
    global _cache
    if fresh or _cache is None or time.monotonic() - _cache[0] > SUBSCRIPTIONS_CACHE_SECONDS:
        _cache = (time.monotonic(), list(Webhook.query(WEBHOOKS, Webhook.sk.startswith("WH#"), consistent_read=True)))
    return _cache[1]


def subscribed_to(event_type: str) -> list[Webhook]:
    return [hook for hook in all_subscriptions() if event_type in hook.events]


def clear_cache() -> None:
    global _cache
    _cache = None


def create(url: str, events: list[str], description: str, actor: str) -> dict[str, Any]:
    try:
        addresses.check_url(url)
    except addresses.NotAllowed as exc:
        raise Unprocessable(t("this URL cannot receive webhooks: {problem}", problem=exc), code="url_not_allowed",
                            details={"url": url}) from None
    if len(all_subscriptions(fresh=True)) >= MAX_SUBSCRIPTIONS:
        raise Conflict(t("at most {max_subscriptions} webhooks; remove one first", max_subscriptions=MAX_SUBSCRIPTIONS),
                       code="too_many_webhooks")
    webhook_id = "wh_" + secrets.token_hex(8)
    hook = Webhook(*Webhook.key(webhook_id), webhook_id=webhook_id, url=url, events=sorted(set(events)),
                   secret=signing.new_secret(), description=description, created_at=clock.now_iso(), created_by=actor)
    with transaction() as tx:
        tx.save(hook, condition=Webhook.pk.does_not_exist())
        tx.save(audit.record(actor, "webhook.create", webhook_id, {"url": url, "events": hook.events}))
    clear_cache()
    return {**render(hook), "secret": hook.secret}


def find(webhook_id: str) -> Webhook:
    try:
        return Webhook.get(*Webhook.key(webhook_id), consistent_read=True)
    except Webhook.DoesNotExist:
        raise NotFound(t("no such webhook"), code="webhook_not_found", details={"webhook_id": webhook_id}) from None


def delete(webhook_id: str, actor: str) -> None:
    """Stops deliveries at once (the sweep only reads live subscriptions); the log stays until it
    expires. Deleting twice answers 404 the second time."""
    hook = find(webhook_id)
    from pynamodb.exceptions import TransactWriteError

    try:
        with transaction() as tx:
            tx.delete(hook, condition=Webhook.pk.exists())
            tx.save(audit.record(actor, "webhook.delete", webhook_id, {"url": hook.url}))
    except TransactWriteError as exc:
        if cancelled_by_condition(exc):
            raise NotFound(t("no such webhook"), code="webhook_not_found", details={"webhook_id": webhook_id}) from None
        raise
    clear_cache()


def render(hook: Webhook) -> dict[str, Any]:
    return {"webhook_id": hook.webhook_id, "url": hook.url, "events": list(hook.events),
            "description": hook.description, "created_at": hook.created_at}


def list_all() -> dict[str, Any]:
    hooks = sorted(all_subscriptions(fresh=True), key=lambda hook: hook.created_at)
    return {"items": [render(hook) for hook in hooks], "next_cursor": None}
