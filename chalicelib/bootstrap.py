"""Make a stage ready: tables from the specs (idempotent), the seeded `default` campaign and
the default program."""
from __future__ import annotations

from typing import Any

from .campaigns.service import seed_default
from .program import service as program
from .store.base import bind
from .store.tables import ensure_tables


def prepare(ddb_client: Any, prefix: str | None = None) -> dict[str, str]:
    bind(prefix)
    arns = ensure_tables(ddb_client, prefix)
    seed_default()
    program.seed_default()
    return arns
