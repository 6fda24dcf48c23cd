"""Delivery signatures: `X-Referral-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
`"<t>.<raw body>"`, keyed by the subscription's secret. The timestamp inside the signed text
lets a receiver refuse replays of an old delivery (`verify`'s tolerance)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

HEADER = "X-Referral-Signature"
TOLERANCE_SECONDS = 300


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance: int = TOLERANCE_SECONDS, now: float | None = None) -> bool:
    """What a receiver runs (docs/webhooks.md shows it standalone)."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))
