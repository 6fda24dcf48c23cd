"""CSV pages Excel opens as they are: UTF-8 with a BOM (else Excel reads Chinese as mojibake),
CRLF rows, a header row, and text cells that cannot run as formulas.

A page holds at most `limit` rows and about MAX_PAGE_BYTES of text: Lambda's response (the
body JSON-escaped, where a Chinese character becomes six bytes) must stay under 6 MB.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from itertools import islice
from typing import Any, Callable, Iterator

BOM = "\ufeff"
MAX_PAGE_BYTES = 2_500_000
CHUNK_ROWS = 100  # rows decorated (names looked up) and written at a time

# A cell a spreadsheet would evaluate: formula starts, and the tab and CR Excel strips before one
# (OWASP "CSV injection"). Member display names are user input.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Positioned = tuple[dict[str, Any], dict[str, Any]]  # (row, the cursor that resumes after it)


def cell(value: Any) -> Any:
    """>>> [cell(v) for v in ("=HYPERLINK(1)", "-1", "张三", -1, None)]
    ["'=HYPERLINK(1)", "'-1", '张三', -1, '']
    """
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value  # numbers stay numbers: a negative amount is a number, not a formula


@dataclass
class Page:
    body: str
    rows: int
    after: dict[str, Any] | None  # where the next page starts; None: this was the last


def page(columns: tuple[str, ...], rows: Iterator[Positioned], limit: int,
         decorate: Callable[[list[dict[str, Any]]], None] | None = None) -> Page:
    """Write up to `limit` rows of `rows` (read lazily) as one complete CSV document."""
    out = io.StringIO()
    out.write(BOM + _lines([columns]))
    written, size, last = 0, 0, None
    while written < limit and size < MAX_PAGE_BYTES:
        chunk = list(islice(rows, min(CHUNK_ROWS, limit - written)))
        if not chunk:
            return Page(out.getvalue(), written, None)
        if decorate is not None:
            decorate([row for row, _ in chunk])
        text = _lines([[cell(row.get(name)) for name in columns] for row, _ in chunk])
        out.write(text)
        written, size, last = written + len(chunk), size + len(text.encode()), chunk[-1][1]
    more = next(rows, None) is not None  # one row read ahead, so the last page says it is last
    return Page(out.getvalue(), written, last if more else None)


def _lines(rows: list[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()
