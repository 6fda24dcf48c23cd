"""Declared request schemas (pydantic): shared field types and the base classes.

Bodies refuse unknown fields (mass assignment: a body cannot smuggle `role`, `points` or
`member_id` into a write) and are strict about types: money is a whole number of fen, never a
float or a string.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from .currencies import is_currency

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
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_iso_4217)]
IsoTime = Annotated[str, StringConstraints(max_length=40, pattern=r"^\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:?\d{2})?$")]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=2000)


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore", str_max_length=2048)
