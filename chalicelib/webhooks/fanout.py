"""Events → deliveries: one pending delivery per event and subscription that wants it, written
only if absent (its id comes from the event id and the subscription), so a redelivered stream
record, or two handlers racing, write it once. Sending happens elsewhere (`delivery.py`): the
stream never waits on a receiver."""
from __future__ import annotations

import hashlib
from typing import Iterable

from pynamodb.exceptions import PutError

from ..core import clock
from ..store.base import condition_failed
from .events import Event
from .models import KEEP_DELIVERIES_DAYS, Delivery
from .subscriptions import subscribed_to


def delivery_id(event: Event, webhook_id: str) -> str:
    """Sorts by when the event happened (the log lists newest first), unique per subscription."""
    stamp = "".join(ch for ch in event.occurred_at[:23] if ch.isdigit())
    return f"{stamp}-" + hashlib.sha256(f"{event.event_id}|{webhook_id}".encode()).hexdigest()[:12]


def publish(events: Iterable[Event]) -> int:
    written = 0
    for event in events:
        hooks = subscribed_to(event.type)
        if not hooks:
            continue
        now = clock.now_iso()
        body = event.body()
        for hook in hooks:
            did = delivery_id(event, hook.webhook_id)
            item = Delivery(*Delivery.key(hook.webhook_id, did), delivery_id=did, webhook_id=hook.webhook_id,
                            event_id=event.event_id, event_type=event.type, occurred_at=event.occurred_at, body=body,
                            created_at=now, window_started_at=now, next_attempt_at=now,
                            expires_at=clock.epoch() + KEEP_DELIVERIES_DAYS * 86400,
                            **Delivery.due_keys(hook.webhook_id, did, now))
            try:
                item.save(condition=Delivery.pk.does_not_exist())
                written += 1
            except PutError as exc:
                if not condition_failed(exc):
                    raise
    return written
