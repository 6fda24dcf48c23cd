"""PynamoDB roots for each table, and `bind()` that points them at a stage's tables.

Entities subclass a root with a discriminator (`type` attribute), so one table holds many
kinds of item and a query returns the right classes. PynamoDB caches a connection per model
and reads `Meta` lazily; `bind()` rewrites `Meta` and drops the cached connections, so tests
can switch tables without re-importing the app.
"""
from __future__ import annotations

from typing import Iterator

from pynamodb.connection import Connection
from pynamodb.attributes import DiscriminatorAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

from ..core.config import settings


class Gsi1(GlobalSecondaryIndex):
    """A referrer's downline, fraud flags by status, the audit log (see tables.MAIN)."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex):
    """Sweeps: pending ledger entries by release time, members by last activity."""

    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class Lsi1(LocalSecondaryIndex):
    """A member's ledger by time."""

    class Meta:
        index_name = "lsi1"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    lsi1sk = UnicodeAttribute(range_key=True)


_shared: dict[tuple[str | None, str | None], Connection] = {}


def shared_connection() -> Connection:
    """One PynamoDB connection (so one botocore client) for every model and transaction.
    PynamoDB would otherwise build a client per model class and per transaction: ~100 ms each."""
    key = (MainItem.Meta.region, MainItem.Meta.host)
    if key not in _shared:
        _shared[key] = Connection(region=key[0], host=key[1], max_retry_attempts=5)
    return _shared[key]


class SharedConnectionModel(Model):
    class Meta:
        abstract = True

    @classmethod
    def _get_connection(cls):
        table = super()._get_connection()
        shared = shared_connection()
        if table.connection is not shared:
            for name, meta in table.connection._tables.items():
                if name not in shared._tables:
                    shared.add_meta_table(meta)
            table.connection = shared
        return table


class MainItem(SharedConnectionModel):
    """Root of every item in the `main` table (pk/sk plus two generic GSI key pairs)."""

    class Meta:
        table_name = "main"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    lsi1sk = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    by_gsi1 = Gsi1()
    by_gsi2 = Gsi2()
    by_lsi1 = Lsi1()


class ClickItem(SharedConnectionModel):
    class Meta:
        table_name = "clicks"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    expires_at = NumberAttribute(null=True)


class ControlItem(SharedConnectionModel):
    class Meta:
        table_name = "control"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    expires_at = NumberAttribute(null=True)


ROOTS: dict[str, type[Model]] = {"main": MainItem, "clicks": ClickItem, "control": ControlItem}


def _subclasses(cls: type) -> Iterator[type]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _subclasses(sub)


def bind(prefix: str | None = None, host: str | None = None, region: str | None = None) -> None:
    """Point every model at `<prefix><logical>` on `host` (None: AWS)."""
    cfg = settings()
    prefix = cfg.table_prefix if prefix is None else prefix
    host = cfg.ddb_endpoint if host is None else host
    region = region or cfg.region
    _shared.clear()
    for logical, root in ROOTS.items():
        root.Meta.table_name = prefix + logical
        root.Meta.host = host
        root.Meta.region = region
        for model in _subclasses(root):
            model._connection = None


def table_name(logical: str) -> str:
    return ROOTS[logical].Meta.table_name


def condition_failed(exc: Exception) -> bool:
    """True when a PynamoDB write failed only because its condition did not hold."""
    return getattr(exc, "cause_response_code", None) == "ConditionalCheckFailedException"


def cancelled_by_condition(exc: Exception) -> bool:
    """True when a transaction was cancelled because one of its conditions did not hold."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and getattr(r, "code", None) == "ConditionalCheckFailed" for r in reasons)


def cancelled_by_conflict(exc: Exception) -> bool:
    """True when DynamoDB cancelled a transaction because another one was changing the same
    item (`TransactionConflict`): nothing was written, and trying again is right. The local
    engines never raise it; DynamoDB does under contention."""
    reasons = getattr(exc, "cancellation_reasons", None) or []
    return any(r is not None and getattr(r, "code", None) == "TransactionConflict" for r in reasons)


def transaction():
    """A PynamoDB TransactWrite on the main table's connection settings (≤ 100 items,
    never two operations on one item)."""
    from pynamodb.transactions import TransactWrite

    return TransactWrite(connection=shared_connection())
