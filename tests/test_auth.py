"""Bearer tokens and roles on real requests through the Chalice test client: every way a token
can be bad is a 401 in the error envelope, the wrong role a 403, admin acts as ops, and the
secret can rotate with two keys valid at once."""
from __future__ import annotations

import base64
import json
from datetime import timedelta

import jwt
import pytest

from tests.conftest import with_test_routes

from chalicelib.core import clock
from chalicelib.core.auth import MEMBER, OPS, SERVICE, key_id
from chalicelib.core.config import ConfigError, settings
from chalicelib.core.http import Req, Routes
from tests.helpers import token

OTHER_SECRET = "another-secret-that-is-long-enough-0123456789"
OLD_SECRET = "the-old-secret-that-is-long-enough-0123456789"
NEW_SECRET = "the-new-secret-that-is-long-enough-9876543210"

# Test-only routes: they exercise the role mechanism independently of any capability's routes.
routes = Routes("tests.test_auth")


@routes.get("/test/auth/whoami", roles=(MEMBER, SERVICE, OPS), summary="test only: who is calling")
def whoami(req: Req) -> dict:
    return {"sub": req.principal.sub, "role": req.principal.role}


@routes.get("/test/auth/ops-only", roles=(OPS,), summary="test only: an ops route")
def ops_only(req: Req) -> dict:
    return {"sub": req.principal.sub, "role": req.principal.role}


@pytest.fixture
def app(app):
    """The app with the test routes (registered before the client exists)."""
    return with_test_routes(app, routes)


@pytest.fixture
def env(configure):
    return configure




def claims(**changes) -> dict:
    cfg = settings()
    now = clock.epoch()
    base = {"sub": "m_alice", "role": MEMBER, "iss": cfg.jwt_issuer, "aud": cfg.jwt_audience,
            "iat": now, "exp": now + 600}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}  # `...` removes a claim


def sign(payload: dict, secret: str | None = None, algorithm: str = "HS256", kid: str | None = "current") -> str:
    secret = secret or settings().jwt_secret
    headers = {"kid": key_id(settings().jwt_secret) if kid == "current" else kid} if kid else None
    return jwt.encode(payload, secret, algorithm=algorithm, headers=headers)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def assert_envelope(response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.body
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    assert b"Traceback" not in response.body


def call(client, token_value: str | None = None, path: str = "/test/auth/whoami", authorization: str | None = None):
    headers = {"Authorization": authorization} if authorization is not None else {}
    return client.get(path, token=token_value, headers=headers)


# --- good tokens ------------------------------------------------------------------------------

def test_a_valid_token_reaches_the_view(client):
    r = call(client, token("m_alice"))
    assert r.status_code == 200, r.body
    assert r.json_body == {"sub": "m_alice", "role": MEMBER}


def test_a_little_clock_skew_is_tolerated(client):
    now = clock.epoch()
    assert call(client, sign(claims(exp=now - 10))).status_code == 200
    assert call(client, sign(claims(iat=now + 10))).status_code == 200


def test_tokens_follow_the_project_clock(client):
    """Tests and demos move the clock; tokens minted after a move verify, older ones expire."""
    early = token("m_alice")  # 2 h lifetime
    clock.advance(timedelta(days=3))
    assert call(client, token("m_alice")).status_code == 200
    assert_envelope(call(client, early), 401, "token_expired")


# --- bad tokens: 401 --------------------------------------------------------------------------

def _not_yet_valid_nbf():
    return sign(claims(nbf=clock.epoch() + 3600))


def _tampered():
    header, payload, signature = token("m_alice").split(".")
    forged = b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "role": "admin"})
    return f"{header}.{forged}.{signature}"


def _alg_none():
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."


BAD_TOKENS = {
    "expired": lambda: sign(claims(iat=clock.epoch() - 7200, exp=clock.epoch() - 120)),
    "not yet valid (nbf)": _not_yet_valid_nbf,
    "not yet valid (iat)": lambda: sign(claims(iat=clock.epoch() + 3600, exp=clock.epoch() + 7200)),
    "wrong signature": lambda: sign(claims(), secret=OTHER_SECRET),
    "tampered payload": _tampered,
    "wrong audience": lambda: sign(claims(aud="someone-else")),
    "wrong issuer": lambda: sign(claims(iss="evil-issuer")),
    "alg none": _alg_none,
    "alg none with a signature": lambda: _alg_none() + "c2lnbmF0dXJl",
    "other HMAC algorithm (HS512)": lambda: sign(claims(), algorithm="HS512"),
    "unknown role": lambda: sign(claims(role="superuser")),
    "role not a string": lambda: sign(claims(role=["ops"])),
    "sub not a string": lambda: sign(claims(sub=42)),
    "empty sub": lambda: sign(claims(sub="")),
    "null role": lambda: sign(claims(role=None)),
    "iat not a number": lambda: sign(claims(iat="yesterday")),
    "exp not a number": lambda: sign(claims(exp="tomorrow")),
    "payload not JSON": lambda: f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.bm90IGpzb24.c2ln",
    "not a JWT": lambda: "not-a-jwt",
    "three garbage parts": lambda: "a.b.c",
}


