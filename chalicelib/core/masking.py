"""Masking other members' names on public and member-facing endpoints (pure)."""
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
