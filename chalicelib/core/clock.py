"""Time in one place, so tests and the simulator can move it.

All stored times are ISO 8601 UTC strings with microseconds and a `Z`; they sort as text.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

_offset = timedelta(0)


def now() -> datetime:
    return datetime.now(timezone.utc) + _offset


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return iso(now())


def parse(text: str) -> datetime:
    """Parse an ISO 8601 time; a time without zone is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def epoch(moment: datetime | None = None) -> int:
    return int((moment or now()).timestamp())


def advance(delta: timedelta) -> None:
    """Move the clock forward (tests, demos). Never used on a request path."""
    global _offset
    _offset += delta


def reset() -> None:
    global _offset
    _offset = timedelta(0)
