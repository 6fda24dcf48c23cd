"""Stage configuration, read from the environment once and cached.

Every setting has a default that suits the `local` stage; deployed stages set the
environment in `.chalice/config.json` (secrets come from the environment, never the repo).
Call `settings.cache_clear()` after changing the environment (tests do).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

LOCAL_JWT_SECRET = "local-dev-secret-change-me-0123456789abcdef"
MIN_SECRET_BYTES = 32


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; raised at first use, not at import."""


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    stage: str
    table_prefix: str
    region: str
    ddb_endpoint: str | None
    jwt_secret: str
    jwt_previous_secret: str | None
    jwt_issuer: str
    jwt_audience: str
    token_ttl_seconds: int
    dev_login_enabled: bool
    wechat_api_base: str
    wechat_app_id: str
    wechat_app_secret: str
    max_body_bytes: int
    public_base_url: str
    default_landing_url: str
    cursor_secret: str
    rate_limit_per_minute: int
    campaign_cache_seconds: float
    fact_max_future_seconds: int
    log_level: str

    def table_name(self, logical: str) -> str:
        return f"{self.table_prefix}{logical}"


@lru_cache(maxsize=1)
def settings() -> Settings:
    stage = os.environ.get("STAGE", "local")
    is_local = stage == "local"
    secret = os.environ.get("JWT_SECRET") or (LOCAL_JWT_SECRET if is_local else "")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    previous = os.environ.get("JWT_PREVIOUS_SECRET") or None
    if previous and len(previous.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"JWT_PREVIOUS_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    cursor_secret = os.environ.get("CURSOR_SECRET")
    if cursor_secret and len(cursor_secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"CURSOR_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    return Settings(
        stage=stage,
        table_prefix=os.environ.get("TABLE_PREFIX", f"referral-{stage}-"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        ddb_endpoint=os.environ.get("DDB_ENDPOINT") or None,
        jwt_secret=secret,
        jwt_previous_secret=previous,
        jwt_issuer=os.environ.get("JWT_ISSUER", "referral-service"),
        jwt_audience=os.environ.get("JWT_AUDIENCE", "referral-api"),
        token_ttl_seconds=int(os.environ.get("TOKEN_TTL_SECONDS", "7200")),
        dev_login_enabled=_flag("DEV_LOGIN_ENABLED", default=is_local),
        wechat_api_base=os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com"),
        wechat_app_id=os.environ.get("WECHAT_APP_ID", ""),
        wechat_app_secret=os.environ.get("WECHAT_APP_SECRET", ""),
        max_body_bytes=int(os.environ.get("MAX_BODY_BYTES", str(64 * 1024))),
        public_base_url=os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
        default_landing_url=os.environ.get("DEFAULT_LANDING_URL", "https://shop.example.com/welcome"),
        # Cursors are signed with a key derived from the JWT secret unless one is given.
        cursor_secret=cursor_secret or ("cursor:" + secret),
        rate_limit_per_minute=int(os.environ.get("RATE_LIMIT_PER_MINUTE", "120")),
        # How stale a campaign read on the hot paths may be (clicks, lookups, sign-ups, stream
        # handlers): a change reaches every running instance within this time.
        campaign_cache_seconds=float(os.environ.get("CAMPAIGN_CACHE_SECONDS", "30")),
        # How far ahead of our clock a reported fact may be dated (the brand's clock may run fast).
        fact_max_future_seconds=int(os.environ.get("FACT_MAX_FUTURE_SECONDS", "300")),
        log_level=os.environ.get("LOG_LEVEL", "INFO"),
    )


def stream_arn(logical_table: str) -> str:
    """The stream ARN a handler subscribes to. Chalice needs it at import and packaging time,
    so a missing variable yields a placeholder naming the table instead of failing every
    function (the local runtime matches handlers to tables by that name)."""
    variable = f"{logical_table.upper()}_STREAM_ARN"
    placeholder = f"arn:aws:dynamodb:local:000000000000:table/{logical_table}/stream/placeholder"
    return os.environ.get(variable, placeholder)


def logical_table_of(arn: str) -> str:
    """'arn:...:table/referral-dev-main/stream/…' → 'main' (the placeholder gives 'main' too)."""
    name = arn.split(":table/", 1)[-1].split("/", 1)[0]
    return name.rsplit("-", 1)[-1]
