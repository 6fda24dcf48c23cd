"""Engagement items (main table).

Access patterns:
- a member's check-in on a campaign's local day (at most one; yesterday's gives the streak):
  GetItem pk=M#<member>, sk=CHECKIN#<campaign>#<yyyy-mm-dd>
- a share and its progress: GetItem pk=SHARE#<share_id>, sk=SHARE
- one assist per friend per share: GetItem pk=SHARE#<share_id>, sk=ASSIST#<member>
- a member's assists in a campaign on a local day (the per-assister cap): GetItem
  pk=M#<member>, sk=ASSISTS#<campaign>#<yyyy-mm-dd>
- one device's or phone's assists in a campaign on a local day (the farming guard): GetItem
  pk=ASSISTDEV#<campaign>#<device|phone>#<value>, sk=<yyyy-mm-dd>
- a quiz: GetItem pk=QUIZ#<quiz_id>, sk=QUIZ; a campaign's quizzes, newest first: Query gsi1
  gsi1pk=QUIZZES#<campaign>
- one attempt per member per quiz: GetItem pk=QUIZ#<quiz_id>, sk=ATTEMPT#<member>
"""
from __future__ import annotations

from pynamodb.attributes import BooleanAttribute, NumberAttribute, UnicodeAttribute

from ..members.models import member_pk
from ..store.base import MainItem

DAY_COUNTER_DAYS = 3  # day counters are needed on their day only; TTL removes them after this


class CheckIn(MainItem, discriminator="checkin"):
    member_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    campaign_version = NumberAttribute()
    day = UnicodeAttribute()
    streak = NumberAttribute()
    at = UnicodeAttribute()
    tap_id = UnicodeAttribute(null=True)  # the call that wrote it: a retry whose answer was lost knows its own

    @classmethod
    def key(cls, member_id: str, campaign_id: str, day: str) -> tuple[str, str]:
        return member_pk(member_id), f"CHECKIN#{campaign_id}#{day}"


class Share(MainItem, discriminator="share"):
    share_id = UnicodeAttribute()
    sharer_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    campaign_version = NumberAttribute()
    code = UnicodeAttribute()  # the sharer's referral code: friends who join through the share bind to them
    channel = UnicodeAttribute()
    content_id = UnicodeAttribute(null=True)
    target = NumberAttribute()
    assists = NumberAttribute(default=0)
    created_at = UnicodeAttribute()

    @classmethod
    def key(cls, share_id: str) -> tuple[str, str]:
        return f"SHARE#{share_id}", "SHARE"

    @property
    def completed(self) -> bool:
        return int(self.assists) >= int(self.target)


class Assist(MainItem, discriminator="assist"):
    share_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    at = UnicodeAttribute()

    @classmethod
    def key(cls, share_id: str, member_id: str) -> tuple[str, str]:
        return f"SHARE#{share_id}", f"ASSIST#{member_id}"


class AssisterDay(MainItem, discriminator="assister_day"):
    assists = NumberAttribute(default=0)

    @classmethod
    def key(cls, member_id: str, campaign_id: str, day: str) -> tuple[str, str]:
        return member_pk(member_id), f"ASSISTS#{campaign_id}#{day}"


class DeviceDay(MainItem, discriminator="assist_device_day"):
    """Assists from one device or phone hash on one day; the stream raises a fraud flag on the
    member whose assist reaches `limit` (written with the assist, in its transaction)."""

    assists = NumberAttribute(default=0)
    limit = NumberAttribute(null=True)
    kind = UnicodeAttribute(null=True)  # device | phone
    campaign_id = UnicodeAttribute(null=True)
    last_member_id = UnicodeAttribute(null=True)
    last_share_id = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, campaign_id: str, kind: str, value: str, day: str) -> tuple[str, str]:
        return f"ASSISTDEV#{campaign_id}#{kind}#{value}", day


class Quiz(MainItem, discriminator="quiz"):
    quiz_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    title = UnicodeAttribute()
    questions = UnicodeAttribute()  # JSON: [{text, options, answer}], answers never leave for members
    points = NumberAttribute()
    pass_mark = NumberAttribute(null=True)  # right answers needed (None: all)
    starts_at = UnicodeAttribute()
    ends_at = UnicodeAttribute()
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute()

    @classmethod
    def key(cls, quiz_id: str) -> tuple[str, str]:
        return f"QUIZ#{quiz_id}", "QUIZ"


class QuizAttempt(MainItem, discriminator="quiz_attempt"):
    quiz_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    campaign_version = NumberAttribute()
    answers = UnicodeAttribute()  # JSON list of option indexes
    right = NumberAttribute()
    total = NumberAttribute()
    passed = BooleanAttribute()
    points = NumberAttribute()  # what the attempt earns (the quiz's points when passed)
    at = UnicodeAttribute()
    attempt_id = UnicodeAttribute(null=True)  # the call that wrote it: a retry whose answer was lost knows its own

    @classmethod
    def key(cls, quiz_id: str, member_id: str) -> tuple[str, str]:
        return f"QUIZ#{quiz_id}", f"ATTEMPT#{member_id}"
