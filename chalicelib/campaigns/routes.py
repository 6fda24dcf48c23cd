"""Campaign configuration (ops)."""
from __future__ import annotations

from typing import Any

from ..core.auth import OPS
from ..core.http import Req, Routes
from ..core.pagination import PageQuery
from . import service
from .rules import CampaignIn

routes = Routes(__name__)


@routes.post("/v1/campaigns", roles=(OPS,), body=CampaignIn, summary="Create a campaign")
def create(req: Req) -> Any:
    return service.render(service.create(req.body, req.principal.sub))


@routes.get("/v1/campaigns", roles=(OPS,), query=PageQuery, summary="List campaigns")
def list_all(req: Req) -> Any:
    return service.list_campaigns(req.query)


@routes.get("/v1/campaigns/{campaign_id}", roles=(OPS,), summary="A campaign and its current rules")
def read(req: Req) -> Any:
    return service.render(service.get(req.params["campaign_id"]))


@routes.put("/v1/campaigns/{campaign_id}", roles=(OPS,), body=CampaignIn,
            summary="Change a campaign (a new version; bound referrals keep theirs)")
def change(req: Req) -> Any:
    return service.render(service.update(req.params["campaign_id"], req.body, req.principal.sub))
