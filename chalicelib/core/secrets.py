"""Secrets on first use: from the environment, AWS Secrets Manager or SSM Parameter Store.

Nothing here runs at import, so a missing secret never stops a function from starting; the
first call that needs the secret fails instead (a 500 on that request, with the reason logged).

Where a secret comes from, first match wins (`NAME` is e.g. `JWT_SECRET`):
- `NAME` itself (the local stage and tests);
- `NAME_NAME`: a Secrets Manager secret id. Its `AWSCURRENT` version is the secret and its
  `AWSPREVIOUS` version (if any) the previous one, so `put-secret-value` rotates in one step;
- `NAME_PARAM`: an SSM parameter (SecureString), with `NAME_PREVIOUS_PARAM` for the old one.

Values from a store are cached per instance for `SECRET_CACHE_SECONDS` (default 300);
`refresh()` drops the cache early (a token signed with a key this instance does not know yet).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

MIN_SECRET_BYTES = 32
REFRESH_AT_MOST_EVERY_SECONDS = 10.0


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; raised at first use, not at import."""


@dataclass(frozen=True)
class SecretSource:
    """Where one secret lives, read from the environment when the settings load."""

    variable: str
    value: str | None = None
    previous_value: str | None = None
    secret_name: str | None = None
    param: str | None = None
    previous_param: str | None = None

    @classmethod
    def from_env(cls, variable: str, previous_variable: str | None = None) -> "SecretSource":
        env = os.environ
        return cls(
            variable=variable,
            value=env.get(variable) or None,
            previous_value=(env.get(previous_variable) or None) if previous_variable else None,
            secret_name=env.get(f"{variable}_NAME") or None,
            param=env.get(f"{variable}_PARAM") or None,
            previous_param=(env.get(f"{previous_variable}_PARAM") or None) if previous_variable else None,
        )

    @property
    def configured(self) -> bool:
        return bool(self.value or self.secret_name or self.param)


_cache: dict[SecretSource, tuple[float, tuple[str | None, str | None]]] = {}
_last_refresh = 0.0
_lock = threading.Lock()


def cache_seconds() -> float:
    return float(os.environ.get("SECRET_CACHE_SECONDS", "300"))


def resolve(source: SecretSource) -> tuple[str | None, str | None]:
    """(current, previous) for `source`; (None, None) when nothing is configured."""
    if source.value:
        return source.value, source.previous_value
    if not (source.secret_name or source.param):
        return None, source.previous_value
    now = time.monotonic()
    with _lock:
        hit = _cache.get(source)
        if hit is not None and now - hit[0] < cache_seconds():
            return hit[1]
    current, previous = _fetch(source)
    previous = source.previous_value or previous
    with _lock:
        _cache[source] = (now, (current, previous))
    return current, previous


def refresh() -> bool:
    """Forget cached store values (at most every few seconds, so bad tokens cannot hammer the
    store). True when the cache was dropped."""
    global _last_refresh
    now = time.monotonic()
    with _lock:
        if now - _last_refresh < REFRESH_AT_MOST_EVERY_SECONDS:
            return False
        _last_refresh = now
        _cache.clear()
    return True


def reset() -> None:
    """Tests: forget everything, including when the last refresh happened."""
    global _last_refresh
    with _lock:
        _cache.clear()
        _last_refresh = 0.0


def checked(variable: str, value: str | None) -> str | None:
    if value is not None and len(value.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"{variable} must be at least {MIN_SECRET_BYTES} bytes")
    return value


def _fetch(source: SecretSource) -> tuple[str, str | None]:
    """Raises ConfigError when the named secret does not exist (WeChat login then says 503)."""
    from . import aws  # deferred: boto3 only when a store is used

    if source.secret_name:
        manager = aws.client("secretsmanager")
        try:
            current = manager.get_secret_value(SecretId=source.secret_name)["SecretString"]
        except manager.exceptions.ResourceNotFoundException:
            raise ConfigError(f"{source.variable}: secret {source.secret_name!r} does not exist") from None
        try:
            previous = manager.get_secret_value(SecretId=source.secret_name,
                                                VersionStage="AWSPREVIOUS")["SecretString"]
        except manager.exceptions.ResourceNotFoundException:  # never rotated yet
            previous = None
        return current, previous
    ssm = aws.client("ssm")
    try:
        current = ssm.get_parameter(Name=source.param, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        raise ConfigError(f"{source.variable}: parameter {source.param!r} does not exist") from None
    previous = None
    if source.previous_param:
        previous = ssm.get_parameter(Name=source.previous_param, WithDecryption=True)["Parameter"]["Value"]
    return current, previous
