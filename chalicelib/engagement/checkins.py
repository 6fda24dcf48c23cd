"""Daily check-ins with streaks, in the campaign's time zone.

At most one check-in per member, campaign and local day: the check-in item's key names the
day and is written only if absent, so of concurrent taps exactly one wins and the others answer
`already_checked_in`. The streak is yesterday's plus one (yesterday's item is one GetItem); a
missed day starts again at 1. Points are paid by the stream handler below from the check-in as
recorded (its streak and the campaign version in force), through the ledger: exactly once.
"""
from __future__ import annotations

import uuid
from typing import Any

from pynamodb.exceptions import PutError

from ..campaigns import service as campaigns
from ..core import clock
from ..rewards import ledger
from ..store.base import condition_failed
from ..streams import Change, on_change
from . import rules
from .models import CheckIn
from .running import member_or_401, running_campaign


def _find(member_id: str, campaign_id: str, day: str) -> CheckIn | None:
    try:
        return CheckIn.get(*CheckIn.key(member_id, campaign_id, day), consistent_read=True)
    except CheckIn.DoesNotExist:
        return None


def check_in(member_id: str, campaign_id: str | None) -> dict[str, Any]:
    campaign = running_campaign(campaign_id)
    member_or_401(member_id)
    rule_set = campaigns.rules_of(campaign)
    now = clock.now()
    day = rules.local_day(now, rule_set.time_zone)
    yesterday = _find(member_id, campaign.campaign_id, rules.day_before(day))
    streak = rules.streak_after(int(yesterday.streak) if yesterday else None)
    item = CheckIn(*CheckIn.key(member_id, campaign.campaign_id, day), member_id=member_id,
                   campaign_id=campaign.campaign_id, campaign_version=int(campaign.version), day=day,
                   streak=streak, at=clock.iso(now), tap_id=uuid.uuid4().hex)
    try:
        item.save(condition=CheckIn.pk.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        first = _find(member_id, campaign.campaign_id, day)
        # botocore resends a put whose answer was lost: the condition then meets this call's own item
        return render(first, rule_set, already=first.tap_id != item.tap_id)
    return render(item, rule_set, already=False)


def render(item: CheckIn, rule_set: Any, already: bool) -> dict[str, Any]:
    pay = rules.checkin_pay(rule_set, int(item.streak))
    return {"campaign_id": item.campaign_id, "day": item.day, "streak": int(item.streak),
            "points_awarded": 0 if already else pay.total, "streak_bonus": 0 if already else pay.bonus,
            "already_checked_in": already}


@on_change("main", "checkin")
def pay_checkin(change: Change) -> None:
    if change.event != "INSERT":
        return
    item = change.new
    rule_set = campaigns.rules_at(item.campaign_id, int(item.campaign_version))
    for grant in rules.checkin_awards(rule_set, item.member_id, item.campaign_id, item.day, int(item.streak)):
        ledger.award(grant, item.campaign_id, rule_set, at=item.at)
