"""Pure helpers for rows: parsing with the live schemas, digests, duplicates, rejections, and
the order in which members can be created (referrers before referees). No I/O."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core.http import validation_details
from ..i18n import t


def rejection(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "message": message, "details": details}


def digest(row: BaseModel, **extra: Any) -> str:
    """What a re-sent row is compared with: its values as parsed (defaults left out)."""
    values = {**row.model_dump(exclude_none=True, exclude_defaults=True), **extra}
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


@dataclass
class Parsed:
    """A call's rows: one to write per key (`rows`, by index), the rest judged against it."""

    rows: dict[int, BaseModel] = field(default_factory=dict)
    errors: dict[int, dict[str, Any]] = field(default_factory=dict)
    repeats: dict[int, tuple[int, BaseModel]] = field(default_factory=dict)  # index → (key's first row, row)


def parse(model: type[BaseModel], key_field: str, raw_rows: list[Any]) -> Parsed:
    parsed, first = Parsed(), {}
    for index, raw in enumerate(raw_rows):
        if not isinstance(raw, dict):
            parsed.errors[index] = rejection("validation_failed", t("a row must be a JSON object"))
            continue
        try:
            row = model.model_validate(raw)
        except ValidationError as exc:
            parsed.errors[index] = rejection("validation_failed", t("invalid row"), **validation_details(exc))
            continue
        key = str(getattr(row, key_field)).upper() if key_field == "code" else getattr(row, key_field)
        if key in first:
            parsed.repeats[index] = (first[key], row)
        else:
            first[key] = index
            parsed.rows[index] = row
    return parsed


def judge_repeats(parsed: Parsed, errors: dict[int, dict[str, Any]]) -> None:
    """A key's later rows in the same call: the same values share the first row's fate; other
    values are a conflict (two stories about one key), whatever became of the first."""
    for index, (first, row) in parsed.repeats.items():
        if digest(parsed.rows[first]) != digest(row):
            errors[index] = rejection("row_conflict", t("an earlier row of this call has the same key with other values"),
                                      row=first)
        elif first in errors:
            errors[index] = errors[first]


def waves(referrer_of: dict[str, str | None], ready: set[str]) -> tuple[list[list[str]], dict[str, str]]:
    """Members of one call in creation order: each wave's referrers exist before it starts.

    `referrer_of` maps each new member to their referrer (None: no referrer); `ready` holds the
    referrers that already exist. Returns the waves and, for members that can never be created,
    why: `would_create_cycle` or `referrer_unknown` (a referrer neither stored nor in the call,
    or in the call but not created).

    >>> waves({"a": None, "b": "a", "c": "b", "x": "y", "y": "x", "z": "q"}, set())
    ([['a'], ['b'], ['c']], {'x': 'would_create_cycle', 'y': 'would_create_cycle', 'z': 'referrer_unknown'})
    """
    done, order, left = set(ready), [], dict(referrer_of)
    while left:
        wave = sorted(m for m, r in left.items() if r is None or r in done)
        if not wave:
            break
        order.append(wave)
        done.update(wave)
        for member in wave:
            del left[member]
    return order, {member: _why(member, left) for member in left}


def _why(member: str, left: dict[str, str | None]) -> str:
    seen, at = set(), left[member]
    while at in left and at not in seen:
        if at == member:
            return "would_create_cycle"
        seen.add(at)
        at = left[at]
    return "referrer_unknown"
