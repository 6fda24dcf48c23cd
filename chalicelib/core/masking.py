"""Masking: other members' names on public and member-facing endpoints; secrets (login
subjects, device ids, phone hashes) wherever ops see them. Pure."""
from __future__ import annotations

import unicodedata


def _is_cjk(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def mask_name(name: str | None) -> str:
    """Show just enough to recognise a friend.

    >>> mask_name("张三"), mask_name("Lily"), mask_name("Al"), mask_name("")
    ('张*', 'L***y', 'A*', '*')
    """
    name = (name or "").strip()
    if not name:
        return "*"
    if _is_cjk(name[0]):
        return name[0] + "*" * max(1, len(name) - 1) if len(name) > 1 else "*"
    if len(name) <= 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_secret(value: str | None) -> str | None:
    """A login subject, device id or phone hash as ops may see it: enough to compare two of
    them by eye, never enough to use. At least two thirds of the value stays hidden.

    >>> mask_secret("oWx3f9Kq2LmZ8pR7tY"), mask_secret("dev-1234"), mask_secret("abc"), mask_secret(None)
    ('oWx…tY', 'd…4', '…', None)
    """
    if value is None:
        return None
    if len(value) >= 15:
        return f"{value[:3]}…{value[-2:]}"
    if len(value) >= 6:
        return f"{value[0]}…{value[-1]}"
    return "…"
