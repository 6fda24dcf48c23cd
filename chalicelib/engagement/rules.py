"""Pure engagement rules: the campaign's local day, check-in streaks and points, what an
assist or a quiz attempt earns. No I/O (the services read and write)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ..campaigns.rules import Rules
from ..rewards.rules import Award


def local_day(moment: datetime, time_zone: str) -> str:
    """The calendar day in the campaign's zone: a day is that zone's day, not UTC's.

    >>> from datetime import timezone
    >>> local_day(datetime(2026, 11, 23, 16, 30, tzinfo=timezone.utc), "Asia/Shanghai")
    '2026-11-24'
    """
    return moment.astimezone(ZoneInfo(time_zone)).date().isoformat()


def day_before(day: str) -> str:
    """>>> day_before("2026-03-01")
    '2026-02-28'
    """
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()


def streak_after(previous_streak: int | None) -> int:
    """The streak of today's check-in, given yesterday's (None: no check-in yesterday, so a
    missed day starts again at 1).

    >>> streak_after(None), streak_after(6)
    (1, 7)
    """
    return (previous_streak or 0) + 1


@dataclass(frozen=True)
class CheckinPay:
    points: int  # every day's points
    bonus: int  # the streak bonus of the day the streak reaches a rule's length (0 otherwise)

    @property
    def total(self) -> int:
        return self.points + self.bonus


def checkin_pay(rules: Rules, streak: int) -> CheckinPay:
    """What a check-in earns on the `streak`-th day in a row: `checkin_points`, plus the bonus of
    `checkin_streak_bonus` whose length the streak reaches that day (once per streak).

    >>> from ..campaigns.rules import default_campaign
    >>> [checkin_pay(default_campaign().rules, s).total for s in (1, 6, 7, 8, 30)]
    [10, 10, 60, 10, 310]
    """
    return CheckinPay(rules.checkin_points, rules.checkin_streak_bonus.get(str(streak), 0))


def checkin_awards(rules: Rules, member_id: str, campaign_id: str, day: str, streak: int) -> list[Award]:
    pay = checkin_pay(rules, streak)
    source = f"{campaign_id}.{day}"
    awards = []
    if pay.points:
        awards.append(Award(member_id, "checkin", source, pay.points, "daily check-in"))
    if pay.bonus:
        awards.append(Award(member_id, "checkin_streak", source, pay.bonus, f"check-in streak: {streak} days"))
    return awards


def share_goal_award(rules: Rules, sharer_id: str, share_id: str, target: int) -> Award | None:
    """The sharer's gift for a share whose assists reached the target (paid once: one entry id)."""
    if not rules.assist_reward_points:
        return None
    return Award(sharer_id, "share_goal", share_id, rules.assist_reward_points,
                 f"{target} friends assisted your share")


def share_refusal(sharer_id: str, assister_id: str, assister_joined: str, share_opened: str,
                  new_members_only: bool) -> str | None:
    """Why a member may not assist a share, or None. Times are stored UTC text (sortable).

    >>> share_refusal("a", "a", "2026", "2026", False)
    'own_share'
    >>> share_refusal("a", "b", "2026-01-01", "2026-02-01", True)
    'not_a_new_member'
    """
    if sharer_id == assister_id:
        return "own_share"
    if new_members_only and assister_joined < share_opened:
        return "not_a_new_member"
    return None


def grade(answers: list[int], solutions: list[int], pass_mark: int | None) -> tuple[int, bool]:
    """(right answers, passed): passed when at least `pass_mark` are right (None: all of them).

    >>> grade([1, 0, 2], [1, 0, 3], None), grade([1, 0, 2], [1, 0, 3], 2)
    ((2, False), (2, True))
    """
    right = sum(1 for given, solution in zip(answers, solutions) if given == solution)
    return right, right >= (len(solutions) if pass_mark is None else pass_mark)
