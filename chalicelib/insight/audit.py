"""The audit log: who changed what, when (ops adjustments, fraud resolutions, campaign edits).

Access pattern: newest first, Query gsi1 gsi1pk=AUDIT (ops actions are rare: one partition).
"""
from __future__ import annotations

import json
import uuid
from typing import Any

from pynamodb.attributes import UnicodeAttribute

from ..core import clock
from ..core.pagination import PageQuery, page
from ..store.base import MainItem


class AuditRecord(MainItem, discriminator="audit"):
    audit_id = UnicodeAttribute()
    actor = UnicodeAttribute()
    action = UnicodeAttribute()
    target = UnicodeAttribute()
    at = UnicodeAttribute()
    details = UnicodeAttribute(default="{}")


def record(actor: str, action: str, target: str, details: dict[str, Any] | None = None,
           audit_id: str | None = None, at: str | None = None) -> AuditRecord:
    """An audit record, unsaved: callers put it in the same transaction as the change."""
    at = at or clock.now_iso()
    audit_id = audit_id or uuid.uuid4().hex
    return AuditRecord(f"AUDIT#{audit_id}", "AUDIT", audit_id=audit_id, actor=actor, action=action, target=target,
                       at=at, details=json.dumps(details or {}, ensure_ascii=False), gsi1pk="AUDIT",
                       gsi1sk=f"{at}#{audit_id}")


def render(item: AuditRecord) -> dict[str, Any]:
    return {"audit_id": item.audit_id, "actor": item.actor, "action": item.action, "target": item.target,
            "at": item.at, "details": json.loads(item.details or "{}")}


def list_records(page_query: PageQuery, scope: str) -> dict[str, Any]:
    return page(AuditRecord.by_gsi1.query, page_query, f"audit:{scope}", render, hash_key="AUDIT",
                scan_index_forward=False)
