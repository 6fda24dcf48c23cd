"""Campaign rules: a validated, pure description of what a campaign pays and when.

Money is integer fen; rates are basis points (1 bp = 0.01 %). A change to a campaign makes a
new version; facts are judged by the version in force when they happened.
"""
from __future__ import annotations

from functools import cache
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from ..core.validation import Currency, Instant, TimeZone

Fen = Annotated[int, Field(strict=True, ge=0, le=10_000_000_00)]
Pts = Annotated[int, Field(strict=True, ge=0, le=10_000_000)]
Bps = Annotated[int, Field(strict=True, ge=0, le=10_000)]
Conversions = Annotated[int, Field(strict=True, ge=0, le=1_000_000)]
# scheme, an ASCII host (IDNs in punycode), an optional port 1–65535, then path/query/fragment;
# the same in JSON Schema (ECMA) and pydantic's engine, so spelt without \s
LANDING_URL_SHAPE = (r"^https?://[A-Za-z0-9.-]+"
                     r"(:(6553[0-5]|655[0-2]\d|65[0-4]\d{2}|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3}))?"
                     r"([/?#][!-\[\]-~]*)?$")  # printable ASCII but backslash (percent-encode the rest)
StreakDays = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,2}$")]  # "7": a 7-day streak


def landing_url_problem(url: str, stage: str, own_base_url: str) -> str | None:
    """Why a campaign landing URL is refused (None: fine): https only (http in the local stage),
    a plain URL with a host, and never this service's own host (/r/ would redirect to itself)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return "is not a URL"
    schemes = ("https", "http") if stage == "local" else ("https",)
    if parts.scheme not in schemes:
        return "must be an https URL" + (" (http is allowed in the local stage only)" if stage != "local" else "")
    if not parts.hostname or parts.username or parts.password:
        return "must be a plain URL with a host"
    if points_at_service(url, own_base_url):
        return "must not point at this service itself (a redirect loop)"
    return None


def image_url_problem(url: str, stage: str) -> str | None:
    """Why a share image URL is refused (None: fine): link-preview crawlers want https (http in
    the local stage only) and a plain URL with a host. It may point at this service (a poster)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018
    except ValueError:
        return "is not a URL"
    if parts.scheme not in (("https", "http") if stage == "local" else ("https",)):
        return "must be an https URL"
    if not parts.hostname or parts.username or parts.password:
        return "must be a plain URL with a host"
    return None


def points_at_service(url: str, own_base_url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    return bool(host) and host == (urlsplit(own_base_url).hostname or "").lower()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)  # built on first use (cold start: core/validation.py)


class AdvocateLevel(Strict):
    name: str = Field(min_length=1, max_length=40)
    min_conversions: Conversions
    commission_bps: Bps


class Milestone(Strict):
    conversions: Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
    bonus_points: Pts


