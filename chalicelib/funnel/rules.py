"""Pure rules of the funnel: figures, cells, shards, days and the derived rates.

A cell is (campaign, day, channel): the day is the fact's own time in the campaign's time zone,
the channel the click's, or the referee's (`referral_channel`: the linked click's, "code"
without one). Reward cost has no channel (see docs/funnel.md): its cells use ALL_CHANNELS.
"""
from __future__ import annotations

import zlib
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..referrals.clicks import local_day

# Figures that add up across days and channels (kept by facts.py, clicks by tallies.py).
FACT_FIGURES = ("signups", "first_purchases", "gmv_fen", "points", "coupon_fen", "invites")
ADDITIVE = ("clicks",) + FACT_FIGURES
ALL_CHANNELS = "all"  # reward cost: counted for the campaign, not per channel
SHARDS = 4  # write partitions per campaign; a range read is one Query per shard
MAX_DAYS = 366
DEFAULT_DAYS = 30

Cell = tuple[str, str, str]  # campaign, day, channel


def shard_of(name: str) -> int:
    return zlib.crc32(name.encode()) % SHARDS


def partition(campaign_id: str, shard: int) -> str:
    return f"FUN#{campaign_id}#{shard}"


def sort_key(day: str, channel: str, kind: str) -> str:
    """`<day>#<channel>#<kind>`: f = fact figures, c = clicks and visitors, a = advocates."""
    return f"{day}#{channel}#{kind}"


def day_range_keys(from_day: str, to_day: str) -> tuple[str, str]:
    """Sort-key bounds covering every channel and kind of the days from..to (channels and kinds
    are lower case, below `~`)."""
    return f"{from_day}#", f"{to_day}#~"


def day_of(at: str, zone: str) -> str:
    """>>> day_of("2026-11-23T17:30:00Z", "Asia/Shanghai")
    '2026-11-24'"""
    return local_day(datetime.fromisoformat(at.replace("Z", "+00:00")), zone)


def today(zone: str, now: datetime) -> str:
    return now.astimezone(ZoneInfo(zone)).date().isoformat()


def days(from_day: str, to_day: str) -> list[str]:
    """>>> days("2026-02-27", "2026-03-01")
    ['2026-02-27', '2026-02-28', '2026-03-01']"""
    start, end = date.fromisoformat(from_day), date.fromisoformat(to_day)
    return [(start + timedelta(n)).isoformat() for n in range((end - start).days + 1)]


def default_from(to_day: str) -> str:
    return (date.fromisoformat(to_day) - timedelta(DEFAULT_DAYS - 1)).isoformat()


def ratio(numerator: int, denominator: int) -> float | None:
    """None when there is nothing to divide by.

    >>> ratio(1, 3), ratio(5, 0)
    (0.3333, None)
    """
    return round(numerator / denominator, 4) if denominator else None


def k_factor(advocates: int, invites: int, signups: int) -> dict[str, float | None]:
    """K = i × c: invites per advocate times sign-ups per invite (= sign-ups per advocate).

    >>> k_factor(2, 10, 3)
    {'invites_per_advocate': 5.0, 'signups_per_invite': 0.3, 'k_factor': 1.5}
    """
    i, c = ratio(invites, advocates), ratio(signups, invites)
    k = round(invites / advocates * signups / invites, 4) if advocates and invites else None
    return {"invites_per_advocate": i, "signups_per_invite": c, "k_factor": k}
