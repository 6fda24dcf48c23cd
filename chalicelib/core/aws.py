"""Lazily created, cached boto3 clients (import stays cheap: cold start).

Tests and the local runtime call `reset()` after pointing the settings elsewhere.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from botocore.config import Config as BotoConfig

from .config import settings

_BOTO_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=2, read_timeout=10)


@lru_cache(maxsize=None)
def client(service: str) -> Any:
    import boto3  # deferred: boto3 import costs ~100 ms of cold start

    cfg = settings()
    endpoint = cfg.ddb_endpoint if service in ("dynamodb", "dynamodbstreams") else None
    made = boto3.session.Session().client(service, region_name=cfg.region, endpoint_url=endpoint, config=_BOTO_CONFIG)
    if service in ("dynamodb", "dynamodbstreams"):
        from . import wire

        wire.install(made)  # items parsed as they come (a fifth of the stream CPU otherwise)
    return made


def dynamodb() -> Any:
    return client("dynamodb")


def streams() -> Any:
    return client("dynamodbstreams")


def reset() -> None:
    client.cache_clear()
