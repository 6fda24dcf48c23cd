"""One mechanism for every HTTP route: size limit, JSON parsing, validation, auth, roles,
rate limits, Idempotency-Key, the error envelope and request-id logging.

A capability declares its routes on a `Routes` (wrapping a Chalice Blueprint):

    routes = Routes(__name__)

    @routes.post("/v1/links", roles=(MEMBER,), body=LinkIn, summary="Create a share link")
    def create_link(req: Req) -> dict:
        return links.create(req.principal.sub, req.body)

The view receives a `Req` (principal, body, query, path params, client key) and returns a
dict (200 JSON), a `Reply`, or a Chalice `Response` (redirects, images).

The app registers each route from chalicelib/route_table.py with a thin view that imports the
routes module on its first call and `dispatch`es to it (core/routing.py).
"""
from __future__ import annotations

import contextvars
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from chalice import Blueprint, Response
from pydantic import BaseModel, ValidationError

from .. import i18n
from ..i18n import t
from . import auth
from .config import settings
from .errors import ApiError, BadRequest, PayloadTooLarge, PreconditionRequired, Unprocessable, error_body
from .logs import get_logger, request_id_var
from .routing import JSON_TYPES

log = get_logger("http")

PUBLIC: tuple[str, ...] = ()


@dataclass
class Reply:
    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Req:
    principal: auth.Principal | None
    body: Any
    query: Any
    params: dict[str, str]
    headers: dict[str, str]
    client_key: str
    request_id: str
    raw_body: bytes
    route_key: str = ""

    @property
    def member_id(self) -> str:
        assert self.principal is not None
        return self.principal.sub


@dataclass
class RouteDoc:
    path: str
    method: str
    roles: tuple[str, ...]
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    idempotent: bool
    rate_limit: str | None
    produces: str = "application/json"
    status: int = 200  # the success status the OpenAPI document declares (201 created, 302 redirect)
    key_required: bool = False  # money moves: a retry without Idempotency-Key could pay twice
    headers: dict[str, str] = field(default_factory=dict)  # response headers a success may carry → what they say


ROUTE_DOCS: list[RouteDoc] = []


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str),
        status_code=status,
        headers={"Content-Type": "application/json; charset=utf-8", **(headers or {})},
    )


def error_response(err: ApiError, request_id: str) -> Response:
    return json_response(err.body(), err.status, {"X-Request-Id": request_id, **err.headers})


def validation_details(exc: ValidationError) -> dict[str, Any]:
    fields = []
    for problem in exc.errors(include_url=False, include_context=False, include_input=False):
        fields.append({"field": ".".join(str(p) for p in problem["loc"]) or "(body)",
                       "problem": problem["msg"], "type": problem["type"]})
    return {"fields": fields}


