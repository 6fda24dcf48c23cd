"""405 for a method a path does not support, answered by the app in the error envelope.

API Gateway routes only declared methods and answers the rest with one gateway response it
also uses for unknown paths, so the app declares the missing methods of every path itself
(`refuse_other_methods`, called once after all blueprints are registered). Chalice's own 405
(`{"Code": "MethodNotAllowedError"}`) is then never seen on AWS; the local gateway rewrites it
for verbs API Gateway never routes (TRACE and the like).

Every function imports this (app.py): what answers a refusal is imported by the first one.
"""
from typing import TYPE_CHECKING

from chalice import Chalice, Response

from .routing import JSON_TYPES

if TYPE_CHECKING:
    from .errors import MethodNotAllowed

# The methods API Gateway can route to a function (ANY aside); OPTIONS is left to CORS handling.
ROUTABLE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


def method_not_allowed(method: str, allowed: list[str]) -> "MethodNotAllowed":
    from ..i18n import t
    from .errors import MethodNotAllowed

    return MethodNotAllowed(t("{method} is not supported here; use {allowed}",
                              method=method, allowed=', '.join(allowed)),
                            details={"allowed": allowed}, headers={"Allow": ", ".join(allowed)})


def _refusal(app: Chalice, allowed: list[str]):
    def refuse_method(**_params: str) -> Response:
        import uuid  # these on the first refusal: every function imports this module (cold start)

        from .. import i18n
        from .http import error_response, header_value, with_language

        request = app.current_request
        request_id = (request.context or {}).get("requestId") or uuid.uuid4().hex
        with i18n.locale_scope(i18n.negotiate(header_value(request, "accept-language"))):
            return with_language(error_response(method_not_allowed(request.method, allowed), request_id))

    refuse_method.refuses_method = True  # type: ignore[attr-defined]  (the OpenAPI document skips these)
    return refuse_method


def refuse_other_methods(app: Chalice) -> None:
    for path, entries in list(app.routes.items()):
        allowed = sorted(method for method, entry in entries.items() if not is_refusal(entry))
        missing = [method for method in ROUTABLE_METHODS if method not in entries]
        if allowed and missing:
            app.route(path, methods=missing, content_types=JSON_TYPES, name="refuse_method")(_refusal(app, allowed))


def is_refusal(route_entry) -> bool:
    return getattr(route_entry.view_function, "refuses_method", False)
