"""The member 360 timeline: the latest moments of a member's story, merged from sources.

Each source is a function registered with `@source("name")`: it gets what the view already
read (`Known`) and the limit, and returns at most that many entries `{at, kind, ...}`, reading
at most one page of its own. A new source (check-ins, notifications, …) joins by registering
one more function; the view itself does not change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from ..facts.models import Order
from ..fraud.models import FraudFlag
from ..lifecycle.models import timeline_of
from ..members.models import Member


@dataclass(frozen=True)
class Known:
    """What the view read before the timeline: sources use it rather than read it again."""

    member: Member
    flag: FraudFlag | None  # the flag on the member's own referral


Source = Callable[[Known, int], Iterable[dict[str, Any]]]
SOURCES: dict[str, Source] = {}


def source(name: str) -> Callable[[Source], Source]:
    def register(read: Source) -> Source:
        SOURCES[name] = read
        return read

    return register


def latest(known: Known, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` entries of every source, newest first; each says its source."""
    entries = [{"at": entry["at"], "source": name, **entry}
               for name, read in SOURCES.items() for entry in read(known, limit) if entry.get("at")]
    entries.sort(key=lambda entry: entry["at"], reverse=True)  # stable: ties keep the sources' order
    return entries[:limit]


@source("lifecycle")
def lifecycle(known: Known, limit: int) -> list[dict[str, Any]]:
    """Stage and tier changes (one Query, newest first)."""
    return timeline_of(known.member.member_id, limit=limit, newest_first=True)


@source("referral")
def referral(known: Known, limit: int) -> list[dict[str, Any]]:
    """Joining, being referred and converting: on the member item already read."""
    m = known.member
    joined = {"at": m.created_at, "kind": "joined", "via": m.source}
    if m.bound_at:
        joined.update(referred_by=m.referrer_id, code=m.referral_code, channel=m.referral_channel)
    entries = [joined]
    if m.converted_at:
        entries.append({"at": m.converted_at, "kind": "converted", "order_id": m.converting_order_id})
    return entries


@source("orders")
def orders(known: Known, limit: int) -> list[dict[str, Any]]:
    """The latest purchases with what was refunded of them (one index Query, none without orders)."""
    m = known.member
    if not int(m.orders or 0) and not int(m.gmv_fen or 0):
        return []
    return [{"at": o.occurred_at, "kind": "purchase", "order_id": o.order_id, "amount_fen": int(o.amount_fen),
             "refunded_fen": int(o.refunded_fen or 0)}
            for o in Order.by_gsi1.query(f"ORDERS#{m.member_id}", scan_index_forward=False, limit=limit)]


@source("fraud")
def fraud(known: Known, limit: int) -> list[dict[str, Any]]:
    """The member's own flag being raised and resolved: on the flag already read."""
    flag = known.flag
    if flag is None:
        return []
    entries = [{"at": flag.created_at, "kind": "flagged", "reasons": sorted(flag.reasons or [])}]
    if flag.resolved_at:
        entries.append({"at": flag.resolved_at, "kind": f"flag_{flag.status}", "by": flag.resolved_by})
    return entries
