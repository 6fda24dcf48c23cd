"""Data rights: a member's export of everything held on them; an admin's erasure of it."""
from __future__ import annotations

from typing import Any

from ..core.auth import ADMIN, MEMBER
from ..core.errors import NotFound
from ..core.http import Req, Routes
from ..i18n import t
from . import erase, export

routes = Routes(__name__)
ID_MAX = 128  # member ids are at most this long (core.validation.Id): anything longer names nobody


@routes.get("/v1/members/me/export", roles=(MEMBER,),
            summary="Everything personal the service holds on me, as JSON (every stored field of every item)")
def my_export(req: Req) -> Any:
    return export.export(req.member_id)


@routes.post("/v1/ops/members/{member_id}/erase", roles=(ADMIN,),
             summary="Erase a member's personal data (identities, names, device and phone hashes, click "
                     "fingerprints, codes, links); amounts, counts and referral edges stay under the member id. "
                     "Irreversible, audited; a repeat answers the same receipt")
def erase_member(req: Req) -> Any:
    member_id = req.params["member_id"]
    if len(member_id) > ID_MAX:
        raise NotFound(t("member {member_id!r}… does not exist", member_id=member_id[:ID_MAX]),
                       code="member_not_found")
    return erase.erase(member_id, req.principal.sub)