@pytest.mark.filterwarnings("ignore:The HMAC key is")  # HS512 wants a longer key; refused anyway
@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_bad_token_is_401(client, case):
    r = call(client, BAD_TOKENS[case]())
    assert_envelope(r, 401)
    assert r.json_body["error"]["code"] in ("invalid_token", "token_expired")


def test_expired_token_says_so(client):
    assert_envelope(call(client, BAD_TOKENS["expired"]()), 401, "token_expired")


@pytest.mark.parametrize("claim", ["sub", "role", "iss", "aud", "iat", "exp"])
def test_missing_required_claim_is_401(client, claim):
    assert_envelope(call(client, sign(claims(**{claim: ...}))), 401, "invalid_token")


@pytest.mark.parametrize("authorization", [
    "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer-abc",
])
def test_malformed_authorization_header_is_401(client, authorization):
    r = call(client, authorization=authorization)
    assert_envelope(r, 401)
    assert r.json_body["error"]["code"] in ("missing_token", "invalid_token")


def test_token_without_scheme_is_401(client):
    assert_envelope(call(client, authorization=token("m_alice")), 401, "invalid_token")


def test_lowercase_scheme_is_accepted(client):
    assert call(client, authorization=f"bearer {token('m_alice')}").status_code == 200


def test_missing_header_is_401_on_a_real_route(client):
    assert_envelope(client.get("/v1/members/me"), 401, "missing_token")
    assert_envelope(client.get("/v1/members/me", token=BAD_TOKENS["wrong signature"]()), 401, "invalid_token")


# --- roles: 403 -------------------------------------------------------------------------------

@pytest.mark.parametrize("role", [MEMBER, SERVICE])
def test_wrong_role_is_403(client, role):
    assert_envelope(call(client, token("someone", role), path="/test/auth/ops-only"), 403, "wrong_role")


@pytest.mark.parametrize("role", ["ops", "admin"])
def test_ops_and_admin_reach_an_ops_route(client, role):
    r = call(client, token("staff-1", role), path="/test/auth/ops-only")
    assert r.status_code == 200, r.body
    assert r.json_body == {"sub": "staff-1", "role": role}


def test_bad_token_on_an_ops_route_is_401_not_403(client):
    assert_envelope(call(client, BAD_TOKENS["wrong signature"](), path="/test/auth/ops-only"), 401)


# --- secret rotation --------------------------------------------------------------------------

def test_previous_secret_is_accepted_during_rotation(client, env):
    env(JWT_SECRET=OLD_SECRET, JWT_PREVIOUS_SECRET=None)
    minted_before_rotation = token("brand-backend", SERVICE)
    env(JWT_SECRET=NEW_SECRET, JWT_PREVIOUS_SECRET=OLD_SECRET)
    assert call(client, minted_before_rotation).json_body == {"sub": "brand-backend", "role": SERVICE}
    assert call(client, token("brand-backend", SERVICE)).status_code == 200  # new tokens: new secret
    # rotation finished: the old secret is gone
    env(JWT_SECRET=NEW_SECRET, JWT_PREVIOUS_SECRET=None)
    assert_envelope(call(client, minted_before_rotation), 401, "invalid_token")


def test_unknown_kid_or_mismatched_secret_is_refused(client, env):
    env(JWT_SECRET=NEW_SECRET, JWT_PREVIOUS_SECRET=OLD_SECRET)
    assert_envelope(call(client, sign(claims(), secret=OTHER_SECRET, kid="feedface0000")), 401, "invalid_token")
    assert_envelope(call(client, sign(claims(), secret=OTHER_SECRET, kid=None)), 401, "invalid_token")
    # the previous key's id with the wrong secret, and the current key's id with the previous secret
    assert_envelope(call(client, sign(claims(), secret=OTHER_SECRET, kid=key_id(OLD_SECRET))), 401)
    assert_envelope(call(client, sign(claims(), secret=OLD_SECRET, kid=key_id(NEW_SECRET))), 401)
    assert call(client, sign(claims(), secret=OLD_SECRET, kid=key_id(OLD_SECRET))).status_code == 200


