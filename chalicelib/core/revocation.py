"""Revoked staff and service tokens (`jti` deny-list), without rotating the secret.

One control-table item per revoked token id. Checking it costs one read per token id per
instance every CACHE_SECONDS: a revocation takes effect everywhere within that time (the
documented lag). A revoked id is remembered for good once seen; the item expires (TTL) after
the longest lifetime a token can have, when the token is dead anyway.
"""
from __future__ import annotations

import threading
import time

from pynamodb.attributes import UnicodeAttribute
from pynamodb.exceptions import PutError

from . import clock
from .auth import MAX_LIFETIME_SECONDS
from ..store.base import ControlItem, condition_failed

CACHE_SECONDS = 60.0
KEEP_SECONDS = max(MAX_LIFETIME_SECONDS.values()) + 86400

_checked: dict[str, tuple[float, bool]] = {}  # jti -> (monotonic time of the read, revoked)
_lock = threading.Lock()


class RevokedToken(ControlItem, discriminator="revoked_token"):
    revoked_by = UnicodeAttribute()
    reason = UnicodeAttribute()
    revoked_at = UnicodeAttribute()

    @staticmethod
    def key(jti: str) -> tuple[str, str]:
        return f"REVOKED#{jti}", "JTI"


def is_revoked(jti: str) -> bool:
    with _lock:
        seen = _checked.get(jti)
    if seen and (seen[1] or time.monotonic() - seen[0] < CACHE_SECONDS):
        return seen[1]
    try:
        RevokedToken.get(*RevokedToken.key(jti))
        revoked = True
    except RevokedToken.DoesNotExist:
        revoked = False
    with _lock:
        if len(_checked) > 10_000:
            _checked.clear()
        _checked[jti] = (time.monotonic(), revoked)
    return revoked


def revoke(jti: str, by: str, reason: str) -> bool:
    """Deny the token id; False when it was revoked already (a repeat changes nothing)."""
    item = RevokedToken(*RevokedToken.key(jti), revoked_by=by, reason=reason, revoked_at=clock.now_iso(),
                        expires_at=clock.epoch() + KEEP_SECONDS)
    try:
        item.save(condition=RevokedToken.pk.does_not_exist())
    except PutError as exc:
        if not condition_failed(exc):
            raise
        return False
    with _lock:
        _checked[jti] = (time.monotonic(), True)
    return True


def reset() -> None:
    """Forget cached answers (tests)."""
    with _lock:
        _checked.clear()
