"""Facts from the brand's backend (service role): sign-ups, purchases, refunds."""
from __future__ import annotations

from typing import Any

from ..core import clock
from ..core.auth import SERVICE
from ..core.http import Req, Routes
from ..members import service as members
from ..members.schemas import SignupIn
from . import service
from .schemas import PurchaseIn, RefundIn

routes = Routes(__name__)


@routes.post("/v1/events/signups", roles=(SERVICE,), body=SignupIn,
             summary="A sign-up made outside the mini-program (POS, web); binds the referral")
def signup(req: Req) -> Any:
    body: SignupIn = req.body
    at = clock.iso(clock.parse(body.occurred_at)) if body.occurred_at else None
    result = members.find_or_create("backend", body.member_id, display_name=body.display_name,
                                    device_id=body.device_id, member_id=body.member_id, source="backend", at=at,
                                    referral=body.referral, phone_hash=body.phone_hash)
    return {"member": members.public_member(result.member), "created": result.created,
            "attribution": result.attribution}


@routes.post("/v1/events/purchases", roles=(SERVICE,), body=PurchaseIn,
             summary="A purchase (idempotent on order_id)")
def purchase(req: Req) -> Any:
    return service.record_purchase(req.body)


@routes.post("/v1/events/refunds", roles=(SERVICE,), body=RefundIn,
             summary="A full or partial refund (idempotent on refund_id)")
def refund(req: Req) -> Any:
    return service.record_refund(req.body)
