"""Program items (main table).

Access patterns:
- the program as last put: GetItem pk=PROGRAM, sk=CURRENT
- every version, oldest first (few: a brand changes its program a few times a year):
  Query pk=PROGRAM, sk begins_with V#  — sk is V#<effective_from>#<version:06d>
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..store.base import MainItem

PK = "PROGRAM"


class Program(MainItem, discriminator="program"):
    version = NumberAttribute()
    rules = UnicodeAttribute()  # JSON of rules.ProgramRules
    effective_from = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    updated_by = UnicodeAttribute()

    @classmethod
    def key(cls) -> tuple[str, str]:
        return PK, "CURRENT"


class ProgramVersion(MainItem, discriminator="program_version"):
    version = NumberAttribute()
    rules = UnicodeAttribute()
    effective_from = UnicodeAttribute()
    created_at = UnicodeAttribute()

    @classmethod
    def key(cls, effective_from: str, version: int) -> tuple[str, str]:
        return PK, f"V#{effective_from}#{version:06d}"
