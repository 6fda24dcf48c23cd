"""Pure rules of referral quality: what one referee contributes, and the figures of a cohort.

A referee belongs to the cohort of the local day (campaign time zone) of its first purchase —
the order that converted the referral. Its window is the 90 days after that purchase.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Iterable
from zoneinfo import ZoneInfo

from ..core import clock

REPEAT_DAYS = (30, 90)
WINDOW_DAYS = 90  # repeat purchases and refunds count over the first 90 days after the first purchase
SHARDS = 4  # write partitions of a campaign's cohort tallies (by referee)
FIELDS = ("members", "repeat_30d", "repeat_90d", "gmv_fen", "refunded_fen", "refunders")

Counts = dict[str, int]


@dataclass(frozen=True)
class Purchase:
    order_id: str
    occurred_at: str  # stored form: UTC ISO text, sorts as time
    amount_fen: int
    refunded_fen: int


def window_end(first_at: str) -> str:
    return clock.iso(clock.parse(first_at) + timedelta(days=WINDOW_DAYS))


def in_window(first: Purchase, order: Purchase) -> bool:
    return first.occurred_at <= order.occurred_at <= window_end(first.occurred_at)


def counts(first: Purchase, orders: Iterable[Purchase]) -> Counts:
    """One referee's figures. A repeat is another order, not fully refunded, within N days of
    the first; GMV and refunds cover every order in the window, the first included.

    >>> first = Purchase("o1", "2027-01-01T00:00:00.000000Z", 100, 0)
    >>> later = Purchase("o2", "2027-02-15T00:00:00.000000Z", 50, 10)
    >>> counts(first, [first, later])["repeat_30d"], counts(first, [later])["repeat_90d"]
    (0, 1)
    """
    inside = {o.order_id: o for o in orders if in_window(first, o)}
    inside[first.order_id] = first
    start = clock.parse(first.occurred_at)
    out = {"members": 1, "gmv_fen": sum(o.amount_fen for o in inside.values()),
           "refunded_fen": sum(o.refunded_fen for o in inside.values()),
           "refunders": int(any(o.refunded_fen > 0 for o in inside.values()))}
    for days in REPEAT_DAYS:
        until = clock.iso(start + timedelta(days=days))
        out[f"repeat_{days}d"] = int(any(o.order_id != first.order_id and o.refunded_fen < o.amount_fen
                                         and o.occurred_at <= until for o in inside.values()))
    return out


def cohort_day(first_at: str, zone: str) -> str:
    return clock.parse(first_at).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d")


def shard(referee_id: str) -> int:
    return zlib.crc32(referee_id.encode()) % SHARDS


def closed(day: str, days: int, now: datetime, zone: str) -> bool:
    """Whether every referee of cohort `day` has had `days` days since its first purchase:
    the day's last moment (local midnight after it) plus `days` has passed."""
    end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), time(), ZoneInfo(zone))
    return end + timedelta(days=days) <= now


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(tallies: Iterable[tuple[str, Counts]], now: datetime, zone: str) -> dict:
    """Cohort figures from (cohort day, counts) rows: repeats over the days whose window has
    closed by `now` (decided here, at read time), refunds over every referee so far."""
    total = dict.fromkeys(FIELDS, 0)
    eligible = dict.fromkeys(REPEAT_DAYS, 0)
    repeated = dict.fromkeys(REPEAT_DAYS, 0)
    for day, row in tallies:
        for name in FIELDS:
            total[name] += int(row.get(name, 0))
        for days in REPEAT_DAYS:
            if closed(day, days, now, zone):
                eligible[days] += int(row.get("members", 0))
                repeated[days] += int(row.get(f"repeat_{days}d", 0))
    out: dict = {"members": total["members"]}
    for days in REPEAT_DAYS:
        out[f"repeat_{days}d"] = {"eligible": eligible[days], "repeated": repeated[days],
                                  "rate": _rate(repeated[days], eligible[days])}
    out["refunds"] = {"gmv_fen": total["gmv_fen"], "refunded_fen": total["refunded_fen"],
                      "rate": _rate(total["refunded_fen"], total["gmv_fen"]),
                      "members_with_refund": total["refunders"],
                      "member_rate": _rate(total["refunders"], total["members"])}
    return out