# --- configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("variable", ["JWT_SECRET", "JWT_PREVIOUS_SECRET", "CURSOR_SECRET"])
def test_config_refuses_short_secrets(monkeypatch, variable):
    attribute = variable.lower()
    monkeypatch.setenv(variable, "x" * 31)
    settings.cache_clear()
    try:
        with pytest.raises(ConfigError, match=variable):
            getattr(settings(), attribute)  # checked where the secret is first used
        monkeypatch.setenv(variable, "x" * 32)
        settings.cache_clear()
        getattr(settings(), attribute)  # 32 bytes is enough
    finally:
        monkeypatch.undo()
        settings.cache_clear()


def test_deployed_stage_needs_a_secret(monkeypatch):
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.delenv("JWT_SECRET", raising=False)
    settings.cache_clear()
    try:
        loaded = settings()  # loading (and so importing the app) never fails
        with pytest.raises(ConfigError, match="JWT_SECRET"):
            loaded.jwt_secret
    finally:
        monkeypatch.undo()
        settings.cache_clear()


# --- lifetimes, integer claims, revocation ---------------------------------------------------

@pytest.mark.parametrize("case, changes", [
    ("exp: 1e300", lambda now: {"exp": 1e300}),
    ("exp in the year 3000", lambda now: {"exp": 32503680000}),
    ("float iat", lambda now: {"iat": float(now)}),
    ("exp as a numeric string", lambda now: {"exp": str(now + 600)}),
    ("boolean nbf", lambda now: {"nbf": True}),
    ("member token for two days", lambda now: {"exp": now + 2 * 86400}),
])
def test_impossible_times_and_overlong_lifetimes_are_401(client, case, changes):
    assert_envelope(call(client, sign(claims(**changes(clock.epoch())))), 401, "invalid_token")


@pytest.mark.parametrize("role, longest", [("member", 12 * 3600), ("ops", 7 * 86400), ("service", 90 * 86400)])
def test_each_role_lives_up_to_its_cap_and_not_a_second_more(client, role, longest):
    from chalicelib.core.auth import MAX_LIFETIME_SECONDS

    assert MAX_LIFETIME_SECONDS[role] == longest
    extra = {"jti": "t-1"} if role != MEMBER else {}
    now = clock.epoch()
    assert call(client, sign(claims(role=role, iat=now, exp=now + longest, **extra))).status_code == 200
    assert_envelope(call(client, sign(claims(role=role, iat=now, exp=now + longest + 1, **extra))), 401,
                    "invalid_token")
    with pytest.raises(ValueError):
        token("someone", role, ttl_seconds=longest + 1)


def test_staff_and_service_tokens_need_a_jti(client):
    assert_envelope(call(client, sign(claims(role=SERVICE))), 401, "invalid_token")
    assert call(client, sign(claims(role=SERVICE, jti="svc-1"))).status_code == 200


def test_a_revoked_service_token_is_refused_and_others_keep_working(client):
    admin = token("root", "admin")
    doomed, kept = token("brand-backend", SERVICE), token("brand-backend", SERVICE)
    assert call(client, doomed).status_code == 200  # cached as good on this instance
    jti = jwt.decode(doomed, options={"verify_signature": False})["jti"]
    answer = client.post("/v1/ops/tokens/revoke", {"jti": jti, "reason": "leaked in a log"}, token=admin)
    assert answer.status_code == 200, answer.body
    assert_envelope(call(client, doomed), 401, "token_revoked")
    assert call(client, kept).status_code == 200
    again = client.post("/v1/ops/tokens/revoke", {"jti": jti, "reason": "twice"}, token=admin)
    assert again.status_code == 200
    log = client.get("/v1/ops/audit-log", token=admin).json_body["items"]
    assert [(r["action"], r["target"]) for r in log if r["action"] == "token.revoke"] == [("token.revoke",
                                                                                        f"token:{jti}")]


def test_another_instance_sees_a_revocation_within_the_cache_time(client, monkeypatch):
    from chalicelib.core import revocation

    staff = token("olivia", OPS)
    jti = jwt.decode(staff, options={"verify_signature": False})["jti"]
    assert call(client, staff, "/test/auth/ops-only").status_code == 200
    revocation.RevokedToken(*revocation.RevokedToken.key(jti), revoked_by="root", reason="left",
                            revoked_at=clock.now_iso()).save()  # written by another instance
    monkeypatch.setattr(revocation, "CACHE_SECONDS", 0.0)  # that instance's cache time has passed
    assert_envelope(call(client, staff, "/test/auth/ops-only"), 401, "token_revoked")


def test_only_admin_revokes_and_bad_bodies_are_422(client):
    assert client.post("/v1/ops/tokens/revoke", {"jti": "x", "reason": "r"},
                       token=token("olivia", OPS)).status_code == 403
    admin = token("root", "admin")
    for body in ({"jti": "", "reason": "r"}, {"jti": "a/b", "reason": "r"}, {"jti": "x" * 65, "reason": "r"},
                 {"jti": "x"}):
        assert_envelope(client.post("/v1/ops/tokens/revoke", body, token=admin), 422)
