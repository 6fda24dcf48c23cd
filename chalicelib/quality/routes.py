"""Quality of referred members (API.md "Insight (additions)"), for ops. Thin: validate, read, shape."""
from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from ..campaigns import service as campaigns
from ..core import clock
from ..core.auth import OPS
from ..core.errors import Unprocessable
from ..core.http import Req, Routes
from ..core.validation import Query
from ..i18n import t
from . import report, rules

routes = Routes(__name__)

DEFAULT_DAYS = 90
MAX_DAYS = 366


def _real_day(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError("date_invalid", "not a calendar day (YYYY-MM-DD)") from None
    return text


DAY_SHAPE = r"^20\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
# A calendar day the document can state: the shape, and `format: date` for 2027-02-30.
Day = Annotated[str, StringConstraints(pattern=DAY_SHAPE), AfterValidator(_real_day),
                WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_SHAPE})]


class QualityQuery(Query):
    start: Day | None = Field(None, alias="from",
                              description="first cohort day, campaign time zone (default: 89 days before `to`)")
    end: Day | None = Field(None, alias="to", description="last cohort day, inclusive (default: today)")
    top: int = Field(10, ge=1, le=50, description="how many top advocates (by all-time referrals) to show")


def _range(q: QualityQuery, zone: str) -> tuple[str, str]:
    """The cohort days asked for; defaults: `to` today, `from` 89 days before `to`."""
    today = clock.now().astimezone(ZoneInfo(zone)).date()
    end = date.fromisoformat(q.end) if q.end else today
    start = date.fromisoformat(q.start) if q.start else end - timedelta(days=DEFAULT_DAYS - 1)
    if not 0 <= (end - start).days < MAX_DAYS:
        raise Unprocessable(t("`from` must not be after `to`, and the range must be at most {max_days} days",
                              max_days=MAX_DAYS),
                            code="invalid_range", details={"from": start.isoformat(), "to": end.isoformat()})
    return start.isoformat(), end.isoformat()


@routes.get("/v1/analytics/campaigns/{campaign_id}/quality", roles=(OPS,), query=QualityQuery,
            summary="Quality of referred members by first-purchase cohort: repeat purchases within 30 and 90 days, "
                    "refunds, by channel and for the top advocates")
def quality(req: Req) -> Any:
    q: QualityQuery = req.query
    campaign_id = req.params["campaign_id"]
    campaigns.current_or_404(campaign_id)
    zone = campaigns.zone_of(campaign_id)
    start, end = _range(q, zone)
    now = clock.now()
    return {"campaign_id": campaign_id, "from": start, "to": end, "time_zone": zone, "as_of": clock.iso(now),
            "definitions": {"cohort": "referees whose first purchase (the converting order) fell on these days",
                            "repeat": "another order, not fully refunded, within 30 / 90 days of the first; "
                                      "eligible: referees whose window has closed",
                            "refunds": f"refunded ÷ GMV over each referee's orders in the {rules.WINDOW_DAYS} "
                                       "days from the first purchase (it included), as of now",
                            "top_advocates": report.TOP_BASIS},
            **report.cohort(campaign_id, start, end, now, zone),
            "top_advocates": report.top_advocates(campaign_id, start, end, q.top, now, zone)}
