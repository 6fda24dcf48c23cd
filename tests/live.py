"""The service on a real local HTTP server (127.0.0.1, a free port), as `make run` serves it,
backed by the test's backend."""
from __future__ import annotations

import threading
from contextlib import contextmanager


@contextmanager
def serving(app):
    from chalice.config import Config

    from infra.local.ddblocal import free_port
    from infra.local.gateway import local_server

    port = free_port()
    server = local_server(app, Config.create(chalice_stage="local", app_name=app.app_name, chalice_app=app),
                          "127.0.0.1", port)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.server.shutdown()
        server.server.server_close()
