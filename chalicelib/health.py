"""Liveness, and whether every table answers."""
from __future__ import annotations

from typing import Any

from .core import aws
from .core.http import Reply, Req, Routes
from .store.base import ROOTS

routes = Routes(__name__)


def table_status() -> dict[str, str]:
    status = {}
    for logical, root in ROOTS.items():
        try:
            aws.dynamodb().describe_table(TableName=root.Meta.table_name)
            status[logical] = "ok"
        except Exception as exc:  # health reports, it never fails
            status[logical] = f"unavailable: {type(exc).__name__}"
    return status


@routes.get("/health", summary="Liveness and whether the tables answer")
def health(req: Req) -> Any:
    tables = table_status()
    healthy = all(v == "ok" for v in tables.values())
    return Reply({"status": "ok" if healthy else "degraded", "tables": tables}, 200 if healthy else 503)
