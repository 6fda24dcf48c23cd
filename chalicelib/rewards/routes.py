"""Ledger, redemptions, ops adjustments and the audit log."""
from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from ..core.auth import ADMIN, MEMBER
from ..core.http import Req, Routes
from ..core.pagination import PageQuery
from ..core.validation import Body, Id, ShortText
from ..engagement import catalogue
from ..insight import audit
from ..members import service as members
from . import ledger

routes = Routes(__name__)


def _no_default(schema: dict) -> None:
    schema.pop("default", None)


class RedemptionIn(Body):
    """Either a catalogue item (`item_id`: its points and one unit of its stock) or a free-form
    redemption (`points` for `item`, which the brand fulfils itself)."""
    # The document states the two forms that `_one_form` enforces.
    model_config = ConfigDict(**Body.model_config, json_schema_extra={"oneOf": [
        {"required": ["item_id"], "not": {"anyOf": [{"required": ["points"]}, {"required": ["item"]}]}},
        {"required": ["points", "item"], "not": {"required": ["item_id"]}},
    ]})
    # Optional but never null: absent fields keep a default the validator never lets through
    # (it judges by which fields were sent), and the document shows neither null nor a default.
    item_id: Id = Field("", json_schema_extra=_no_default)
    points: int = Field(0, strict=True, gt=0, le=10_000_000, json_schema_extra=_no_default)
    item: ShortText = Field("", json_schema_extra=_no_default)

    @model_validator(mode="after")
    def _one_form(self) -> "RedemptionIn":
        sent = self.model_fields_set
        if "item_id" in sent:
            if sent & {"points", "item"}:
                raise PydanticCustomError("one_form", "send item_id alone, or points with item")
        elif not {"points", "item"} <= sent:
            raise PydanticCustomError("one_form", "send item_id (a catalogue item), or points with item")
        return self


class AdjustmentIn(Body):
    member_id: Id
    points: int = Field(strict=True, ge=-10_000_000, le=10_000_000)
    reason: ShortText


@routes.get("/v1/members/me/ledger", roles=(MEMBER,), query=PageQuery, summary="My ledger, newest first")
def my_ledger(req: Req) -> Any:
    return ledger.list_for(req.member_id, req.query)


@routes.post("/v1/redemptions", roles=(MEMBER,), body=RedemptionIn, moves_money=True,
             summary="Redeem a catalogue item (points and one unit of stock at once; 409 when short or sold out) "
                     "or points for a named item; Idempotency-Key required")
def redeem(req: Req) -> Any:
    # The id follows from the key: even after the idempotency record expires, a retry cannot
    # write a second entry (the ledger entry is written only if absent).
    redemption_id = hashlib.sha256(f"{req.member_id}\0{req.headers['idempotency-key']}".encode()).hexdigest()[:32]
    body: RedemptionIn = req.body
    answer: dict[str, Any] = {"redemption_id": redemption_id}
    if "item_id" in body.model_fields_set:
        entry, answer["item"] = catalogue.redeem(req.member_id, redemption_id, body.item_id)
    else:
        entry = ledger.spend(req.member_id, f"redemption.{redemption_id}", -body.points,
                             f"redeemed for {body.item}", "redemption")
    member = members.get(req.member_id)
    return {**answer, "entry": ledger.render(entry),
            "points": {"available": int(member.points_available), "pending": int(member.points_pending)}}


@routes.post("/v1/ops/adjustments", roles=(ADMIN,), body=AdjustmentIn,
             summary="Adjust a member's points, with a reason; audited")
def adjust(req: Req) -> Any:
    body: AdjustmentIn = req.body
    members.get(body.member_id)  # 404 for an unknown member, before anything is written
    record = audit.record(req.principal.sub, "points.adjust", f"member:{body.member_id}",
                          {"points": body.points, "reason": body.reason})
    entry = ledger.spend(body.member_id, f"adjustment.{record.audit_id}", body.points, body.reason, "adjustment",
                         extra_items=[record], status="available")
    return {"entry": ledger.render(entry), "audit_id": record.audit_id}


@routes.get("/v1/ops/audit-log", roles=(ADMIN,), query=PageQuery, summary="Who changed what, when")
def audit_log(req: Req) -> Any:
    return audit.list_records(req.query, "all")
