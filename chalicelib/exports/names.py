"""Full display names for ops' exports, looked up per chunk of rows (one BatchGetItem per 100
distinct members), so a name is the member's current one and never copied into export data."""
from __future__ import annotations

from typing import Any

from ..members.models import Member


def add_names(rows: list[dict[str, Any]]) -> None:
    ids = sorted({row["member_id"] for row in rows})
    found = Member.batch_get([Member.key(member_id) for member_id in ids], attributes_to_get=["member_id", "display_name"])
    names = {member.member_id: member.display_name for member in found}
    for row in rows:
        row["display_name"] = names.get(row["member_id"], "")
