"""Ops review of fraud flags."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ..core.auth import OPS
from ..core.http import Req, Routes
from ..core.pagination import PageQuery
from ..core.validation import Body
from . import service

routes = Routes(__name__)


class FlagQuery(PageQuery):
    status: Literal["open", "approved", "rejected"] = "open"


class ResolveIn(Body):
    action: Literal["approve", "reject"]
    note: str | None = Field(None, max_length=500)


@routes.get("/v1/ops/fraud-flags", roles=(OPS,), query=FlagQuery, summary="Fraud flags by status")
def list_flags(req: Req) -> Any:
    return service.list_flags(req.query.status, req.query)


@routes.post("/v1/ops/fraud-flags/{flag_id}/resolve", roles=(OPS,), body=ResolveIn,
             summary="Approve (release held rewards) or reject (void) a flagged referral")
def resolve(req: Req) -> Any:
    return service.resolve(req.params["flag_id"], req.body.action, req.principal.sub)
