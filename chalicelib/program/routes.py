"""The program (admin): tiers, stages, own-purchase points, moments, contact policy."""
from __future__ import annotations

from typing import Any

from ..core.auth import ADMIN
from ..core.http import Req, Routes
from . import service
from .rules import ProgramRules

routes = Routes(__name__)


@routes.get("/v1/ops/program", roles=(ADMIN,), summary="The member program in force and its version")
def read(req: Req) -> Any:
    return service.render(service.current())


@routes.put("/v1/ops/program", roles=(ADMIN,), body=ProgramRules,
            summary="Change the program (a new version, in force a minute later; facts keep the version of their time)")
def change(req: Req) -> Any:
    return service.render(service.put(req.body, req.principal.sub))
