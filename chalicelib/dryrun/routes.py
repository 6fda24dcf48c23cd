"""`POST /v1/campaigns/{campaign_id}/dry-run` (ops): what rules would pay, writing nothing."""
from __future__ import annotations

from typing import Any

from ..core.auth import OPS
from ..core.http import Req, Routes
from .schemas import DryRunIn

routes = Routes(__name__)


# Not idempotent-keyed: a dry run writes nothing, not even an idempotency record.
@routes.post("/v1/campaigns/{campaign_id}/dry-run", roles=(OPS,), body=DryRunIn, idempotent=False,
             summary="The ledger entries and budget use that rules would produce over given facts, or over the "
                     "campaign's recorded facts of [from, to) compared with what was written; writes nothing")
def dry_run(req: Req) -> Any:
    from . import service  # the replay engine loads with the first dry run, not with every function (cold start)

    return service.dry_run(req.params["campaign_id"], req.body)
