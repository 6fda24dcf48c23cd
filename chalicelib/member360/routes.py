"""Member 360 for ops: thin, validate and read."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from ..core.auth import OPS
from ..core.errors import NotFound
from ..core.http import Req, Routes
from ..core.validation import Query
from ..i18n import t
from . import view

routes = Routes(__name__)
ID_MAX = 128  # member ids are at most this long (core.validation.Id): anything longer names nobody


class Member360Query(Query):
    timeline_limit: int = Field(20, ge=1, le=100, description="how many of the latest timeline entries")


@routes.get("/v1/ops/members/{member_id}", roles=(OPS,), query=Member360Query,
            summary="A member's 360 view: profile, identities (masked), referral chain two levels up, downline "
                    "counts at two levels, ledger summary, fraud flags, timeline")
def member_360(req: Req) -> Any:
    member_id = req.params["member_id"]
    if len(member_id) > ID_MAX:
        raise NotFound(t("member {member_id!r}… does not exist", member_id=member_id[:ID_MAX]),
                       code="member_not_found")
    return view.build(member_id, req.query.timeline_limit)
