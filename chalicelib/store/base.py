"""PynamoDB roots for each table, and `bind()` that points them at a stage's tables.

Entities subclass a root with a discriminator (`type` attribute), so one table holds many
kinds of item and a query returns the right classes. PynamoDB caches a connection per model
and reads `Meta` lazily; `bind()` rewrites `Meta` and drops the cached connections, so tests
can switch tables without re-importing the app.
"""
from __future__ import annotations

import random
import time
from typing import Any, Callable, Iterator, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import VerboseClientError
from pynamodb.attributes import DiscriminatorAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model

from ..core import wire
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


CONFLICT_TRIES = 4  # a conflict lasts as long as the other transaction: milliseconds


class RetryingConnection(Connection):
    """Tries a call again when DynamoDB refused it only because another transaction held one of
    its items (`TransactionConflict`): nothing was written, so sending the same request again is
    safe, and this is the one layer every call passes. botocore does not retry it (it retries
    throttling and timeouts itself); conditions that failed are the caller's to judge."""

    @property
    def client(self):  # PynamoDB builds it lazily (and again after lost credentials)
        return wire.install(super().client)

    def _make_api_call(self, operation_name: str, operation_kwargs: dict) -> dict:
        for attempt in range(CONFLICT_TRIES):
            try:
                return super()._make_api_call(operation_name, operation_kwargs)
            except VerboseClientError as exc:
                if attempt == CONFLICT_TRIES - 1 or not _conflict_only(exc):
                    raise
            time.sleep(_conflict_pause(attempt))
        raise AssertionError("unreachable")


def _conflict_only(exc: VerboseClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code")
    if code == "TransactionConflictException":
        return True
    reasons = [r for r in exc.cancellation_reasons if r is not None]
    return code == "TransactionCanceledException" and bool(reasons) and all(
        r.code == "TransactionConflict" for r in reasons)


def _conflict_pause(attempt: int) -> float:
    """Full jitter, 10, 20, 40 ms ceilings (scaled down while faults are injected in tests)."""
    from . import faults

    plan = faults.active()
    return random.random() * 0.01 * 2 ** attempt * (plan.backoff if plan else 1.0)


_shared: dict[tuple[str | None, str | None], Connection] = {}


def shared_connection() -> Connection:
    """One PynamoDB connection (so one botocore client) for every model and transaction.
    PynamoDB would otherwise build a client per model class and per transaction: ~100 ms each."""
    key = (MainItem.Meta.region, MainItem.Meta.host)
    if key not in _shared:
        from . import faults

        faults.install_from_env()  # FAULTS (tests, simulator): off unless set
        _shared[key] = RetryingConnection(region=key[0], host=key[1], max_retry_attempts=5)
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


class BoardItem(SharedConnectionModel):
    """Root of the `boards` table (leaderboards; no stream): pk/sk plus the ranking index."""

    class Meta:
        table_name = "boards"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)
    by_gsi1 = Gsi1()


ROOTS: dict[str, type[Model]] = {"main": MainItem, "clicks": ClickItem, "control": ControlItem, "boards": BoardItem}


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


bind()  # the stage's tables, as soon as a model is imported (app.py imports none: cold start)


def get_many(wanted: list[tuple[type[Model], tuple[str, str]]]) -> dict[tuple[type[Model], tuple[str, str]], Any]:
    """Items of several models, in several tables, in one BatchGetItem (eventually consistent):
    {(model, key): item} for those that exist. PynamoDB batches per model; a request path that
    needs a few unrelated items up front (a sign-up: identity, code, click) waits once, not thrice."""
    requests: dict[str, dict[str, Any]] = {}
    for model, (pk, sk) in wanted:
        keys = requests.setdefault(model.Meta.table_name, {"Keys": []})["Keys"]
        if {"pk": {"S": pk}, "sk": {"S": sk}} not in keys:
            keys.append({"pk": {"S": pk}, "sk": {"S": sk}})
    raw: dict[tuple[str, str, str], dict[str, Any]] = {}  # (table, pk, sk) → item
    for attempt in range(BUSY_TRIES):
        if not requests:
            break
        answer = shared_connection()._make_api_call("BatchGetItem", {"RequestItems": requests})
        raw.update(((table, item["pk"]["S"], item["sk"]["S"]), item)
                   for table, items in answer.get("Responses", {}).items() for item in items)
        requests = answer.get("UnprocessedKeys") or {}
        if requests:
            time.sleep(_conflict_pause(attempt))
    if requests:  # throttled past the tries: the caller answers 503 `service_busy` (see `transient`)
        from botocore.exceptions import ClientError

        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "keys of a batch read left unprocessed"}}, "BatchGetItem")
    return {(model, key): model.from_raw_data(raw[(model.Meta.table_name, *key)])
            for model, key in wanted if (model.Meta.table_name, *key) in raw}


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


TRANSIENT_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
                   "TransactionConflictException", "TransactionInProgressException", "InternalServerError",
                   "ServiceUnavailable"}


def transient(exc: BaseException) -> bool:
    """True when DynamoDB failed for a passing reason (throttled, a conflict that outlasted the
    retries, a timeout or a lost connection): the same request may succeed in a moment. Follows
    the causes PynamoDB wraps around botocore's errors."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    seen: Any = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, (HTTPClientError, ConnectionError)):
            return True
        if isinstance(seen, ClientError):
            code = seen.response.get("Error", {}).get("Code")
            if code in TRANSIENT_CODES:
                return True
            reasons = [getattr(r, "code", None) for r in getattr(seen, "cancellation_reasons", None) or []]
            reasons += [r.get("Code") for r in seen.response.get("CancellationReasons") or []]
            reasons = [r for r in reasons if r not in (None, "None")]
            return code == "TransactionCanceledException" and bool(reasons) and all(
                r in ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded") for r in reasons)
        seen = getattr(seen, "cause", None) or seen.__cause__
    return False


BUSY_TRIES = 5
T = TypeVar("T")


def patiently(work: Callable[[], T], tries: int = BUSY_TRIES) -> T:
    """`work()`, tried again while DynamoDB refuses it for a passing reason (`transient`), with a
    growing random pause so threads that collided do not collide again. For bulk writes that are
    safe to repeat — each recognises its own earlier write — where a busy engine can outlast
    botocore's retries (throttling; DynamoDB Local's lock wait under many concurrent writers)."""
    from . import faults

    plan = faults.active()
    for attempt in range(tries):
        try:
            return work()
        except Exception as exc:
            if attempt == tries - 1 or not transient(exc):
                raise
        time.sleep(random.uniform(0, 0.05 * 2 ** attempt) * (plan.backoff if plan else 1.0))
    raise AssertionError("unreachable")


def transaction():
    """A PynamoDB TransactWrite on the main table's connection settings (≤ 100 items,
    never two operations on one item)."""
    from pynamodb.transactions import TransactWrite

    return TransactWrite(connection=shared_connection())
