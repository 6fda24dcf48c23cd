"""Chalice's local gateway, answering what API Gateway answers by itself from the same
declaration (chalicelib/gateway_responses.py): unknown routes get our JSON 404, and any verb a
path does not support gets the 405 envelope (never an HTML 501 from http.server)."""
from __future__ import annotations

import json
import uuid
from http.server import BaseHTTPRequestHandler

from chalice.local import (ChaliceRequestHandler, ForbiddenError, LocalGateway, LocalGatewayException,
                           RouteMatcher)

from chalicelib.core.methods import is_refusal, method_not_allowed
from chalicelib.gateway_responses import NO_ROUTE

NOT_FOUND_BODY = json.dumps(NO_ROUTE.body()).encode()
# Chalice raises ForbiddenError with one of these bodies when no route matches the path.
_NO_ROUTE_MARKERS = (b"Missing Authentication Token", b"Authorization header requires")


class NotFoundError(LocalGatewayException):
    CODE = NO_ROUTE.status


class JsonNotFoundGateway(LocalGateway):
    def handle_request(self, method, path, headers, body):
        try:
            response = super().handle_request(method, path, headers, body)
        except ForbiddenError as exc:
            if any(marker in (exc.body or b"") for marker in _NO_ROUTE_MARKERS):
                raise NotFoundError({"Content-Type": "application/json"}, NOT_FOUND_BODY) from exc
            raise
        if response["statusCode"] == 405 and b"MethodNotAllowedError" in _bytes(response["body"]):
            return self._method_not_allowed(method, path, response)
        return response

    def _method_not_allowed(self, method: str, path: str, chalice_response: dict) -> dict:
        """Chalice's own 405 (a verb no route of the path declares, e.g. TRACE) in our envelope."""
        routes = self._app_object.routes
        entries = routes[RouteMatcher(list(routes)).match_route(path).route]
        err = method_not_allowed(method, sorted(m for m, entry in entries.items() if not is_refusal(entry)))
        return {**chalice_response, "body": json.dumps(err.body()),
                "headers": {"Content-Type": "application/json", "X-Request-Id": uuid.uuid4().hex, **err.headers}}


def _bytes(body) -> bytes:
    return body.encode() if isinstance(body, str) else (body or b"")


class RequestHandler(ChaliceRequestHandler):
    def __init__(self, request, client_address, server, app_object, config):
        self.local_gateway = JsonNotFoundGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def __getattr__(self, name):
        # http.server answers a verb without a do_<VERB> method with an HTML 501; send every
        # verb through the gateway instead (API Gateway never answers with HTML either).
        if name.startswith("do_"):
            return self._generic_handle
        raise AttributeError(name)

    def log_message(self, format, *args):  # access lines go through our JSON logs instead
        pass


def local_server(app, config, host: str, port: int):
    """Chalice's threaded dev server, one thread per connection, with `current_request` kept per
    thread — what `chalice local` does (chalice.local.create_local_server); without the class
    swap a plain `Chalice` app shares one `current_request` between concurrent requests."""
    from chalice.local import CustomLocalChalice, LocalChalice, LocalDevServer

    if not isinstance(app, LocalChalice):
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    return LocalDevServer(app, config, host, port, handler_cls=RequestHandler)
