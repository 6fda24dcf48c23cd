"""Stream-driven lifecycle moments."""
from __future__ import annotations

from ..streams import Change, on_change
from . import outbox


@on_change("main", "member")
def welcome_new_member(change: Change) -> None:
    if change.event != "INSERT":
        return
    member = change.new
    outbox.post(member.member_id, "welcome", member.member_id, member.created_at,
                {"display_name": member.display_name})
