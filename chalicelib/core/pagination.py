"""`?limit=&cursor=` lists. Cursors are opaque and signed: a cursor is bound to the listing
and to the caller it was issued to, so it cannot be edited into reading someone else's items.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any, Callable, Iterable

from pydantic import Field

from ..i18n import t
from .config import settings
from .errors import BadRequest
from .validation import Query

DEFAULT_LIMIT, MAX_LIMIT = 20, 100


class PageQuery(Query):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(None, max_length=2048)


def _sign(payload: bytes, scope: str) -> str:
    mac = hmac.new(settings().cursor_secret.encode(), scope.encode() + b"\0" + payload, hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:16]).decode().rstrip("=")


def encode_cursor(last_key: dict[str, Any] | None, scope: str) -> str | None:
    if not last_key:
        return None
    payload = json.dumps(last_key, separators=(",", ":"), sort_keys=True).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return f"{body}.{_sign(payload, scope)}"


def decode_cursor(cursor: str | None, scope: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        body, signature = cursor.split(".", 1)
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        # bytes, not str: compare_digest raises TypeError on non-ASCII text (a garbage cursor)
        if not hmac.compare_digest(signature.encode(), _sign(payload, scope).encode()):
            raise ValueError("signature mismatch")
        key = json.loads(payload)
        if not isinstance(key, dict):
            raise ValueError("not a key")
        return key
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(t("cursor is not valid for this list"), code="invalid_cursor") from exc


def page(query: Callable[..., Any], page_query: PageQuery, scope: str,
         render: Callable[[Any], dict[str, Any]], resolve: Callable[[list[Any]], Iterable[Any]] | None = None,
         **query_kwargs: Any) -> dict[str, Any]:
    """Run a PynamoDB query/index query for one page and render `{items, next_cursor}`.
    `resolve` turns the page's hits into what is rendered (e.g. index entries into the items they
    name, one batch read per page); the cursor stays the query's."""
    results = query(limit=page_query.limit, last_evaluated_key=decode_cursor(page_query.cursor, scope),
                    **query_kwargs)
    items: Iterable[Any] = list(results)
    if resolve is not None:
        items = resolve(list(items))
    return {"items": [render(item) for item in items],
            "next_cursor": encode_cursor(results.last_evaluated_key, scope)}
