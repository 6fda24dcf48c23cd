"""Stage configuration, read from the environment once and cached.

Every setting has a default that suits the `local` stage; deployed stages set the
environment in `.chalice/config.json` and the AWS template. Loading settings never fails:
secrets are resolved (and checked) on first use (`secrets.py`), so importing the app works on
any stage with any environment. Call `settings.cache_clear()` after changing the environment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from . import secrets
from .secrets import MIN_SECRET_BYTES, ConfigError, SecretSource  # noqa: F401  (re-exported)

LOCAL_JWT_SECRET = "local-dev-secret-change-me-0123456789abcdef"
LOCAL_BASE_URL = "http://127.0.0.1:{port}"


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
    jwt_source: SecretSource
    jwt_issuer: str
    jwt_audience: str
    token_ttl_seconds: int
    dev_login_enabled: bool
    wechat_api_base: str
    wechat_app_id: str
    wechat_source: SecretSource
    max_body_bytes: int
    public_base_url: str  # "" outside local when unset: links take the request's own URL
    default_landing_url: str
    mini_program_link: str  # "" unset: the hosted page's main button opens the campaign's landing URL
    cursor_secret_env: str | None
    rate_limit_per_minute: int
    campaign_cache_seconds: float
    fact_max_future_seconds: int
    log_level: str
    poster_image_hosts: str = ""  # comma-separated hosts campaign poster backgrounds may come from

    def table_name(self, logical: str) -> str:
        return f"{self.table_prefix}{logical}"

    @property
    def jwt_secret(self) -> str:
        current, _ = secrets.resolve(self.jwt_source)
        if current is None and self.stage == "local":
            current = LOCAL_JWT_SECRET
        if current is None:
            raise ConfigError("JWT_SECRET is not configured: set JWT_SECRET_NAME (Secrets Manager), "
                              "JWT_SECRET_PARAM (SSM Parameter Store) or JWT_SECRET")
        return secrets.checked("JWT_SECRET", current)

    @property
    def jwt_previous_secret(self) -> str | None:
        """The secret before the last rotation: tokens signed with it still verify."""
        return secrets.checked("JWT_PREVIOUS_SECRET", secrets.resolve(self.jwt_source)[1])

    @property
    def wechat_app_secret(self) -> str:
        """"" when unset or missing from the store: WeChat login then answers 503, not 500."""
        try:
            return secrets.resolve(self.wechat_source)[0] or ""
        except ConfigError:
            return ""

    @property
    def cursor_secret(self) -> str:
        # Cursors are signed with a key derived from the JWT secret unless one is given.
        return secrets.checked("CURSOR_SECRET", self.cursor_secret_env) or ("cursor:" + self.jwt_secret)


@lru_cache(maxsize=1)
def settings() -> Settings:
    stage = os.environ.get("STAGE", "local")
    is_local = stage == "local"
    local_base = LOCAL_BASE_URL.format(port=os.environ.get("PORT", "8000")) if is_local else ""
    return Settings(
        stage=stage,
        table_prefix=os.environ.get("TABLE_PREFIX", f"referral-{stage}-"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        ddb_endpoint=os.environ.get("DDB_ENDPOINT") or None,
        jwt_source=SecretSource.from_env("JWT_SECRET", "JWT_PREVIOUS_SECRET"),
        jwt_issuer=os.environ.get("JWT_ISSUER", "referral-service"),
        jwt_audience=os.environ.get("JWT_AUDIENCE", "referral-api"),
        token_ttl_seconds=int(os.environ.get("TOKEN_TTL_SECONDS", "7200")),
        dev_login_enabled=_flag("DEV_LOGIN_ENABLED", default=is_local),
        wechat_api_base=os.environ.get("WECHAT_API_BASE", "https://api.weixin.qq.com"),
        wechat_app_id=os.environ.get("WECHAT_APP_ID", ""),
        wechat_source=SecretSource.from_env("WECHAT_APP_SECRET"),
        max_body_bytes=int(os.environ.get("MAX_BODY_BYTES", str(64 * 1024))),
        public_base_url=(os.environ.get("PUBLIC_BASE_URL") or local_base).rstrip("/"),
        default_landing_url=os.environ.get("DEFAULT_LANDING_URL") or "https://shop.example.com/welcome",
        # The brand's mini-program: a weixin://dl/business/?appid=…&path=… scheme or an https URL
        # link (share/pages.py appends the referral). Used by the hosted landing page.
        mini_program_link=os.environ.get("MINI_PROGRAM_LINK", "").strip(),
        cursor_secret_env=os.environ.get("CURSOR_SECRET") or None,
        rate_limit_per_minute=int(os.environ.get("RATE_LIMIT_PER_MINUTE", "120")),
        # How stale a campaign read on the hot paths may be (clicks, lookups, sign-ups, stream
        # handlers): a change reaches every running instance within this time.
        campaign_cache_seconds=float(os.environ.get("CAMPAIGN_CACHE_SECONDS", "30")),
        # How far ahead of our clock a reported fact may be dated (the brand's clock may run fast).
        fact_max_future_seconds=int(os.environ.get("FACT_MAX_FUTURE_SECONDS", "300")),
        log_level=os.environ.get("LOG_LEVEL", "INFO"),
        # Besides each campaign's landing host (docs/posters.md).
        poster_image_hosts=os.environ.get("POSTER_IMAGE_HOSTS", ""),
    )


def logical_table_of(arn: str) -> str:
    """'arn:...:table/referral-dev-main/stream/…' → 'main' (the placeholder gives 'main' too)."""
    name = arn.split(":table/", 1)[-1].split("/", 1)[0]
    return name.rsplit("-", 1)[-1]
