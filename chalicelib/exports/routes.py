"""`GET /v1/ops/exports/{kind}.csv` (ops): one page of an export as a complete CSV file.

API Gateway path parameters are whole segments, so the route takes the file name and looks the
kind up (`leaderboard.csv`, `funnel.csv`, `ledger.csv`). A page holds at most `limit` rows
(PAGE_ROWS by default); a next page is named by `X-Next-Cursor` and by a `Link: rel="next"`
URL carrying the same query with the cursor. Days are the campaign's, in its time zone.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from chalice import Response
from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from ..campaigns import service as campaigns
from ..referrals.links import CHANNELS
from ..core import clock
from ..core.auth import OPS
from ..core.errors import NotFound, Unprocessable
from ..core.http import Req, Routes
from ..core.pagination import decode_cursor, encode_cursor
from ..core.validation import Id, Query
from ..i18n import t
from ..leaderboards import rules as boards
from ..referrals.clicks import local_day
from . import csvfile
from .kinds import KINDS, Export, Kind

routes = Routes(__name__)

PAGE_ROWS = 5000
DEFAULT_DAYS, MAX_DAYS = 30, 366
DAY_PATTERN = r"^20\d{2}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"


def _real_day(text: str) -> str:
    try:
        date.fromisoformat(text)
    except ValueError:
        raise PydanticCustomError("date_invalid", "not a real calendar day (YYYY-MM-DD)") from None
    return text


Day = Annotated[str, StringConstraints(pattern=DAY_PATTERN), AfterValidator(_real_day)]
Period = Annotated[str, StringConstraints(pattern=boards.PERIOD.pattern)]


class ExportQuery(Query):
    campaign_id: Id = "default"
    from_: Day | None = Field(None, alias="from", description="first day, in the campaign's time zone "
                                                              f"(default: {DEFAULT_DAYS} days before `to`)")
    to: Day | None = Field(None, description="last day, inclusive (default: today)")
    limit: int = Field(PAGE_ROWS, ge=1, le=PAGE_ROWS, description="rows per page")
    cursor: str | None = Field(None, max_length=2048)
    metric: Literal[boards.METRICS] = Field("referrals", description="leaderboard only")
    period: Period = Field("all", description="leaderboard only: all, 2026-11 or 2026-W48")
    channel: Literal[CHANNELS + ("code",)] | None = Field(None, description="funnel only: one channel")


HEADERS = {"Content-Disposition": 'attachment; filename="<kind>-<campaign>-<from>-<to>.csv"',
           "X-Next-Cursor": "the cursor of the next page (absent on the last page)",
           "Link": '<…&cursor=…>; rel="next": the next page (absent on the last page)'}


@routes.get("/v1/ops/exports/{file}", roles=(OPS,), query=ExportQuery, produces="text/csv", headers=HEADERS,
            summary="CSV export (UTF-8 with BOM, opens in Excel): leaderboard.csv, funnel.csv (by day and "
                    "channel) or ledger.csv, a page of at most `limit` rows; the next page is in `Link`")
def export(req: Req) -> Any:
    name, kind = _kind(req.params["file"])
    q: ExportQuery = req.query
    e = _export(q)
    scope = f"export|{name}|{e.campaign_id}|{e.first_day}|{e.last_day}|{e.metric}|{e.period}|{e.channel}|{req.member_id}"
    after = decode_cursor(q.cursor, scope)
    number = int(after.pop("page", 1)) if after else 1
    page = csvfile.page(kind.columns, kind.rows(e, after), q.limit, kind.decorate)
    stem = kind.stem(e) + (f"-part{number}" if number > 1 else "")
    headers = {"Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
               "Content-Disposition": f'attachment; filename="{stem}.csv"'}
    if page.after is not None:
        cursor = encode_cursor({**page.after, "page": number + 1}, scope)
        headers["X-Next-Cursor"] = cursor
        headers["Link"] = f'<{_next_url(req.params["file"], e, kind, q.limit, cursor)}>; rel="next"'
    return Response(body=page.body, status_code=200, headers=headers)


def _kind(file: str) -> tuple[str, Kind]:
    name = file[:-len(".csv")] if file.endswith(".csv") else ""
    kind = KINDS.get(name)
    if kind is None:
        raise NotFound(t("no export named {file!r}", file=file), code="export_not_found",
                       details={"exports": [f"{known}.csv" for known in KINDS]})
    return name, kind


def _export(q: ExportQuery) -> Export:
    campaign = campaigns.current_or_404(q.campaign_id)
    zone = campaigns.zone_of(campaign.campaign_id)
    last = date.fromisoformat(q.to) if q.to else date.fromisoformat(local_day(clock.now(), zone))
    first = date.fromisoformat(q.from_) if q.from_ else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last or (last - first).days >= MAX_DAYS:
        raise Unprocessable(t("`from` must be on or before `to`, at most {max_days} days apart", max_days=MAX_DAYS),
                            code="invalid_date_range", details={"from": first.isoformat(), "to": last.isoformat()})
    return Export(campaign.campaign_id, first, last, zone, q.metric, q.period, q.channel)


def _next_url(file: str, e: Export, kind: Kind, limit: int, cursor: str) -> str:
    """Relative to the request's own URL (so it keeps any stage prefix): the same file, the
    resolved days (a default `to` must not move to the next day between pages), the cursor."""
    params = {"campaign_id": e.campaign_id, "from": e.first_day.isoformat(), "to": e.last_day.isoformat(),
              **{option: getattr(e, option) for option in kind.options if getattr(e, option) is not None},
              "limit": limit, "cursor": cursor}
    return f"{file}?{urlencode(params)}"