class Rules(Strict):
    currency: Currency = "CNY"  # orders, coupons and budgets of the campaign are in this currency's minor unit
    attribution_window_days: int = Field(30, strict=True, ge=1, le=365)
    min_purchase_fen: Fen = 0
    referee_signup_points: Pts = 0
    referee_coupon_fen: Fen = 0
    referrer_conversion_points: Pts = 0
    advocate_levels: list[AdvocateLevel] = Field(default_factory=list, max_length=10)
    milestones: list[Milestone] = Field(default_factory=list, max_length=20, description=(
        "bonuses at an advocate's n-th converted friend, counted across campaigns: set on the "
        "`default` campaign only (elsewhere 422 milestones_program_wide)"))
    second_level_bps: Bps = 0
    monthly_cap_points: Pts | None = None
    budget_points: Pts | None = None
    # Coupons and red packets are money, counted in fen against their own budget. A campaign
    # with a points budget and no money budget issues no money at all (a budget limits both).
    budget_fen: Fen | None = None
    hold_days: int = Field(7, strict=True, ge=0, le=90)
    # Engagement: share-for-gift with assists, daily check-ins (chalicelib/engagement, docs/engagement.md)
    assist_target: int = Field(5, strict=True, ge=1, le=1000)
    assist_reward_points: Pts = 0
    assist_new_members_only: bool = Field(False, strict=True)  # assisters must have joined after the share opened
    assists_per_assister_per_day: int | None = Field(None, strict=True, ge=1, le=1000)  # across shares
    assists_per_device_per_day: int = Field(20, strict=True, ge=1, le=100_000)  # one device or phone; then flagged
    checkin_points: Pts = 0
    checkin_streak_bonus: dict[StreakDays, Pts] = Field(default_factory=dict, max_length=20,
                                                        json_schema_extra={"additionalProperties": False})
    # Member red packets (engagement/red_packets.py): 0 fen = not offered; each reserves its total from budget_fen
    red_packet_total_fen: int = Field(0, strict=True, ge=0, le=100_000_00)
    red_packet_count: int = Field(5, strict=True, ge=1, le=100)
    red_packets_per_member_per_day: int = Field(1, strict=True, ge=1, le=20)
    red_packet_hours: int = Field(24, strict=True, ge=1, le=168)
    signups_per_hour_alert: int = Field(30, strict=True, ge=1, le=100_000)
    time_zone: TimeZone = "Asia/Shanghai"
    # What a shared link shows (chalicelib/share, docs/share-pages.md): `redirect` sends people on
    # to landing_url (302); `hosted` answers with the service's own mobile landing page.
    landing_page: Literal["redirect", "hosted"] = "redirect"
    share_image_url: str | None = Field(None, pattern=LANDING_URL_SHAPE, max_length=500)  # https; the card's image
    # Share posters (docs/posters.md): the campaign's own background image; None draws the default
    poster_background_url: str | None = Field(None, pattern=LANDING_URL_SHAPE, max_length=500)

    @model_validator(mode="after")
    def _levels_ordered(self) -> "Rules":
        thresholds = [level.min_conversions for level in self.advocate_levels]
        if thresholds and (thresholds[0] != 0 or thresholds != sorted(set(thresholds))):
            raise PydanticCustomError("not_ascending", "advocate_levels must start at 0 conversions and rise strictly")
        if self.red_packet_total_fen and self.red_packet_total_fen < self.red_packet_count:
            raise PydanticCustomError("total_below_count", "red_packet_total_fen must be at least red_packet_count "
                                      "(every share is at least 1 fen)")
        steps = [milestone.conversions for milestone in self.milestones]
        if steps != sorted(set(steps)):
            raise PydanticCustomError("not_ascending", "milestones must rise strictly in conversions")
        return self

    @property
    def money_budget_fen(self) -> int | None:
        if self.budget_fen is None and self.budget_points is not None:
            return 0
        return self.budget_fen

    def level_for(self, conversions: int) -> AdvocateLevel | None:
        current = None
        for level in self.advocate_levels:
            if conversions >= level.min_conversions:
                current = level
        return current


class CampaignIn(Strict):
    campaign_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,39}$")
    name: str = Field(min_length=1, max_length=80)
    offer: str = Field("", max_length=200)
    # The offer in other languages (docs/i18n.md): share texts and the code lookup use the caller's
    # language's text when there is one, else `offer` as written.
    offer_i18n: dict[Literal["zh-CN", "en"], Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict, description='the offer per language, e.g. {"en": "¥20 off your first order"}')
    landing_url: str = Field(pattern=LANDING_URL_SHAPE, max_length=500)
    starts_at: Instant | None = None
    ends_at: Instant | None = None
    status: Literal["active", "paused", "ended"] = "active"
    rules: Rules = Field(default_factory=Rules)

    @model_validator(mode="after")
    def _ends_after_start(self) -> "CampaignIn":
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:  # both stored UTC text
            raise PydanticCustomError("ends_before_start", "ends_at must be after starts_at")
        return self


@cache  # built on first use: validating it builds every rules validator, which import should not pay
def default_campaign() -> CampaignIn:
    return CampaignIn(
        campaign_id="default",
        name="Invite friends",
        offer="¥20 off your first order",
        landing_url="https://shop.example.com/welcome",
        rules=Rules(
            attribution_window_days=30,
            min_purchase_fen=50_00,
            referee_signup_points=100,
            referee_coupon_fen=20_00,
            referrer_conversion_points=500,
            advocate_levels=[
                AdvocateLevel(name="friend", min_conversions=0, commission_bps=300),
                AdvocateLevel(name="advocate", min_conversions=5, commission_bps=500),
                AdvocateLevel(name="ambassador", min_conversions=20, commission_bps=800),
            ],
            milestones=[Milestone(conversions=3, bonus_points=300), Milestone(conversions=10, bonus_points=1500),
                        Milestone(conversions=25, bonus_points=5000)],
            second_level_bps=100,
            monthly_cap_points=50_000,
            budget_points=10_000_000,
            budget_fen=2_000_000_00,
            hold_days=7,
            assist_target=5,
            assist_reward_points=200,
            checkin_points=10,
            checkin_streak_bonus={"7": 50, "30": 300},
            signups_per_hour_alert=30,
        ),
    )
