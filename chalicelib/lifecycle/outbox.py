"""The outbox: one message per moment that matters to a member (welcome, tier up, win-back,
reward available…), written by stream handlers with a deterministic key so a redelivered
record writes nothing new. A sender (push, SMS, WeChat template message) reads from here.

Access patterns:
- a member's messages, newest first: Query pk=M#<id>, sk begins_with NOTE#
- marketing messages of the last 7 days (the contact policy's cap): Query pk=M#<id>,
  sk between NOTE#<7 days ago> and NOTE#~, Select COUNT with a filter on `marketing`
- moments the contact policy dropped (opt-out, cap), kept for ops: sk begins_with SKIP#
"""
from __future__ import annotations

import json
from typing import Any

from pynamodb.attributes import BooleanAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError

from ..core.pagination import PageQuery, page
from ..members.models import member_pk
from ..program import service as program
from ..store.base import MainItem, condition_failed
from . import texts


class Notification(MainItem, discriminator="notification"):
    member_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    source_id = UnicodeAttribute()
    created_at = UnicodeAttribute()
    payload = UnicodeAttribute(default="{}")
    send_at = UnicodeAttribute(null=True)  # later than created_at when quiet hours held it back
    marketing = BooleanAttribute(null=True)
    dropped = UnicodeAttribute(null=True)  # why the contact policy dropped it (SKIP# items only)


def post(member_id: str, kind: str, source_id: str, at: str, payload: dict[str, Any] | None = None) -> bool:
    """Write the message once per (member, kind, source). Returns False if it was already there."""
    note = Notification(member_pk(member_id), f"NOTE#{at}#{kind}#{source_id}", member_id=member_id, kind=kind,
                        source_id=source_id, created_at=at, payload=json.dumps(payload or {}, ensure_ascii=False))
    try:
        note.save(condition=Notification.pk.does_not_exist())
        return True
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise


def note(member_id: str, kind: str, source_id: str, at: str, payload: dict[str, Any] | None = None,
         send_at: str | None = None, marketing: bool = False, dropped: str | None = None) -> Notification:
    """The item of one moment, for a caller that writes it in its own transaction."""
    prefix = "SKIP" if dropped else "NOTE"
    return Notification(member_pk(member_id), f"{prefix}#{at}#{kind}#{source_id}", member_id=member_id, kind=kind,
                        source_id=source_id, created_at=at, payload=json.dumps(payload or {}, ensure_ascii=False),
                        send_at=send_at if send_at and send_at > at else None, marketing=marketing or None,
                        dropped=dropped)


def marketing_sent_since(member_id: str, since: str) -> int:
    return Notification.count(member_pk(member_id), Notification.sk.between(f"NOTE#{since}", "NOTE#~"),
                              filter_condition=Notification.marketing == True,  # noqa: E712 (a condition)
                              consistent_read=True)


def render(note: Notification, zone: Any = None) -> dict[str, Any]:
    """The item with its title and body in the locale in force (texts.py: rendered on read)."""
    payload = json.loads(note.payload or "{}")
    return {"kind": note.kind, "source_id": note.source_id, "created_at": note.created_at,
            "send_at": note.send_at or note.created_at, **texts.texts(note.kind, payload, zone), "payload": payload}


def list_for(member_id: str, page_query: PageQuery) -> dict[str, Any]:
    zone = program.rules_at().zone()
    return page(Notification.query, page_query, f"notes:{member_id}", lambda note: render(note, zone),
                hash_key=member_pk(member_id), range_key_condition=Notification.sk.startswith("NOTE#"),
                scan_index_forward=False)
