"""A campaign's recorded facts of a period, and the state they start from (reads only).

Facts come from the campaign's fact index (models.CampaignFact); what happened before the
period is read where production keeps it: the binding of referees who signed up earlier (their
member items), each advocate's conversions before the period (their rank baseline and the
milestones already reached), and the budget and cap usage before the period — the usage now
less what the period's recorded entries used (ledger export rows), exact when the period runs
to now and an approximation when later entries exist.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from ..campaigns.rules import Rules
from ..core import clock
from ..core.errors import Unprocessable
from ..exports.ledger import _months
from ..exports.models import EXPORT_SHARDS, LedgerExportRow
from ..exports.models import partition as export_partition
from ..i18n import t
from ..members.models import Member
from ..referrals.models import Conversion
from ..rewards import budget
from ..rewards.models import CapUsage
from ..rewards.rules import ADVOCATE_RULES
from ..store.base import MainItem
from .models import FACT_SHARDS, CampaignFact, partition
from .simulate import Before, Fact, Mark, Referee

MAX_FACTS = 10_000
REPLAYED_RULES = {"welcome", "coupon", "conversion", "commission", "second_level", "milestone"}


@dataclass
class Period:
    facts: list[Fact]
    before: Before
    written: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # what the ledger holds


def _bounds(start: datetime, end: datetime) -> tuple[str, str]:
    return clock.iso(start), clock.iso(end - timedelta(microseconds=1)) + "$"  # '$' sorts after '#'


def _merged(partition_of: Callable[[str, int], str], shards: int, model: Any, start: datetime,
            end: datetime) -> Iterator[Any]:
    low, high = _bounds(start, end)
    for month in _months(low[:7], high[:7]):
        queries = [iter(model.query(partition_of(month, shard), model.sk.between(low, high), page_size=500))
                   for shard in range(shards)]
        yield from heapq.merge(*queries, key=lambda item: item.sk)


def facts(campaign_id: str, start: datetime, end: datetime) -> list[CampaignFact]:
    found = []
    for row in _merged(lambda month, shard: partition(campaign_id, month, shard), FACT_SHARDS, CampaignFact,
                       start, end):
        if len(found) == MAX_FACTS:
            raise Unprocessable(t("the period holds more than {max_facts} facts: choose a shorter one",
                                  max_facts=MAX_FACTS),
                                code="too_many_facts", details={"max_facts": MAX_FACTS})
        found.append(row)
    return found


def as_fact(row: CampaignFact) -> Fact:
    return Fact(row.kind, row.occurred_at, row.member_id, referrer_id=row.referrer_id,
                grandparent_id=row.grandparent_id,
                version=None if row.campaign_version is None else int(row.campaign_version),
                window_ends_at=row.window_ends_at, order_id=row.order_id, refund_id=row.refund_id,
                amount_fen=int(row.amount_fen or 0))


def load(campaign_id: str, start: datetime, end: datetime, rules_for: Callable[[int | None], Rules],
         budget_campaigns: set[str]) -> Period:
    period = Period([as_fact(row) for row in facts(campaign_id, start, end)], Before())
    since = clock.iso(start)
    signed_up = {f.member_id for f in period.facts if f.kind == "signup"}
    earlier = sorted({f.member_id for f in period.facts if f.kind != "signup"} - signed_up)
    for member in _batch_get([Member.key(member_id) for member_id in earlier], Member):
        if member.referrer_id and member.referral_campaign_id == campaign_id and (member.bound_at or "") < since:
            period.before.referees[member.member_id] = _referee(member, since, rules_for)
    advocates = {f.referrer_id for f in period.facts if f.referrer_id}
    advocates |= {r.referrer_id for r in period.before.referees.values()}
    for referrer_id in sorted(advocates):
        period.before.conversions[referrer_id] = [
            Mark(referrer_id, c.converted_at, c.referee_id, None, (c.level, int(c.commission_bps or 0)))
            for c in Conversion.query(f"M#{referrer_id}", Conversion.sk.between("CONV#", f"CONV#{since}"),
                                      consistent_read=True)]
    for campaign in sorted(budget_campaigns):
        period.written.update(_written(campaign, start, end))
    _usage_before(period, budget_campaigns)
    return period


def _referee(member: Member, since: str, rules_for: Callable[[int | None], Rules]) -> Referee:
    version = None if member.referral_campaign_version is None else int(member.referral_campaign_version)
    referee = Referee(member.member_id, member.referrer_id, member.grandparent_id, rules_for(version),
                      member.bound_at, member.window_ends_at)
    if member.referral_status == "converted" and (member.converted_at or "") < since:
        referee.status, referee.converted_at = "converted", member.converted_at
        referee.converting_order = member.converting_order_id
    return referee


def _written(campaign_id: str, start: datetime, end: datetime) -> dict[tuple[str, str], dict[str, Any]]:
    rows = _merged(lambda month, shard: export_partition(campaign_id, month, shard), EXPORT_SHARDS, LedgerExportRow,
                   start, end)
    return {(row.member_id, row.entry_id): {"rule": row.rule, "unit": row.unit, "amount": int(row.amount),
                                            "reversed_amount": int(row.reversed_amount or 0),
                                            "created_at": row.created_at, "campaign_id": campaign_id}
            for row in rows if row.rule in REPLAYED_RULES}


def _usage_before(period: Period, campaigns: set[str]) -> None:
    """Usage now, less what the period's own entries used. (Usage items are created by an ADD
    that names no type, so they are read through their own class, not the root.)"""
    used_by: dict[tuple[str, str, str], int] = {}
    for (member_id, _), row in period.written.items():
        if row["unit"] == "points" and row["rule"] in ADVOCATE_RULES:
            cap_key = (member_id, row["campaign_id"], row["created_at"][:7])
            used_by[cap_key] = used_by.get(cap_key, 0) + row["amount"]
    for campaign in sorted(campaigns):
        spent = budget.totals(campaign)  # every shard and the legacy item
        if not any(spent.values()):
            continue
        rows = [r for r in period.written.values() if r["campaign_id"] == campaign]
        period.before.points_spent[campaign] = spent["points"] - sum(
            r["amount"] - r["reversed_amount"] for r in rows if r["unit"] == "points")
        period.before.fen_spent[campaign] = spent["fen"] - sum(
            r["amount"] - r["reversed_amount"] for r in rows if r["unit"] != "points")
    for cap in _batch_get([CapUsage.key(*k) for k in sorted(used_by)], CapUsage):
        member_id, (campaign, month) = cap.pk[len("CAP#"):], cap.sk.split("#", 1)
        period.before.cap_used[(member_id, campaign, month)] = int(cap.points or 0) - used_by[(member_id, campaign, month)]


def _batch_get(keys: list[tuple[str, str]], model: Any = MainItem) -> list[Any]:
    found: list[Any] = []
    for i in range(0, len(keys), 100):
        found += list(model.batch_get(keys[i:i + 100], consistent_read=True))
    return found
