"""Ledger invariants of DESIGN.md, checked against the stored items."""
from __future__ import annotations

from collections import defaultdict

from chalicelib.members.models import Member, member_pk
from chalicelib.rewards.models import BudgetUsage, LedgerEntry


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
            assert 0 <= int(e.reversed_amount or 0) <= max(int(e.amount), 0) or e.rule in ("redemption", "adjustment")
            if e.bucket:
                sums[e.bucket] += e.standing
        balance = points(member_id)
        assert balance == sums, (member_id, balance, sums)
        assert balance["available"] >= 0 and balance["pending"] >= 0, (member_id, balance)


def budget_spent(campaign_id: str = "default") -> int:
    try:
        return int(BudgetUsage.get(*BudgetUsage.key(campaign_id), consistent_read=True).spent)
    except BudgetUsage.DoesNotExist:
        return 0
