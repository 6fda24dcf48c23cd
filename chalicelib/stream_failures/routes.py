"""Admin view of stream batches that went to the failure destination, and their re-drive."""
from __future__ import annotations

from typing import Any

from ..core.auth import ADMIN
from ..core.http import Req, Routes
from ..core.pagination import PageQuery
from . import service

routes = Routes(__name__)


@routes.get("/v1/ops/stream-failures", roles=(ADMIN,), query=PageQuery,
            summary="Stream batches given up after their retries, newest first")
def list_stream_failures(req: Req) -> Any:
    return service.list_failures(req.query)


@routes.get("/v1/ops/stream-failures/{failure_id}", roles=(ADMIN,),
            summary="One failed stream batch with its records")
def get_stream_failure(req: Req) -> Any:
    return service.get(req.params["failure_id"])


@routes.post("/v1/ops/stream-failures/{failure_id}/redrive", roles=(ADMIN,),
             summary="Run a failed batch's records through their handlers again")
def redrive_stream_failure(req: Req) -> Any:
    return service.redrive(req.params["failure_id"], req.principal.sub)
