"""Ledger invariants of DESIGN.md, checked against the stored items."""
from __future__ import annotations

from collections import defaultdict

from chalicelib.members.models import Member, member_pk
from chalicelib.points.models import PointsLot
from chalicelib.rewards import budget
from chalicelib.rewards.models import LedgerEntry


def entries(member_id: str) -> list[LedgerEntry]:
    return list(LedgerEntry.query(member_pk(member_id), LedgerEntry.sk.startswith("LEDGER#"), consistent_read=True))


def points(member_id: str) -> dict[str, int]:
    m = Member.get(*Member.key(member_id), consistent_read=True)
    return {"available": int(m.points_available), "pending": int(m.points_pending)}


def by_rule(member_id: str) -> dict[str, int]:
    """Standing points per rule (amount less what was reversed)."""
    totals: dict[str, int] = defaultdict(int)
    for e in entries(member_id):
        if e.unit == "points":
            totals[e.rule] += e.standing
    return dict(totals)


def assert_balances_match_entries(member_ids) -> None:
    for member_id in member_ids:
        sums = {"available": 0, "pending": 0}
        seen = set()
        for e in entries(member_id):
            assert e.entry_id not in seen
            seen.add(e.entry_id)
            assert 0 <= int(e.reversed_amount or 0) <= max(int(e.amount), 0) or e.rule in ("redemption", "adjustment",
                                                                                        "expiry")
            if e.bucket:
                sums[e.bucket] += e.standing
        balance = points(member_id)
        assert balance == sums, (member_id, balance, sums)
        assert balance["available"] >= 0 and balance["pending"] >= 0, (member_id, balance)
        assert_lots_match_balance(member_id)


def lots(member_id: str) -> list[PointsLot]:
    return list(PointsLot.query(member_pk(member_id), PointsLot.sk.startswith("LOT#"), consistent_read=True))


def assert_lots_match_balance(member_id: str) -> None:
    """Every available point sits in a lot, less what is owed to the lots; no lot is negative."""
    m = Member.get(*Member.key(member_id), consistent_read=True)
    remaining = [int(lot.remaining) for lot in lots(member_id)]
    assert all(r >= 0 for r in remaining), (member_id, remaining)
    assert int(m.lot_debt) >= 0, (member_id, int(m.lot_debt))
    assert sum(remaining) - int(m.lot_debt) == int(m.points_available), (member_id, remaining, int(m.lot_debt),
                                                                          int(m.points_available))


def budget_spent(campaign_id: str = "default") -> int:
    """Points spent: the sum of the budget's shards (and of the item written before sharding)."""
    return budget.totals(campaign_id)["points"]


def budget_spent_fen(campaign_id: str = "default") -> int:
    """Money spent (coupons, red packets), summed the same way."""
    return budget.totals(campaign_id)["fen"]
