"""Who is a link-preview crawler: user-agent substrings kept as data in crawlers.txt.

A crawler fetching a shared link draws the card a friend sees; no person clicked. It gets the
preview page (share/pages.py) and writes nothing. WeChat's in-app browser (MicroMessenger) is
a person and is deliberately absent from the list.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

LIST = Path(__file__).resolve().parent / "crawlers.txt"


@lru_cache(maxsize=1)
def markers() -> tuple[str, ...]:
    lines = (line.split("#", 1)[0].strip().lower() for line in LIST.read_text("utf-8").splitlines())
    return tuple(line for line in lines if line)


def is_crawler(user_agent: str | None) -> bool:
    """>>> is_crawler("facebookexternalhit/1.1"), is_crawler("Mozilla/5.0 (iPhone) MicroMessenger/8.0.50")
    (True, False)
    """
    agent = (user_agent or "").lower()
    return any(marker in agent for marker in markers())
