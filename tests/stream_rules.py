"""Helpers for stream tests: change a mapping for one test, and a handler that fails on cue."""
from __future__ import annotations

from chalicelib.event_sources import MAPPINGS


def set_mapping(monkeypatch, function: str, **settings) -> None:
    """Change `MAPPINGS[function]` for this test: handlers and the poller both read it there."""
    monkeypatch.setitem(MAPPINGS, function, MAPPINGS[function]._replace(**settings))


def throttle_first(monkeypatch, module, name: str, matches, times: int = 1) -> list:
    """Make `module.name(*args)` raise the first `times` calls whose args `matches` (a throttled
    write); returns the list of matching calls seen."""
    original = getattr(module, name)
    seen: list = []

    def flaky(*args, **kwargs):
        if matches(*args, **kwargs):
            seen.append(args)
            if len(seen) <= times:
                raise RuntimeError("ProvisionedThroughputExceededException (test)")
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)
    return seen
