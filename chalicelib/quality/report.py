"""Reading the quality figures of a cohort: the campaign's tallies over the cohort days asked
for (one Query per shard), and the top advocates' own tallies (one Query each)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from ..leaderboards import ranking, rules as boards
from . import rules
from .models import AdvocateTally, CohortTally

TOP_BASIS = "the campaign's all-time referrals leaderboard (conversions that stand)"


def _days(model: Any, pk: str, start: str, end: str) -> list:
    return list(model.query(pk, model.sk.between(f"D#{start}", f"D#{end}#\uffff"), consistent_read=False))


def cohort(campaign_id: str, start: str, end: str, now: datetime, zone: str) -> dict[str, Any]:
    tallies = [t for shard in range(rules.SHARDS) for t in _days(CohortTally, f"QC#{campaign_id}#{shard}", start, end)]
    channels: dict[str, list] = {}
    for tally in tallies:
        channels.setdefault(tally.channel, []).append((tally.day, tally.counts()))
    return {"cohort": rules.figures([(t.day, t.counts()) for t in tallies], now, zone),
            "by_channel": [{"channel": channel, **rules.figures(rows, now, zone)}
                           for channel, rows in sorted(channels.items())]}


def top_advocates(campaign_id: str, start: str, end: str, limit: int, now: datetime, zone: str) -> list[dict]:
    """The campaign's top advocates by referrals (all time), each with the figures of its own
    referees in the cohort (which may be none)."""
    board = ranking.with_names(ranking.top(boards.board(campaign_id, "referrals", "all"), limit), masked=False)
    out = []
    for row in board:
        advocate_id = row["member"]["member_id"]
        rows = [(t.day, t.counts()) for t in _days(AdvocateTally, f"QA#{campaign_id}#{advocate_id}", start, end)]
        out.append({"rank": row["rank"], "member": row["member"], "referrals": row["score"],
                    **rules.figures(rows, now, zone)})
    return out
