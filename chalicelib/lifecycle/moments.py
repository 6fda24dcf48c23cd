"""Which moments reach the member, and when: the program's contact policy.

Service moments (welcome, thank-you, tier changes, rewards) always go out. Marketing moments
(nudge, at-risk, win-back, birthday) need the member's opt-in, are held back to the end of
quiet hours (program time zone), and past `max_messages_per_7d` are dropped — recorded with
the reason (a SKIP# item), never delayed forever.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Callable

from ..core import clock
from ..program.rules import ProgramRules
from . import outbox

MARKETING = frozenset({"second_purchase_nudge", "at_risk", "win_back", "birthday"})


@dataclass(frozen=True)
class Moment:
    kind: str
    cause: str  # with the kind, what makes it once-only (an order id, a date, a year)
    payload: dict[str, Any] = field(default_factory=dict)


def end_of_quiet_hours(moment: datetime, rules: ProgramRules) -> datetime:
    """`moment` if it lies outside quiet hours, else when they end (program time zone)."""
    quiet = rules.contact_policy.quiet_hours
    if quiet is None or quiet.start == quiet.end:
        return moment
    local = rules.local(moment)
    start, end = (time.fromisoformat(quiet.start), time.fromisoformat(quiet.end))
    now = local.time()
    inside = (start <= now or now < end) if start > end else (start <= now < end)
    if not inside:
        return moment
    day = local.date() + timedelta(days=1) if start > end and now >= start else local.date()
    return datetime.combine(day, end, tzinfo=local.tzinfo)


def notes_for(member: Any, moments: list[Moment], now: str, rules: ProgramRules,
              sent_since: Callable[[str, str], int] = outbox.marketing_sent_since) -> list[outbox.Notification]:
    """The outbox items for `moments` under the contact policy (the caller writes them)."""
    items = []
    marketing_sent = None
    for moment in moments:
        marketing = moment.kind in MARKETING
        dropped = send_at = None
        if marketing:
            if not member.marketing_opt_in:
                dropped = "not_opted_in"
            else:
                if marketing_sent is None:
                    week_ago = clock.iso(clock.parse(now) - timedelta(days=7))
                    marketing_sent = sent_since(member.member_id, week_ago)
                if marketing_sent >= rules.contact_policy.max_messages_per_7d:
                    dropped = "weekly_cap"
                else:
                    marketing_sent += 1
                    send_at = clock.iso(end_of_quiet_hours(clock.parse(now), rules))
        items.append(outbox.note(member.member_id, moment.kind, moment.cause, now, moment.payload,
                                 send_at=send_at, marketing=marketing, dropped=dropped))
    return items
