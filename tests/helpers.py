"""Small helpers for tests: JSON requests with tokens, and DynamoDB call counting."""
from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Any


class Api:
    """`client.http` with JSON bodies and bearer tokens."""

    def __init__(self, chalice_client):
        self.chalice = chalice_client
        self.http = chalice_client.http

    def request(self, method: str, path: str, body: Any = None, token: str | None = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None):
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        return self.http.request(method, path, headers=all_headers, body=payload)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)


def token(sub: str, role: str = "member", **kw) -> str:
    from chalicelib.core.auth import issue_token

    return issue_token(sub, role, **kw)


class CallCounter:
    """Counts DynamoDB API calls (by operation) made through botocore, PynamoDB included."""

    def __init__(self):
        self.calls: list[str] = []
        self.refused: list[str] = []  # calls that raised (a cancelled transaction, a busy engine)

    def __call__(self, model, params, **kwargs):
        self.calls.append(model.name)

    def count(self, *operations: str) -> int:
        return sum(1 for c in self.calls if not operations or c in operations)

    def succeeded(self, *operations: str) -> int:
        """Calls that went through: what a test of how work is grouped should count, since a
        loaded engine refuses some transactions and they are tried again."""
        return self.count(*operations) - sum(1 for c in self.refused if not operations or c in operations)

    @property
    def writes(self) -> int:
        return self.count("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")

    @property
    def reads(self) -> int:
        return self.count("GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan")


@contextmanager
def count_dynamodb_calls():
    """Count every DynamoDB call made in the block, whichever client makes it."""
    from botocore.client import BaseClient

    counter = CallCounter()
    original = BaseClient._make_api_call

    def counting(self, operation_name, api_params):
        if self.meta.service_model.service_name != "dynamodb":
            return original(self, operation_name, api_params)
        counter.calls.append(operation_name)
        try:
            return original(self, operation_name, api_params)
        except Exception:
            counter.refused.append(operation_name)
            raise

    BaseClient._make_api_call = counting
    try:
        yield counter
    finally:
        BaseClient._make_api_call = original


def keep_main_records(monkeypatch) -> list[dict]:
    """Every main-table stream record the handlers run from now on, in order (to re-drive an old
    batch later, as the failure store would)."""
    from chalicelib import streams

    seen: list[dict] = []
    run_records = streams.run_records

    def keep(table, root, records, shard_id=None):
        records = list(records)
        seen.extend(records if table == "main" else [])
        return run_records(table, root, records, shard_id)

    monkeypatch.setattr(streams, "run_records", keep)
    return seen


def redrive_main(records: list[dict]) -> None:
    """Run `records` through the handlers as a re-drive from the failure store does."""
    from chalicelib import streams
    from chalicelib.store.base import MainItem

    outcome = streams.run_records("main", MainItem, records, shard_id=streams.REDRIVE_LANE + "test")
    assert not outcome.failed, outcome.error
