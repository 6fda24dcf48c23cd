"""Decode DynamoDB stream records into `Change`s and hand each to the capability that owns
its item type. Handlers are registered per item type (`on_change("member")`).

Delivery is at least once and ordered only per item key, so every handler must be
idempotent (deterministic ids + conditional writes). On the first failure the rest of the
batch is reported as failed (`batchItemFailures`), which keeps per-key order: Lambda (and
the local poller) redeliver from the lowest failed sequence number.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from pynamodb.models import Model

from .core.logs import get_logger

log = get_logger("streams")

ChangeHandler = Callable[["Change"], None]
_handlers: dict[tuple[str, str], list[ChangeHandler]] = {}

TTL_PRINCIPAL = "dynamodb.amazonaws.com"


@dataclass
class Change:
    event: str  # INSERT | MODIFY | REMOVE
    item_type: str
    new: Any  # model instance or None
    old: Any
    sequence: str
    ttl_expired: bool  # a REMOVE made by TTL, not by our code

    @property
    def item(self) -> Any:
        return self.new if self.new is not None else self.old


def on_change(table: str, item_type: str) -> Callable[[ChangeHandler], ChangeHandler]:
    def register(fn: ChangeHandler) -> ChangeHandler:
        _handlers.setdefault((table, item_type), []).append(fn)
        return fn

    return register


def handlers_for(table: str, item_type: str) -> list[ChangeHandler]:
    return _handlers.get((table, item_type), [])


def _image(root: type[Model], raw: dict[str, Any] | None) -> Any:
    if not raw:
        return None
    try:
        return root.from_raw_data(raw)
    except Exception:  # an item of a type this code does not know: nothing to do
        return None


def decode(root: type[Model], record: dict[str, Any]) -> Change:
    data = record["dynamodb"]
    raw = data.get("NewImage") or data.get("OldImage") or {}
    identity = record.get("userIdentity") or {}
    return Change(
        event=record["eventName"],
        item_type=(raw.get("type") or {}).get("S", ""),
        new=_image(root, data.get("NewImage")),
        old=_image(root, data.get("OldImage")),
        sequence=data["SequenceNumber"],
        ttl_expired=identity.get("principalId") == TTL_PRINCIPAL,
    )


def process_batch(table: str, root: type[Model], records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Run the handlers of every record; return Lambda's partial-batch response."""
    records = list(records)
    for position, record in enumerate(records):
        change = decode(root, record)
        try:
            for handler in handlers_for(table, change.item_type):
                handler(change)
        except Exception:
            log.exception("stream record failed", extra={"table": table, "sequence": change.sequence,
                                                         "item_type": change.item_type})
            failed = records[position:]
            return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failed]}
    return {"batchItemFailures": []}
