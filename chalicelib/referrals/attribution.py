"""Who gets credit for what: binding at sign-up, converting purchases, refunds."""
from __future__ import annotations

from typing import Any


def on_login(member, created: bool, referral, device_id: str | None = None) -> dict[str, Any] | None:
    """Bind a referral given at login. Returns the outcome shown to the mini-program."""
    if referral is None:
        return None
    return {"status": "not_bound", "reason": "referral binding is not available yet"}
