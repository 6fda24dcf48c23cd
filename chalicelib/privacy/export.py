"""`GET /v1/members/me/export`: everything the service holds on the caller, as JSON.

Every item that `holdings.collect` finds, grouped by type, with every stored attribute but the
table's own bookkeeping (keys, index keys, type, TTL): a field added to a model later is exported
without a change here. JSON held in a string (notification payloads, timeline data) is decoded.
"""
from __future__ import annotations

import base64
import json
from typing import Any

from ..core import clock
from ..members import service as members
from .holdings import collect
from .inventory import INVENTORY, ROOT_FIELDS


def _value(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return value


def render(item: Any) -> dict[str, Any]:
    return {name: _value(value) for name, value in sorted(item.attribute_values.items()) if name not in ROOT_FIELDS}


def export(member_id: str) -> dict[str, Any]:
    held = collect(members.get(member_id))  # 404 for an erased member: nothing personal is left
    items = {name: [render(item) for item in group] for name, group in sorted(held.by_type().items())
             if INVENTORY.get(name) is None or INVENTORY[name].exported}
    profile = items.pop("member")[0]
    return {"member_id": member_id, "exported_at": clock.now_iso(), "profile": profile, "items": items}
