"""Reading, changing and seeding the program.

A put writes a new version that takes effect EFFECTIVE_DELAY later. That delay is what makes
the per-instance cache exact: a cache loaded at L knows every version put before L, and any
version in force at a moment before L + EFFECTIVE_DELAY was put before L. So `rules_at(at)` is
served from the cache for such moments and reloads (one Query) only past them; a moment ahead
of the clock is served from a cache that is exact for now (see `rules_at`).
"""
from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..core import clock
from ..core.errors import Conflict
from ..i18n import t
from ..insight import audit
from ..store.base import cancelled_by_condition, transaction
from .models import PK, Program, ProgramVersion
from .rules import ProgramRules, default_program

EFFECTIVE_DELAY = timedelta(seconds=60)
FIRST_EFFECTIVE = "2000-01-01T00:00:00.000000Z"  # the seeded program judges every fact

_lock = threading.Lock()
_cache: dict[str, Any] = {}  # {"valid_until": iso, "versions": [(effective_from, ProgramRules)]}


def current() -> Program | None:
    try:
        return Program.get(*Program.key(), consistent_read=True)
    except Program.DoesNotExist:
        return None


def put(spec: ProgramRules, actor: str, first: bool = False) -> Program:
    """A new version, in force from a minute from now (the seed: from the start of time)."""
    existing = current()
    if first and existing is not None:
        raise Conflict(t("the program exists"), code="program_exists")
    at = clock.now_iso()
    effective = FIRST_EFFECTIVE if existing is None else clock.iso(clock.now() + EFFECTIVE_DELAY)
    version = 1 if existing is None else int(existing.version) + 1
    text = spec.model_dump_json()
    item = Program(*Program.key(), version=version, rules=text, effective_from=effective, updated_at=at,
                   updated_by=actor)
    try:
        with transaction() as tx:
            tx.save(item, condition=Program.pk.does_not_exist() if existing is None
                    else Program.version == int(existing.version))
            tx.save(ProgramVersion(*ProgramVersion.key(effective, version), version=version, rules=text,
                                   effective_from=effective, created_at=at))
            tx.save(audit.record(actor, "program.update", "program", {"version": version,
                                                                      "effective_from": effective}, at=at))
    except TransactWriteError as exc:
        if cancelled_by_condition(exc):
            raise Conflict(t("the program changed meanwhile; read it and try again"),
                           code="concurrent_change") from None
        raise
    clear_caches()
    return item


def seed_default() -> bool:
    try:
        put(default_program(), "system", first=True)
        return True
    except Conflict:
        return False


def _load() -> dict[str, Any]:
    loaded_at = clock.now()
    versions = [(v.effective_from, ProgramRules.model_validate_json(v.rules))
                for v in ProgramVersion.query(PK, ProgramVersion.sk.startswith("V#"), consistent_read=True)]
    return {"valid_until": clock.iso(loaded_at + EFFECTIVE_DELAY), "versions": versions}


def rules_at(at: str | None = None) -> ProgramRules:
    """The program version in force at `at` (default: now); the default program if none exists.

    A moment ahead of the clock (a fact dated up to FACT_MAX_FUTURE_SECONDS ahead, a due date)
    cannot be judged for good by any load: a version put later may take effect before it. It is
    served from the cache while the cache is exact for now (less than EFFECTIVE_DELAY old);
    before, every such call reloaded: a Query and a parse each, dozens per purchase."""
    now = clock.now_iso()
    at = at or now
    with _lock:
        cache = _cache.get("program")
    if cache is None or min(at, now) >= cache["valid_until"]:
        cache = _load()
        with _lock:
            _cache["program"] = cache
    in_force = [rules for effective, rules in cache["versions"] if effective <= at]
    return in_force[-1] if in_force else default_program()


def clear_caches() -> None:
    with _lock:
        _cache.clear()


def render(item: Program | None) -> dict[str, Any]:
    if item is None:
        return {"version": 0, "effective_from": FIRST_EFFECTIVE, "rules": default_program().model_dump()}
    return {"version": int(item.version), "effective_from": item.effective_from, "updated_at": item.updated_at,
            "updated_by": item.updated_by, "rules": ProgramRules.model_validate_json(item.rules).model_dump()}
