"""Chalice's local gateway, answering unknown routes with our JSON 404 (API Gateway does the
same through the MISSING_AUTHENTICATION_TOKEN gateway response in the AWS template)."""
from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

from chalice.local import ChaliceRequestHandler, ForbiddenError, LocalGateway, LocalGatewayException

NOT_FOUND_BODY = json.dumps({"error": {"code": "not_found", "message": "no such route", "details": {}}}).encode()
# Chalice raises ForbiddenError with one of these bodies when no route matches the path.
_NO_ROUTE_MARKERS = (b"Missing Authentication Token", b"Authorization header requires")


class NotFoundError(LocalGatewayException):
    CODE = 404


class JsonNotFoundGateway(LocalGateway):
    def handle_request(self, method, path, headers, body):
        try:
            return super().handle_request(method, path, headers, body)
        except ForbiddenError as exc:
            if any(marker in (exc.body or b"") for marker in _NO_ROUTE_MARKERS):
                raise NotFoundError({"Content-Type": "application/json"}, NOT_FOUND_BODY) from exc
            raise


class RequestHandler(ChaliceRequestHandler):
    def __init__(self, request, client_address, server, app_object, config):
        self.local_gateway = JsonNotFoundGateway(app_object, config)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

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
