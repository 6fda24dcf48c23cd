"""Program rules: a validated, pure description of the member program (tiers, stages,
own-purchase points, moments and the contact policy). Money in fen, durations in days.

A change makes a new version that takes effect a minute later; a fact is judged by the version
in force when it happened (`service.rules_at`).
"""
from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from ..core.validation import Instant, TimeZone

Days = Annotated[int, Field(strict=True, ge=0, le=3650)]
Pts = Annotated[int, Field(strict=True, ge=0, le=10_000_000)]
Fen = Annotated[int, Field(strict=True, ge=0, le=10_000_000_00)]
TierName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use (cold start: core/validation.py)


class Tier(Strict):
    name: TierName
    min_points_12m: Pts | None = None  # either threshold qualifies; none: the base tier
    min_spend_fen_12m: Fen | None = None
    points_per_yuan: int = Field(1, strict=True, ge=0, le=100)
    perks: list[Annotated[str, StringConstraints(min_length=1, max_length=80)]] = Field(default_factory=list,
                                                                                       max_length=20)

    def qualifies(self, points_12m: int, spend_fen_12m: int) -> bool:
        if self.min_points_12m is None and self.min_spend_fen_12m is None:
            return True
        return ((self.min_points_12m is not None and points_12m >= self.min_points_12m)
                or (self.min_spend_fen_12m is not None and spend_fen_12m >= self.min_spend_fen_12m))


class Stages(Strict):
    active_days: Days = 30  # how long `reactivated` lasts after the purchase that ended a churn
    loyal_orders: int = Field(3, strict=True, ge=1, le=1000)
    advocate_conversions: int = Field(1, strict=True, ge=1, le=100_000)
    at_risk_days: Days = 60  # days without a purchase
    churned_days: Days = 120

    @model_validator(mode="after")
    def _ordered(self) -> "Stages":
        if not 0 < self.at_risk_days < self.churned_days:
            raise PydanticCustomError("not_ascending", "stages need 0 < at_risk_days < churned_days")
        return self


class DoublePoints(Strict):
    starts_at: Instant
    ends_at: Instant
    multiplier: int = Field(2, strict=True, ge=1, le=10)

    @model_validator(mode="after")
    def _ordered(self) -> "DoublePoints":
        if self.ends_at <= self.starts_at:
            raise PydanticCustomError("not_ascending", "a double-points period must end after it starts")
        return self


class QuietHours(Strict):
    start: ClockTime = "22:00"
    end: ClockTime = "08:00"


class ContactPolicy(Strict):
    max_messages_per_7d: int = Field(3, strict=True, ge=0, le=100)
    quiet_hours: QuietHours | None = Field(default_factory=QuietHours)


def _tiers_in_the_document(schema: dict) -> None:
    """What `_tiers_ascending` checks item by item, stated in the document (JSON Schema 2020-12):
    the first tier is the base (no threshold, or 0), every later one names a threshold."""
    tier = schema["items"]
    no_threshold = {"enum": [0, None]}
    schema["prefixItems"] = [{"allOf": [tier, {"properties": {"min_points_12m": no_threshold,
                                                              "min_spend_fen_12m": no_threshold}}]}]
    schema["items"] = {"allOf": [tier, {"anyOf": [
        {"required": [name], "properties": {name: {"type": "integer"}}}
        for name in ("min_points_12m", "min_spend_fen_12m")]}]}


class ProgramRules(Strict):
    time_zone: TimeZone = "Asia/Shanghai"
    tiers: list[Tier] = Field(min_length=1, max_length=10, json_schema_extra=_tiers_in_the_document)
    review: Literal["monthly", "quarterly", "yearly"] = "quarterly"
    grace_days: Days = 30
    stages: Stages = Field(default_factory=Stages)
    return_window_days: Days = 7  # own-purchase points stay pending this long
    double_points: list[DoublePoints] = Field(default_factory=list, max_length=50)
    points_expire_days: int = Field(365, strict=True, ge=1, le=3650)
    points_expiring_notice_days: Days = 30
    second_purchase_nudge_days: int = Field(14, strict=True, ge=1, le=365)
    win_back_coupon_fen: Fen = 0
    win_back_budget_fen: Fen | None = None
    birthday_points: Pts = 0
    contact_policy: ContactPolicy = Field(default_factory=ContactPolicy)

    @model_validator(mode="after")
    def _notice_before_expiry(self) -> "ProgramRules":
        if self.points_expiring_notice_days >= self.points_expire_days:
            raise PydanticCustomError("not_ascending", "points_expiring_notice_days must be shorter than "
                                      "points_expire_days (the notice comes before the points can expire)")
        return self

    @model_validator(mode="after")
    def _tiers_ascending(self) -> "ProgramRules":
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise PydanticCustomError("duplicate", "tier names must be unique")
        base, *upper = self.tiers
        if base.min_points_12m or base.min_spend_fen_12m:
            raise PydanticCustomError("base_tier", "the first tier is the base tier: it has no threshold")
        for tier in upper:
            if tier.min_points_12m is None and tier.min_spend_fen_12m is None:
                raise PydanticCustomError("tier_threshold", f"tier {tier.name!r} needs min_points_12m or "
                                          "min_spend_fen_12m")
        for field in ("min_points_12m", "min_spend_fen_12m"):
            steps = [getattr(tier, field) for tier in upper if getattr(tier, field) is not None]
            if steps != sorted(set(steps)):
                raise PydanticCustomError("not_ascending", f"tiers must rise strictly in {field}")
        return self

    # -- pure helpers -------------------------------------------------------------------------

    @property
    def base_tier(self) -> Tier:
        return self.tiers[0]

    def rank(self, name: str | None) -> int:
        """A tier's place (0: base); a name no longer in the program counts as the base."""
        for position, tier in enumerate(self.tiers):
            if tier.name == name:
                return position
        return 0

    def tier(self, name: str | None) -> Tier:
        return self.tiers[self.rank(name)]

    def qualified(self, points_12m: int, spend_fen_12m: int) -> Tier:
        best = self.base_tier
        for tier in self.tiers[1:]:
            if tier.qualifies(points_12m, spend_fen_12m):
                best = tier
        return best

    def multiplier_at(self, at: str) -> int:
        return max([p.multiplier for p in self.double_points if p.starts_at <= at < p.ends_at], default=1)

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone())


@cache  # built on first use: validating it builds every program validator, which import should not pay
def default_program() -> ProgramRules:
    return ProgramRules(
        tiers=[Tier(name="bronze", points_per_yuan=1, perks=["积分 1 倍 / 1 point per yuan"]),
               Tier(name="silver", min_points_12m=2000, min_spend_fen_12m=2000_00, points_per_yuan=2,
                    perks=["积分 2 倍 / double points", "生日礼 / birthday gift"]),
               Tier(name="gold", min_points_12m=8000, min_spend_fen_12m=8000_00, points_per_yuan=3,
                    perks=["积分 3 倍 / triple points", "专属客服 / priority service"])],
        birthday_points=200, win_back_coupon_fen=20_00,
    )
