"""Webhook subscriptions and their deliveries (main table).

Access patterns:
- every subscription (a brand has a handful): Query pk=WEBHOOKS
- one subscription: GetItem pk=WEBHOOKS, sk=WH#<webhook_id>
- a subscription's delivery log, newest event first: Query pk=WH#<webhook_id>, sk begins_with DLV#
- deliveries due, per subscription and shard, by next attempt: Query gsi2
  gsi2pk=DELIVER#<webhook_id>#<shard>, gsi2sk <= <now> (sparse: only pending deliveries), so one
  receiver's backlog never sits in front of another's
"""
from __future__ import annotations

import zlib

from pynamodb.attributes import ListAttribute, NumberAttribute, UnicodeAttribute

from ..store.base import MainItem

WEBHOOKS = "WEBHOOKS"
DELIVERY_SHARDS = 4  # parallel senders per subscription
KEEP_DELIVERIES_DAYS = 30


class Webhook(MainItem, discriminator="webhook"):
    webhook_id = UnicodeAttribute()
    url = UnicodeAttribute()
    events = ListAttribute(of=UnicodeAttribute)
    secret = UnicodeAttribute()  # signs every delivery; shown once, at creation
    description = UnicodeAttribute(default="")
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute()

    @classmethod
    def key(cls, webhook_id: str) -> tuple[str, str]:
        return WEBHOOKS, f"WH#{webhook_id}"


class Delivery(MainItem, discriminator="webhook_delivery"):
    delivery_id = UnicodeAttribute()
    webhook_id = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    occurred_at = UnicodeAttribute()
    body = UnicodeAttribute()  # the exact bytes sent (and signed) on every attempt
    status = UnicodeAttribute(default="pending")  # pending | delivered | dead
    attempts = NumberAttribute(default=0)
    created_at = UnicodeAttribute()
    window_started_at = UnicodeAttribute()  # the retry window (about 24 h) runs from here; a re-drive restarts it
    next_attempt_at = UnicodeAttribute(null=True)
    last_attempt_at = UnicodeAttribute(null=True)
    last_status_code = NumberAttribute(null=True)
    last_error = UnicodeAttribute(null=True)
    delivered_at = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, webhook_id: str, delivery_id: str) -> tuple[str, str]:
        return f"WH#{webhook_id}", f"DLV#{delivery_id}"

    @staticmethod
    def due_keys(webhook_id: str, delivery_id: str, at: str) -> dict[str, str]:
        shard = zlib.crc32(delivery_id.encode()) % DELIVERY_SHARDS
        return {"gsi2pk": f"DELIVER#{webhook_id}#{shard}", "gsi2sk": f"{at}#{delivery_id}"}
