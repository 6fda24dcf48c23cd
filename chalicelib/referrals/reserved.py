"""Reserved words ops add to the built-in list (rules.RESERVED, rules.BRANDS): no vanity code may
contain them. One item, read on each vanity request (rare); adding is idempotent (a set union)."""
from __future__ import annotations

from ..insight import audit
from .models import ReservedWords


def extra_words() -> frozenset[str]:
    try:
        return frozenset(ReservedWords.get(*ReservedWords.key(), consistent_read=True).words or ())
    except ReservedWords.DoesNotExist:
        return frozenset()


def add(words: list[str], by: str) -> list[str]:
    """Add words (upper-cased); returns the whole ops list. Audited."""
    new = {w.upper() for w in words}
    item = ReservedWords(*ReservedWords.key(), words=set(extra_words() | new), updated_by=by)
    item.save()
    audit.record(by, "reserved_codes.add", "reserved-codes", {"words": sorted(new)}).save()
    return sorted(item.words)
