"""The facts a member's lifecycle is a function of: purchases (with their refunds), sign-up,
conversions of referees, birthday. Pure data, no I/O; `service.facts_of` reads them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from ..core import clock


@dataclass(frozen=True)
class Refund:
    at: str
    fen: int


@dataclass(frozen=True)
class Purchase:
    order_id: str
    at: str
    amount_fen: int
    refunds: tuple[Refund, ...] = ()
    earns: bool = True  # False for imported history: it counts for stage and tier, pays no points

    def refunded_by(self, moment: str) -> int:
        return min(self.amount_fen, sum(r.fen for r in self.refunds if r.at <= moment))

    def net_at(self, moment: str) -> int:
        return self.amount_fen - self.refunded_by(moment)

    def stands_at(self, moment: str) -> bool:
        """A purchase counts for stages while any of it is kept (a full refund undoes it)."""
        return self.at <= moment and (self.amount_fen == 0 or self.net_at(moment) > 0)


@dataclass(frozen=True)
class MemberFacts:
    member_id: str
    joined_at: str
    purchases: tuple[Purchase, ...] = ()  # any order; the functions sort
    conversions: tuple[str, ...] = ()  # when each referee converted
    birthday: str | None = None  # "MM-DD"

    def ordered(self) -> list[Purchase]:
        return sorted(self.purchases, key=lambda p: (p.at, p.order_id))

    def standing_at(self, moment: str) -> list[Purchase]:
        return [p for p in self.ordered() if p.stands_at(moment)]


def plus_days(moment: str, days: int) -> str:
    return clock.iso(clock.parse(moment) + timedelta(days=days))

