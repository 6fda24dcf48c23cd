"""Reading the funnel: one Query per shard over the days asked for, merged in code.

`daily_rows` gives one row per (day, channel) with the additive figures (the CSV export);
`funnel` the totals over the range, rates, K-factor and one entry per day.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..store.base import ControlItem
from . import hll, rules
from .models import DayFigures, DaySketch


@dataclass
class Cell:
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(rules.ADDITIVE, 0))
    visitors: bytes | None = None  # None: no sketch (most cells of a long range): nothing to merge
    advocates: bytes | None = None

    def absorb(self, other: "Cell") -> None:
        for name, n in other.figures.items():
            self.figures[name] += n
        self.visitors = _merge(self.visitors, other.visitors)
        self.advocates = _merge(self.advocates, other.advocates)


def _merge(mine: bytes | None, other: bytes | None) -> bytes | None:
    return other if mine is None else mine if other is None else hll.merge(mine, other)


def _estimate(sketch: bytes | None) -> int:
    return hll.estimate(sketch) if sketch is not None else 0


def cells(campaign_id: str, from_day: str, to_day: str, channel: str | None = None) -> dict[tuple[str, str], Cell]:
    """(day, channel) → its figures and sketches; with `channel`, that channel and the reward
    cost (which has none)."""
    low, high = rules.day_range_keys(from_day, to_day)
    out: dict[tuple[str, str], Cell] = defaultdict(Cell)
    for shard in range(rules.SHARDS):
        for item in ControlItem.query(rules.partition(campaign_id, shard), ControlItem.sk.between(low, high)):
            day, item_channel, kind = item.sk.split("#")
            if channel is not None and item_channel not in (channel, rules.ALL_CHANNELS):
                continue
            cell = out[(day, item_channel)]
            if isinstance(item, DayFigures):
                for name in rules.FACT_FIGURES:
                    cell.figures[name] += int(getattr(item, name) or 0)
            elif isinstance(item, DaySketch) and kind == "c":
                cell.figures["clicks"] += int(item.clicks or 0)
                cell.visitors = _merge(cell.visitors, hll.unpack(item.registers))
            elif isinstance(item, DaySketch) and kind == "a":
                cell.advocates = _merge(cell.advocates, hll.unpack(item.registers))
    return dict(out)


def daily_rows(campaign_id: str, from_day: str, to_day: str, channel: str | None = None) -> Iterator[dict[str, Any]]:
    """One row per (day, channel) that has anything, by day then channel. Reward cost comes in
    rows of channel "all" (it is not kept per channel), also when a channel is asked for.

    Row: {day, channel, clicks, unique_visitors, signups, first_purchases, gmv_fen, points,
    coupon_fen, invites} — unique_visitors estimated for that day and channel (docs/funnel.md).
    """
    for (day, row_channel), cell in sorted(cells(campaign_id, from_day, to_day, channel).items()):
        yield {"day": day, "channel": row_channel, **_additive(cell)}


def _additive(cell: Cell) -> dict[str, int]:
    figures = cell.figures
    return {"clicks": figures["clicks"], "unique_visitors": _estimate(cell.visitors),
            **{name: figures[name] for name in rules.FACT_FIGURES}}


def funnel(campaign_id: str, from_day: str, to_day: str, channel: str | None = None) -> dict[str, Any]:
    by_day: dict[str, Cell] = {day: Cell() for day in rules.days(from_day, to_day)}
    total = Cell()
    for (day, _), cell in cells(campaign_id, from_day, to_day, channel).items():
        by_day[day].absorb(cell)
        total.absorb(cell)
    f = total.figures
    advocates = _estimate(total.advocates)
    k = rules.k_factor(advocates, f["invites"], f["signups"])
    return {
        "campaign_id": campaign_id, "from": from_day, "to": to_day, "channel": channel,
        "clicks": f["clicks"], "unique_visitors": _estimate(total.visitors), "signups": f["signups"],
        "first_purchases": f["first_purchases"], "gmv_fen": f["gmv_fen"],
        "rewards_cost": {"points": f["points"], "coupon_fen": f["coupon_fen"], "channels": rules.ALL_CHANNELS},
        "rewards_cost_fen": f["coupon_fen"],  # points have no value in fen in the rules
        "rates": {"signup_per_click": rules.ratio(f["signups"], f["clicks"]),
                  "purchase_per_signup": rules.ratio(f["first_purchases"], f["signups"]),
                  "purchase_per_click": rules.ratio(f["first_purchases"], f["clicks"]),
                  "invites_per_advocate": k["invites_per_advocate"], "signups_per_invite": k["signups_per_invite"]},
        "invites": f["invites"], "advocates": advocates, "k_factor": k["k_factor"],
        "estimated": {"fields": ["unique_visitors", "advocates"], "relative_error": round(hll.RELATIVE_ERROR, 3)},
        "by_day": [{"day": day, **_additive(cell), "advocates": _estimate(cell.advocates)}
                   for day, cell in by_day.items()],
    }
