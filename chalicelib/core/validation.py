"""Declared request schemas (pydantic): shared field types and the base classes.

Bodies refuse unknown fields (mass assignment: a body cannot smuggle `role`, `points` or
`member_id` into a write) and are strict about types: money is a whole number of fen, never a
float or a string.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from . import clock
from .config import settings
from .currencies import MINOR_UNITS, is_currency


def _iso_4217(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency a shop takes (XXX, XTS and metals are not)")
    return code


MAX_AMOUNT_FEN = 100_000_000_00  # 100 million yuan: anything above is a typo, not an order

AmountFen = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT_FEN)]
PositiveFen = Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT_FEN)]
Points = Annotated[int, Field(strict=True, ge=-10_000_000, le=10_000_000)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                      pattern=r"^[A-Za-z0-9_\-.:@#]+$")]
# The pattern tells the document what stripping means (a blank string is empty, hence refused).
# A JSON Schema `\s` is ECMAScript's, which misses whitespace Python strips (\x1c-\x1f, \x85).
SHORT_TEXT_PATTERN = r"[^\s\x1c-\x1f\x85]"
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                             pattern=SHORT_TEXT_PATTERN)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_iso_4217),
                     WithJsonSchema({"type": "string", "enum": sorted(MINOR_UNITS)})]

# Dates: one accepted range for every time the API takes. Before 2000 there were no members and
# no orders; after 2100 is a typo. Facts (sign-ups, purchases, refunds) may not lie in the future
# beyond the clock skew between the brand's backend and us (FACT_MAX_FUTURE_SECONDS, 5 minutes).
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
_ISO_SHAPE = r"^20\d{2}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$"


def _instant(text: str) -> str:
    """A real, in-range moment, normalised to the stored form (UTC, microseconds, `Z`)."""
    try:
        moment = clock.parse(text)
    except (ValueError, OverflowError):  # 2026-02-30, T25:00, or an offset past year 1 / 9999
        raise PydanticCustomError("date_invalid", "not a valid date and time (ISO 8601, e.g. "
                                  "2026-05-01T12:00:00+08:00)") from None
    if not EARLIEST <= moment < LATEST:
        raise PydanticCustomError("date_out_of_range", f"must lie between {EARLIEST:%Y-%m-%d} and "
                                  f"{LATEST:%Y-%m-%d} (UTC)")
    return clock.iso(moment)


def _not_in_future(stored: str) -> str:
    skew = settings().fact_max_future_seconds
    if clock.parse(stored) > clock.now() + timedelta(seconds=skew):
        raise PydanticCustomError("date_in_future", f"lies in the future (more than {skew} s from now)")
    return stored


_DATE_TIME_SCHEMA = WithJsonSchema({"type": "string", "format": "date-time", "maxLength": 40,
                                    "pattern": _ISO_SHAPE})
# Any time the API takes (campaign start and end); stored as UTC `...Z`.
Instant = Annotated[str, StringConstraints(max_length=40, pattern=_ISO_SHAPE), AfterValidator(_instant),
                    _DATE_TIME_SCHEMA]
# When a fact happened: an Instant that is not in the future.
FactTime = Annotated[Instant, AfterValidator(_not_in_future)]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as Asia/Shanghai") from None
    return value


class _ZoneNames:
    """The documented schema of a time zone: every IANA name, listed when a document is built
    (listing them reads the whole tz database, which an import of the app should not pay)."""

    @staticmethod
    def __get_pydantic_json_schema__(core_schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "string", "maxLength": 64, "enum": sorted(available_timezones())}


# A calendar's time zone (campaign days, program reviews and quiet hours).
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_zone), _ZoneNames]


# defer_build: a model's validator is built when it first validates (or is documented), not at
# import: every function imports every schema, and building them was the largest part of our import.
class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2000, defer_build=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=2048, defer_build=True)
