"""Secrets on first use from Secrets Manager or SSM Parameter Store (on moto), and rotation."""
from __future__ import annotations

import jwt
import pytest
from moto import mock_aws

from chalicelib.core import auth, aws, secrets
from chalicelib.core.config import ConfigError, settings
from chalicelib.core.errors import Unauthorized

V1, V2, V3 = ("first-secret-" + "a" * 32), ("second-secret-" + "b" * 32), ("third-secret-" + "c" * 32)


@pytest.fixture
def deployed(monkeypatch):
    """A deployed stage's environment: no JWT_SECRET, only the name of where it lives."""
    monkeypatch.setenv("STAGE", "dev")
    for name in ("JWT_SECRET", "JWT_PREVIOUS_SECRET", "JWT_SECRET_NAME", "JWT_SECRET_PARAM",
                 "JWT_PREVIOUS_SECRET_PARAM", "WECHAT_APP_SECRET", "WECHAT_APP_SECRET_NAME", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)

    def reload() -> None:
        settings.cache_clear()
        secrets.reset()
        aws.reset()

    with mock_aws():
        reload()
        yield reload
    monkeypatch.undo()
    reload()


def _foreign_token(secret: str, sub: str = "m-1") -> str:
    """A token minted by another instance (or the token tool) that already has `secret`."""
    now = auth.clock.epoch()
    claims = {"sub": sub, "role": "member", "iss": "referral-service", "aud": "referral-api",
              "iat": now, "exp": now + 600}
    return jwt.encode(claims, secret, algorithm="HS256", headers={"kid": auth.key_id(secret)})


def test_jwt_secret_is_read_from_secrets_manager_on_first_use_and_cached(deployed, monkeypatch):
    monkeypatch.setenv("JWT_SECRET_NAME", "referral/dev/jwt")
    deployed()
    loaded = settings()  # loading reads no secret: nothing exists yet
    manager = aws.client("secretsmanager")
    manager.create_secret(Name="referral/dev/jwt", SecretString=V1)
    token = auth.issue_token("m-1", "member")
    assert auth.verify_token(token).sub == "m-1"
    assert jwt.get_unverified_header(token)["kid"] == auth.key_id(V1)
    manager.put_secret_value(SecretId="referral/dev/jwt", SecretString=V2)
    assert loaded.jwt_secret == V1  # cached for SECRET_CACHE_SECONDS: no store call per request


def test_rotation_keeps_old_tokens_valid_and_accepts_new_ones_at_once(deployed, monkeypatch):
    monkeypatch.setenv("JWT_SECRET_NAME", "referral/dev/jwt")
    deployed()
    manager = aws.client("secretsmanager")
    manager.create_secret(Name="referral/dev/jwt", SecretString=V1)
    old_token = auth.issue_token("m-old", "member")

    manager.put_secret_value(SecretId="referral/dev/jwt", SecretString=V2)  # rotation: V1 becomes AWSPREVIOUS
    # Another instance already signs with V2; this one still has V1 cached and re-reads the store.
    assert auth.verify_token(_foreign_token(V2, "m-new")).sub == "m-new"
    assert auth.verify_token(old_token).sub == "m-old"  # the previous secret still verifies
    assert jwt.get_unverified_header(auth.issue_token("m-2", "member"))["kid"] == auth.key_id(V2)

    manager.put_secret_value(SecretId="referral/dev/jwt", SecretString=V3)  # next rotation retires V1
    secrets.reset()
    with pytest.raises(Unauthorized):
        auth.verify_token(old_token)


def test_unknown_key_ids_re_read_the_store_at_most_every_few_seconds(deployed, monkeypatch):
    monkeypatch.setenv("JWT_SECRET_NAME", "referral/dev/jwt")
    deployed()
    aws.client("secretsmanager").create_secret(Name="referral/dev/jwt", SecretString=V1)
    calls = []
    real = secrets._fetch
    monkeypatch.setattr(secrets, "_fetch", lambda source: calls.append(source) or real(source))
    for _ in range(5):
        with pytest.raises(Unauthorized):
            auth.verify_token(_foreign_token("forged-secret-" + "f" * 32))
    assert len(calls) == 2  # the first read, then one refresh for the unknown key id


def test_jwt_secret_from_ssm_parameters(deployed, monkeypatch):
    monkeypatch.setenv("JWT_SECRET_PARAM", "/referral/dev/jwt")
    monkeypatch.setenv("JWT_PREVIOUS_SECRET_PARAM", "/referral/dev/jwt-previous")
    deployed()
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/referral/dev/jwt", Value=V2, Type="SecureString")
    ssm.put_parameter(Name="/referral/dev/jwt-previous", Value=V1, Type="SecureString")
    assert settings().jwt_secret == V2 and settings().jwt_previous_secret == V1
    assert auth.verify_token(_foreign_token(V1)).sub == "m-1"


def test_a_missing_secret_fails_on_first_use_naming_it(deployed, monkeypatch):
    monkeypatch.setenv("JWT_SECRET_NAME", "referral/dev/absent")
    deployed()
    with pytest.raises(ConfigError, match="referral/dev/absent"):
        settings().jwt_secret
    monkeypatch.delenv("JWT_SECRET_NAME")
    deployed()
    with pytest.raises(ConfigError, match="JWT_SECRET_NAME"):
        settings().jwt_secret


def test_wechat_secret_from_secrets_manager_and_absent_means_not_configured(deployed, monkeypatch):
    monkeypatch.setenv("WECHAT_APP_SECRET_NAME", "referral/dev/wechat")
    deployed()
    assert settings().wechat_app_secret == ""  # WeChat login answers 503 provider_not_configured
    aws.client("secretsmanager").create_secret(Name="referral/dev/wechat", SecretString="wx-app-secret")
    secrets.reset()
    assert settings().wechat_app_secret == "wx-app-secret"


def test_deployed_stages_never_default_share_links_to_localhost(deployed, monkeypatch):
    assert settings().public_base_url == ""  # links then take the API's own URL (test_package)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://ref.brand.cn/")
    deployed()
    assert settings().public_base_url == "https://ref.brand.cn"
    monkeypatch.setenv("STAGE", "local")
    monkeypatch.delenv("PUBLIC_BASE_URL")
    monkeypatch.setenv("PORT", "8123")
    deployed()
    assert settings().public_base_url == "http://127.0.0.1:8123"
