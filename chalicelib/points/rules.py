"""Pure rules of expiring points: which lot a credit joins, and how a debt is spread over lots.

Points that become available at one moment expire `points_expire_days` later, at the end of
that day in the program's time zone; all points expiring on one day share a lot. A spend is
owed to the lots (a debt) and assigned later, soonest-to-expire lot first.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from ..core import clock
from ..program.rules import ProgramRules


@dataclass(frozen=True)
class LotDates:
    day: str  # YYYY-MM-DD, program time zone: the last day the points can be spent
    expiry_at: str  # the instant that day ends (ISO, UTC)
    notice_at: str  # when the member is told (`points_expiring_notice_days` before)

    @property
    def first_phase(self) -> str:
        return "notice" if self.notice_at < self.expiry_at else "expire"


def lot_dates(at: str, rules: ProgramRules) -> LotDates:
    """The lot of points that become available at `at` under `rules` (the version then in force)."""
    zone = rules.zone()
    day = rules.local(clock.parse(at)).date() + timedelta(days=rules.points_expire_days)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    notice = datetime.combine(day + timedelta(days=1 - rules.points_expiring_notice_days), time(0), tzinfo=zone)
    return LotDates(day.isoformat(), clock.iso(end), clock.iso(notice))


def spread_debt(remaining: list[int], debt: int) -> tuple[list[int], int]:
    """Take `debt` from lots ordered soonest-to-expire first. Returns what each lot keeps and the
    part of the debt no lot could carry (points older than lots).

    >>> spread_debt([5, 10, 7], 8)
    ([0, 7, 7], 0)
    """
    kept = []
    for points in remaining:
        taken = min(max(points, 0), debt)
        debt -= taken
        kept.append(points - taken)
    return kept, debt
