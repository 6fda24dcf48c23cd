"""The export kinds: each is its columns, a row source read lazily from a cursor, and how its
file is named. A source yields (row, cursor after that row); csvfile.page writes them.

The funnel's rows are the funnel's own daily figures (funnel/report.py `daily_rows`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Iterable, Iterator
from zoneinfo import ZoneInfo

from ..funnel.report import daily_rows
from . import leaderboard, ledger
from .csvfile import Positioned
from .names import add_names


@dataclass(frozen=True)
class Export:
    """What one export covers: the campaign, its days (inclusive, in the campaign's time zone)
    and the kind's own options."""
    campaign_id: str
    first_day: date
    last_day: date
    zone: str
    metric: str = "referrals"
    period: str = "all"
    channel: str | None = None

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), ZoneInfo(self.zone))

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last_day + timedelta(days=1), time(), ZoneInfo(self.zone))


Source = Callable[[Export, dict[str, Any] | None], Iterator[Positioned]]


def dated(kind: str) -> Callable[[Export], str]:
    return lambda e: f"{kind}-{e.campaign_id}-{e.first_day.isoformat()}-{e.last_day.isoformat()}"


@dataclass(frozen=True)
class Kind:
    columns: tuple[str, ...]
    rows: Source
    stem: Callable[[Export], str]
    decorate: Callable[[list[dict[str, Any]]], None] | None = None
    options: tuple[str, ...] = ()  # the query options it reads (carried to the next page's URL)


FUNNEL_COLUMNS = ("day", "channel", "clicks", "unique_visitors", "signups", "first_purchases", "gmv_fen", "points",
                  "coupon_fen", "invites")
DailyRows = Callable[..., Iterable[dict[str, Any]]]  # (campaign_id, from_day, to_day, channel=None) → rows


def from_daily_rows(daily_rows: DailyRows) -> Kind:
    """The funnel kind from a source of one dict per (day, channel), sorted by both (ISO day
    strings in, `day` out); the cursor is the last (day, channel) written, so a page restarts
    the source at that day and skips up to it: a row appearing meanwhile shifts nothing."""
    def rows(e: Export, after: dict[str, Any] | None) -> Iterator[Positioned]:
        first = after["d"] if after else e.first_day.isoformat()
        for row in daily_rows(e.campaign_id, first, e.last_day.isoformat(), channel=e.channel):
            position = (str(row["day"]), str(row["channel"]))
            if after and position <= (after["d"], after["c"]):
                continue  # written on an earlier page
            yield row, {"d": position[0], "c": position[1]}

    return Kind(FUNNEL_COLUMNS, rows, dated("funnel"), options=("channel",))


KINDS: dict[str, Kind] = {
    "leaderboard": Kind(leaderboard.COLUMNS,
                        lambda e, after: leaderboard.rows(e.campaign_id, e.metric, e.period, after),
                        lambda e: f"leaderboard-{e.campaign_id}-{e.metric}-{e.period}", add_names,
                        options=("metric", "period")),
    "ledger": Kind(ledger.COLUMNS, lambda e, after: ledger.rows(e.campaign_id, e.start, e.end, after),
                   dated("ledger"), add_names),
    "funnel": from_daily_rows(daily_rows),
}
