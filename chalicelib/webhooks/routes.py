"""Webhooks (admin): API.md "Outbound events". Thin: validate, one domain call, shape the answer."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from chalice import Response
from pydantic import Field, StringConstraints

from ..core.auth import ADMIN
from ..core.http import Reply, Req, Routes
from ..core.pagination import PageQuery
from ..core.validation import Body
from . import delivery_log, subscriptions
from .events import TYPES

routes = Routes(__name__)

EventType = Literal[TYPES]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2000,
                                       pattern=r"^https?://[^\s]+$")]


class WebhookIn(Body):
    url: Url = Field(description="where deliveries are POSTed; outside the local stage an https URL on a public host")
    events: list[EventType] = Field(min_length=1, max_length=len(TYPES), description="a type named twice counts once")
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""


class DeliveriesQuery(PageQuery):
    status: Literal["pending", "delivered", "dead"] | None = None


@routes.post("/v1/ops/webhooks", roles=(ADMIN,), body=WebhookIn, status=201,
             summary="Subscribe a URL to event types; the signing secret is in this answer only; audited")
def create(req: Req) -> Any:
    body: WebhookIn = req.body
    return Reply(subscriptions.create(body.url, list(body.events), body.description, req.principal.sub), 201)


@routes.get("/v1/ops/webhooks", roles=(ADMIN,), summary="Every webhook subscription (without secrets)")
def list_webhooks(req: Req) -> Any:
    return subscriptions.list_all()


@routes.delete("/v1/ops/webhooks/{webhook_id}", roles=(ADMIN,), status=204,
               summary="Remove a subscription: nothing more is sent to it; audited")
def delete(req: Req) -> Any:
    subscriptions.delete(req.params["webhook_id"], req.principal.sub)
    return Response(body="", status_code=204)


@routes.get("/v1/ops/webhooks/{webhook_id}/deliveries", roles=(ADMIN,), query=DeliveriesQuery,
            summary="The delivery log, newest event first (`status` filters)")
def deliveries(req: Req) -> Any:
    return delivery_log.list_for(req.params["webhook_id"], req.query, req.query.status)


@routes.post("/v1/ops/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", roles=(ADMIN,),
             summary="Re-drive a dead delivery: due now, with a fresh retry window; audited")
def retry(req: Req) -> Any:
    return delivery_log.redrive(req.params["webhook_id"], req.params["delivery_id"], req.principal.sub)