def parse_model(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        message = t("invalid body") if where == "body" else t("invalid query parameters")
        raise Unprocessable(message, code="validation_failed", details=validation_details(exc)) from exc


def _client_key(request: Any) -> str:
    identity = (request.context or {}).get("identity") or {}
    return identity.get("sourceIp") or "unknown"


def _parse_json(raw: bytes) -> Any:
    if not raw or not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(t("body is not valid JSON: {problem}", problem=exc), code="malformed_json") from exc
    except RecursionError as exc:  # e.g. 60 KB of "[": too deep for the decoder, still bad input
        raise BadRequest(t("body is nested too deeply"), code="malformed_json") from exc


class Routes:
    """Route declarations for one capability, on its own Chalice Blueprint."""

    def __init__(self, import_name: str):
        self.blueprint = Blueprint(import_name)
        self.table: list[tuple[str, str, str]] = []  # (method, path, view function): route_table.py
        self._views: dict[tuple[str, str], Callable[[Any, dict[str, str]], Response]] = {}
        self._app: Any = None

    @property
    def current_app(self) -> Any:
        """The app serving these routes (through its route table, or this blueprint in tests)."""
        return self._app if self._app is not None else self.blueprint.current_app

    def dispatch(self, app: Any, method: str, path: str, params: dict[str, str]) -> Response:
        """Serve a request the app's thin view (core/routing.py) received for this route."""
        self._app = app
        return self._views[(method, path)](app.current_request, params)

    def get(self, path: str, **kw: Any) -> Callable:
        return self.route(path, "GET", **kw)

    def post(self, path: str, **kw: Any) -> Callable:
        return self.route(path, "POST", **kw)

    def put(self, path: str, **kw: Any) -> Callable:
        return self.route(path, "PUT", **kw)

    def delete(self, path: str, **kw: Any) -> Callable:
        return self.route(path, "DELETE", **kw)

    def route(self, path: str, method: str, *, roles: tuple[str, ...] = PUBLIC, body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, summary: str = "", idempotent: bool | None = None,
              rate_limit: str | None = None, produces: str = "application/json", status: int = 200,
              moves_money: bool = False, headers: dict[str, str] | None = None,
              max_body_bytes: int | None = None) -> Callable:
        """`moves_money=True`: the call spends or pays (redemptions, claims), so it needs an
        `Idempotency-Key` (428 without one) — a blind retry must never pay twice.
        `max_body_bytes`: a larger body than the stage's default (bulk imports)."""
        idempotent = (method == "POST") if idempotent is None else idempotent
        idempotent = idempotent or moves_money
        ROUTE_DOCS.append(RouteDoc(path, method, roles, summary, body, query, idempotent, rate_limit, produces, status,
                                   key_required=moves_money, headers=dict(headers or {})))
        blueprint = self.blueprint

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            def serve(request: Any, params: dict[str, str]) -> Response:
                return handle(request, fn, params, roles, body, query, idempotent, rate_limit, moves_money,
                              max_body_bytes)

            def view(**params: str) -> Response:  # registered through the blueprint (test-only routes)
                return serve(blueprint.current_request, params)

            view.__name__ = fn.__name__
            view.__doc__ = fn.__doc__
            blueprint.route(path, methods=[method], content_types=JSON_TYPES)(view)
            self.table.append((method, path, fn.__name__))
            self._views[(method, path)] = serve
            return fn

        return decorate


# The API's own URL as the caller reached it (API Gateway's domain and stage, or a custom domain):
# where share links point when PUBLIC_BASE_URL is not set.
base_url_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("base_url", default=None)


def request_base_url(context: dict | None) -> str | None:
    """>>> request_base_url({"domainName": "abc.execute-api.us-east-1.amazonaws.com", "stage": "api"})
    'https://abc.execute-api.us-east-1.amazonaws.com/api'
    >>> request_base_url({"domainName": "ref.brand.cn", "stage": "api"})
    'https://ref.brand.cn'
    """
    domain = (context or {}).get("domainName")
    if not domain or domain in ("localhost", "testhost"):
        return None
    stage = (context or {}).get("stage")
    # API Gateway's own domain carries the stage in the path; a custom domain maps it at its root.
    if domain.endswith(".amazonaws.com") and stage:
        return f"https://{domain}/{stage}"
    return f"https://{domain}"


def public_base_url() -> str:
    """PUBLIC_BASE_URL, else the URL of the request being served."""
    configured = settings().public_base_url or base_url_var.get()
    if not configured:
        from .config import ConfigError

        raise ConfigError("PUBLIC_BASE_URL is not set and this request names no domain")
    return configured


def handle(request: Any, fn: Callable[..., Any], params: dict[str, str], roles: tuple[str, ...],
           body_model: type[BaseModel] | None, query_model: type[BaseModel] | None,
           idempotent: bool, rate_limit: str | None, key_required: bool = False,
           max_body_bytes: int | None = None) -> Response:
    request_id = ((request.context or {}).get("requestId")) or uuid.uuid4().hex
    token = request_id_var.set(request_id)
    base_token = base_url_var.set(request_base_url(request.context))
    locale_tokens = i18n.start_request(header_value(request, "accept-language"))
    try:
        req = _build_request(request, params, roles, body_model, query_model, request_id, rate_limit,
                             max_body_bytes)
        if key_required and not req.headers.get("idempotency-key", "").strip():
            raise PreconditionRequired(
                t("this call moves money: send an Idempotency-Key header (a fresh unique value per intended "
                  "operation, the same value on every retry of it) so a retry can never pay twice"),
                code="idempotency_key_required", details={"header": "Idempotency-Key"})
        if idempotent and req.headers.get("idempotency-key"):
            from . import idempotency

            response = idempotency.run(req, lambda: _call(fn, req))
        else:
            response = _call(fn, req)
        response.headers.setdefault("X-Request-Id", request_id)
        return with_language(response)
    except ApiError as err:
        return with_language(error_response(err, request_id))
    except Exception as exc:  # the one place an unexpected failure becomes a 5xx
        from ..store.base import transient

        if transient(exc):  # throttled, a conflict or a timeout that outlasted the retries
            log.warning("storage busy", extra={"error": type(exc).__name__})
            return with_language(json_response(
                error_body("service_busy", t("the service is busy; retry the same request in a moment"),
                           {"request_id": request_id}),
                503, {"X-Request-Id": request_id, "Retry-After": "1"}))
        log.exception("unhandled error", extra={"path": request.context.get("resourcePath") if request.context else None})
        return with_language(json_response(
            error_body("internal_error", t("something went wrong on our side; quote the request id"),
                       {"request_id": request_id}),
            500, {"X-Request-Id": request_id}))
    finally:
        request_id_var.reset(token)
        base_url_var.reset(base_token)
        i18n.end_request(locale_tokens)


def header_value(request: Any, name: str) -> str | None:
    return next((v for k, v in (request.headers or {}).items() if k.lower() == name), None)


def with_language(response: Response) -> Response:
    """Texts follow Accept-Language: say which language they are in, and tell caches so."""
    response.headers.setdefault("Content-Language", i18n.current_locale())
    vary = response.headers.get("Vary")
    if not vary or "accept-language" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Accept-Language" if vary else "Accept-Language"
    return response


def _build_request(request: Any, params: dict[str, str], roles: tuple[str, ...],
                   body_model: type[BaseModel] | None, query_model: type[BaseModel] | None,
                   request_id: str, rate_limit: str | None, max_body_bytes: int | None = None) -> Req:
    headers = {k.lower(): v for k, v in (request.headers or {}).items()}
    raw = request.raw_body or b""
    limit = max(max_body_bytes or 0, settings().max_body_bytes)
    if len(raw) > limit:
        raise PayloadTooLarge(t("body exceeds {limit} bytes", limit=limit))
    principal = None
    if roles:
        principal = auth.authenticate(headers.get("authorization"))
        auth.require_role(principal, roles)
    client_key = _client_key(request)
    from . import ratelimit

    # Members and staff are limited per subject: a token is one caller whatever IPs it uses. A
    # service token is the brand's own backend, whose volume is the shop's: not limited here.
    if principal is not None and principal.role != auth.SERVICE:
        ratelimit.check(f"sub:{principal.role}", principal.sub)
    if rate_limit:
        ratelimit.check(rate_limit, client_key)
    body: Any = None
    if body_model is not None:
        data = _parse_json(raw)
        if not isinstance(data, dict):
            raise Unprocessable(t("body must be a JSON object"), code="validation_failed")
        body = parse_model(body_model, data, "body")
    query: Any = None
    if query_model is not None:
        query = parse_model(query_model, dict(request.query_params or {}), "query parameters")
    route = (request.context or {}).get("resourcePath", "")
    route_key = f"{request.method} {route} " + json.dumps(params, sort_keys=True)
    return Req(principal, body, query, params, headers, client_key, request_id, raw, route_key)


def _call(fn: Callable[[Req], Any], req: Req) -> Response:
    result = fn(req)
    if isinstance(result, Response):
        response = result
    elif isinstance(result, Reply):
        response = json_response(result.body, result.status, result.headers)
    else:
        response = json_response(result)
    # Set here, inside the idempotency layer, so a replay says the language its stored body is in.
    response.headers.setdefault("Content-Language", i18n.current_locale())
    return response
