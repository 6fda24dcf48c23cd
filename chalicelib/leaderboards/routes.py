"""Leaderboards (API.md "Campaigns and ops"): ops see names, members masked names and their
own rank. Thin: validate, read, shape."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from ..campaigns import service as campaigns
from ..core.auth import MEMBER, OPS
from ..core.http import Req, Routes
from ..core.validation import Query
from . import ranking, rules

routes = Routes(__name__)

Period = Annotated[str, StringConstraints(pattern=rules.PERIOD.pattern)]


class BoardQuery(Query):
    metric: Literal[rules.METRICS] = "referrals"
    period: Period = Field("all", description="all, a month (2026-11) or an ISO week (2026-W48), campaign time zone")
    limit: int = Field(20, ge=1, le=100)


class MyRankQuery(Query):
    metric: Literal[rules.METRICS] = "referrals"
    period: Period = "all"


def _board(campaign_id: str, metric: str, period: str) -> str:
    campaigns.current_or_404(campaign_id)
    return rules.board(campaign_id, metric, period)


@routes.get("/v1/leaderboards/{campaign_id}", roles=(OPS, MEMBER), query=BoardQuery,
            summary="A campaign's top advocates by referrals, referred GMV or points, in a period")
def board(req: Req) -> Any:
    q: BoardQuery = req.query
    b = _board(req.params["campaign_id"], q.metric, q.period)
    rows = ranking.with_names(ranking.top(b, q.limit), masked=not req.principal.acts_as(OPS))
    return {"campaign_id": req.params["campaign_id"], "metric": q.metric, "period": q.period, "items": rows,
            "next_cursor": None}


@routes.get("/v1/leaderboards/{campaign_id}/me", roles=(MEMBER,), query=MyRankQuery,
            summary="The caller's rank and score (exact within the top thousand, else estimated with its error)")
def my_rank(req: Req) -> Any:
    q: MyRankQuery = req.query
    b = _board(req.params["campaign_id"], q.metric, q.period)
    return {"campaign_id": req.params["campaign_id"], "metric": q.metric, "period": q.period,
            **ranking.rank_of(b, req.member_id)}
