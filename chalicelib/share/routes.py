"""Static files of the hosted landing and preview pages (CSS, JS, the default share image),
served by the API itself so a strict Content-Security-Policy ('self') allows them."""
from __future__ import annotations

from typing import Any

from ..core.errors import NotFound
from ..core.http import Req, Routes
from ..i18n import t
from . import pages

routes = Routes(__name__)


@routes.get("/static/{name}", produces="text/css",
            summary="CSS, JS and the default share image of the hosted pages (cached for a year: URLs carry a hash)")
def static_file(req: Req) -> Any:
    response = pages.static_response(req.params["name"])
    if response is None:
        raise NotFound(t("no such file"), code="not_found")
    return response
