"""Rate limits for public endpoints that hold across Lambda instances, cheaply.

A fixed one-minute window per (bucket, client) counted in DynamoDB (control table, TTL). To
keep the hot path cheap each instance batches its increments: it adds to the shared counter
every `flush_every` requests (or once a second) and learns the global count from the same
write. Most requests therefore make no DynamoDB call — a client's first request in a window
neither — and the cost is an overshoot of at most `flush_every` requests per instance per window,
which is fine for abuse control.
"""
from __future__ import annotations

import threading
from time import monotonic
from dataclasses import dataclass

from pynamodb.attributes import NumberAttribute

from ..i18n import t
from . import clock
from .config import settings
from .errors import RateLimited
from ..store.base import ControlItem

WINDOW_SECONDS = 60
FLUSH_SECONDS = 1.0
MAX_TRACKED = 10_000


class RateWindow(ControlItem, discriminator="rate_window"):
    hits = NumberAttribute(default=0)


@dataclass
class _Local:
    window: int
    pending: int = 0
    known_global: int = 0
    flushed_at: float = 0.0


_state: dict[tuple[str, str], _Local] = {}
_lock = threading.Lock()


def limit_for(bucket: str) -> int:
    return settings().rate_limit_per_minute


def check(bucket: str, client_key: str) -> None:
    """Count the request; over the limit → 429 with Retry-After."""
    retry_after = exceeded(bucket, client_key)
    if retry_after is not None:
        raise RateLimited(t("too many requests; slow down"), details={"limit_per_minute": limit_for(bucket)},
                          headers={"Retry-After": str(retry_after)})


def exceeded(bucket: str, client_key: str) -> int | None:
    """Count the request; None while within the limit, else seconds until the window ends.
    For routes that must answer anyway (a click still redirects) and only change what they record."""
    limit = limit_for(bucket)
    flush_every = max(1, limit // 20)
    window = clock.epoch() // WINDOW_SECONDS
    with _lock:
        local = _state.get((bucket, client_key))
        if local is None or local.window != window:
            if len(_state) >= MAX_TRACKED:  # a warm instance sees many clients: forget past windows
                for stale in [k for k, v in _state.items() if v.window != window]:
                    del _state[stale]
            # a client's first request waits like the others: one GET a minute writes nothing
            local = _state[(bucket, client_key)] = _Local(window=window, flushed_at=monotonic())
        local.pending += 1
        estimate = local.known_global + local.pending
        flush = local.pending >= flush_every or monotonic() - local.flushed_at > FLUSH_SECONDS
        if flush:
            pending, local.pending, local.flushed_at = local.pending, 0, monotonic()
    if flush:
        total = _add(bucket, client_key, window, pending)
        with _lock:
            local.known_global = max(local.known_global, total - local.pending)
        estimate = total
    if estimate > limit:
        return max(1, WINDOW_SECONDS - clock.epoch() % WINDOW_SECONDS)
    return None


def _add(bucket: str, client_key: str, window: int, count: int) -> int:
    item = RateWindow(pk=f"RL#{bucket}#{client_key}", sk=str(window))
    item.update(actions=[RateWindow.hits.add(count),
                         RateWindow.expires_at.set((window + 2) * WINDOW_SECONDS)])
    return int(item.hits)


def reset() -> None:
    """Forget local counts (tests)."""
    with _lock:
        _state.clear()
