"""`POST /v1/ops/imports` (admin): up to 1,000 rows of one kind a call; see docs/imports.md."""
from __future__ import annotations

from typing import Any

from ..core.auth import ADMIN
from ..core.http import Req, Routes
from .schemas import ImportIn

routes = Routes(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024  # 1,000 rows of a few hundred bytes; far below Lambda's 6 MB


@routes.post("/v1/ops/imports", roles=(ADMIN,), body=ImportIn, max_body_bytes=MAX_BODY_BYTES,
             summary="Bulk import of members, codes or purchase history; per-row errors, idempotent per row key")
def import_rows(req: Req) -> Any:
    from . import service  # the importers load with the first import, not with every function (cold start)

    return service.run(req.body, req.principal.sub)
