"""One suite, two backends: BACKEND=moto (in-process) or BACKEND=ddblocal (DynamoDB Local,
started once per session on a free port). Every test gets fresh tables: a new moto world, or
a new table prefix on DynamoDB Local, so stream records never leak between tests.
"""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKEND = os.environ.get("BACKEND", "moto")
if BACKEND not in ("moto", "ddblocal"):
    raise SystemExit(f"BACKEND must be moto or ddblocal, not {BACKEND!r}")

# The environment is fixed before the app is imported (PynamoDB and Chalice read it early).
os.environ.update({
    "STAGE": "local",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",  # moto's stream endpoint (see PITFALLS)
    "RATE_LIMIT_PER_MINUTE": "1000000",
    "PUBLIC_BASE_URL": "https://ref.example.com",
    "LOG_LEVEL": "WARNING",
})
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("DDB_ENDPOINT", None)

# Stream handlers run in the order they were registered. Import the app before any test module
# imports a capability directly, so one file or the whole suite runs them in the deployed order
# (the cost tests count calls that depend on it).
import app  # noqa: E402,F401

_prefixes = (f"t{n}-" for n in itertools.count(1))


def pytest_report_header(config):
    return f"backend: {BACKEND}  ({'moto, in-process' if BACKEND == 'moto' else 'DynamoDB Local'})"


def pytest_configure(config):
    config.addinivalue_line("markers", "ddblocal_only: needs DynamoDB Local (real concurrency, validation)")


def pytest_collection_modifyitems(config, items):
    if BACKEND != "ddblocal":
        skip = pytest.mark.skip(reason="needs DynamoDB Local; runs in the BACKEND=ddblocal pass")
        for item in items:
            if "ddblocal_only" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def ddb_endpoint():
    if BACKEND != "ddblocal":
        yield None
        return
    from infra.local import ddblocal

    port = ddblocal.free_port()
    process = ddblocal.start(port)
    yield f"http://127.0.0.1:{port}"
    ddblocal.stop(process)


@pytest.fixture
def backend(ddb_endpoint, monkeypatch):
    """Fresh tables on the selected backend, models bound to them, `default` campaign seeded.
    moto is not thread-safe: on moto, work the service would spread over threads runs in turn."""
    from chalicelib.core import aws, clock, ratelimit, revocation
    from chalicelib.core.config import settings
    from chalicelib.members import service as member_service
    from chalicelib.rewards import sweeps
    from chalicelib.webhooks import delivery
    from infra.local import stream_poller

    monkeypatch.setattr(member_service, "new_member_id", _reproducible_member_ids())
    if BACKEND == "moto":
        monkeypatch.setattr(sweeps, "run_shards", sweeps.in_turn)
        monkeypatch.setattr(delivery, "run_senders", delivery.in_turn)
        monkeypatch.setattr(stream_poller, "run_lanes", stream_poller.in_turn)

    if ddb_endpoint:
        os.environ["DDB_ENDPOINT"] = ddb_endpoint
    settings.cache_clear()
    aws.reset()
    ratelimit.reset()
    revocation.reset()
    clock.reset()
    prefix = next(_prefixes)
    if BACKEND == "moto":
        from moto import mock_aws

        from tests.moto_fixes import streams_survive_cancelled_transactions

        with mock_aws(), streams_survive_cancelled_transactions():
            _prepare(prefix)
            yield prefix
    else:
        _prepare(prefix)
        yield prefix
        _drop_tables(prefix)
    clock.reset()


def _drop_tables(prefix: str) -> None:
    """DynamoDB Local keeps every table (and its stream) of the session in one engine: a test
    that wrote 10,000 rows would slow every later one. A test's tables go when it ends."""
    from chalicelib.core import aws

    client = aws.dynamodb()
    for page in client.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            if name.startswith(prefix):
                client.delete_table(TableName=name)


def _reproducible_member_ids():
    """Member ids are random in the service; in tests they are derived from the identity (a second
    member of the same identity, after an erasure, gets the next one), so that whatever depends on
    id order — ties on a board, shards — is the same on every run and a failure reproduces."""
    import hashlib

    made: dict[str, int] = {}

    def new_member_id(provider: str, subject: str) -> str:
        identity = f"{provider}:{subject}"
        made[identity] = made.get(identity, -1) + 1
        seed = identity if made[identity] == 0 else f"{identity}#{made[identity]}"
        return "m_" + hashlib.sha256(seed.encode()).hexdigest()[:20]

    return new_member_id


def _prepare(prefix: str) -> None:
    from chalicelib import bootstrap
    from chalicelib.campaigns.service import clear_caches
    from chalicelib.core import aws
    from chalicelib.program import service as program
    from chalicelib.webhooks import subscriptions

    clear_caches()
    program.clear_caches()
    subscriptions.clear_cache()
    os.environ["TABLE_PREFIX"] = prefix
    from chalicelib.core.config import settings

    settings.cache_clear()
    bootstrap.prepare(aws.dynamodb(), prefix)


@pytest.fixture
def app(backend):
    from app import app as chalice_app

    return chalice_app


@pytest.fixture
def client(app):
    from chalice.test import Client

    from infra.local.gateway import JsonNotFoundGateway
    from tests.helpers import Api

    with Client(app, stage_name="local", project_dir=str(ROOT)) as chalice_client:
        http = chalice_client.http
        http._local_gateway = JsonNotFoundGateway(app, http._config)
        yield Api(chalice_client)


@pytest.fixture
def streams(app):
    """Drives the stream handlers exactly as the local runtime does."""
    from chalicelib.core import aws
    from chalicelib.store.base import table_name
    from infra.local.stream_poller import StreamPoller

    return StreamPoller(app, aws.dynamodb(), aws.streams(), table_name)


@pytest.fixture
def configure(monkeypatch):
    """Set (or, with None, unset) environment variables and reload settings; undone afterwards."""
    from chalicelib.core import ratelimit
    from chalicelib.core.config import settings

    def apply(**values: str | None) -> None:
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        settings.cache_clear()
        settings()  # load now, outside a request: the test client overlays the stage's env there
        ratelimit.reset()

    yield apply
    monkeypatch.undo()
    settings.cache_clear()


_registered: set[tuple[int, int]] = set()


def with_test_routes(app, routes):
    """Register a test-only Routes blueprint on the app once (before a client is made)."""
    if (id(app), id(routes)) not in _registered:
        app.register_blueprint(routes.blueprint)
        _registered.add((id(app), id(routes)))
    return app
