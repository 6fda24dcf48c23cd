"""`POST /v1/ops/tokens/revoke`: deny one staff or service token by its `jti` (printed by
tools/token.py when it mints one), without rotating the secret. Audited."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from ..core import revocation
from ..core.auth import ADMIN, MAX_JTI_LENGTH
from ..core.http import Req, Routes
from ..core.validation import Body, ShortText
from ..insight import audit

routes = Routes(__name__)

TokenId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_JTI_LENGTH,
                                           pattern=r"^[A-Za-z0-9_-]+$")]


class RevokeIn(Body):
    jti: TokenId
    reason: ShortText


@routes.post("/v1/ops/tokens/revoke", roles=(ADMIN,), body=RevokeIn,
             summary="Revoke a staff or service token by its jti (effective within a minute everywhere)")
def revoke(req: Req) -> Any:
    body: RevokeIn = req.body
    newly = revocation.revoke(body.jti, req.principal.sub, body.reason)
    if newly:
        audit.record(req.principal.sub, "token.revoke", f"token:{body.jti}", {"reason": body.reason}).save()
    return {"jti": body.jti, "revoked": True, "effective_within_seconds": int(revocation.CACHE_SECONDS)}
