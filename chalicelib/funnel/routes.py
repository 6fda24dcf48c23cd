"""The campaign funnel (API.md "Campaigns and ops"): ops and admins. Thin: validate, read, shape."""
from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError

from ..campaigns import service as campaigns
from ..core import clock
from ..core.auth import OPS
from ..core.http import Req, Routes, parse_model
from ..core.validation import Query
from ..referrals.links import CHANNELS
from . import report, rules

routes = Routes(__name__)

_DAY_SHAPE = r"^20\d{2}-\d{2}-\d{2}$"


def _real_day(text: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise PydanticCustomError("date_invalid", "not a valid day (YYYY-MM-DD)") from None


Day = Annotated[str, StringConstraints(pattern=_DAY_SHAPE), AfterValidator(_real_day),
                WithJsonSchema({"type": "string", "format": "date", "pattern": _DAY_SHAPE})]


class FunnelQuery(Query):
    from_day: Day | None = Field(None, alias="from", description="first day, YYYY-MM-DD in the campaign's time "
                                                                 "zone; default: 29 days before `to`")
    to_day: Day | None = Field(None, alias="to", description="last day (inclusive); default: today")
    channel: Literal[CHANNELS + ("code",)] | None = Field(None, description="one channel; default: all")

    @model_validator(mode="after")
    def _range(self) -> "FunnelQuery":
        if self.from_day and self.to_day:
            if self.to_day < self.from_day:
                raise PydanticCustomError("ends_before_start", "`to` must not be before `from`")
            if len(rules.days(self.from_day, self.to_day)) > rules.MAX_DAYS:
                raise PydanticCustomError("range_too_long", f"at most {rules.MAX_DAYS} days at a time")
        return self


@routes.get("/v1/analytics/campaigns/{campaign_id}/funnel", roles=(OPS,), query=FunnelQuery,
            summary="A campaign's funnel by day and channel: clicks, visitors, sign-ups, first purchases, GMV, "
                    "reward cost, K-factor")
def funnel(req: Req) -> Any:
    q: FunnelQuery = req.query
    campaign_id = req.params["campaign_id"]
    campaigns.current_or_404(campaign_id)
    to_day = q.to_day or rules.today(campaigns.zone_of(campaign_id), clock.now())
    from_day = q.from_day or rules.default_from(to_day)
    parse_model(FunnelQuery, {"from": from_day, "to": to_day}, "query parameters")  # a default beside a given day
    return report.funnel(campaign_id, from_day, to_day, q.channel)
