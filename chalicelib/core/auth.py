"""JWT bearer tokens (HS256) and roles, as API.md says.

Two secrets may be valid at once (`JWT_SECRET` and `JWT_PREVIOUS_SECRET`) so the secret can
rotate: tokens carry a `kid` derived from their secret, and verification picks the key by it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import jwt

from . import clock, secrets
from .config import settings
from .errors import Forbidden, Unauthorized

MEMBER, SERVICE, OPS, ADMIN = "member", "service", "ops", "admin"
ROLES = (MEMBER, SERVICE, OPS, ADMIN)
ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["sub", "role", "iss", "aud", "iat", "exp"]

# A role may act as the roles it implies (admin can do all that ops can).
IMPLIES = {ADMIN: {ADMIN, OPS}, OPS: {OPS}, SERVICE: {SERVICE}, MEMBER: {MEMBER}}


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str

    def acts_as(self, role: str) -> bool:
        return role in IMPLIES.get(self.role, set())


def key_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def issue_token(sub: str, role: str, ttl_seconds: int | None = None, **extra: object) -> str:
    """Mint a token with the stage's current secret.

    >>> issue_token("m_123", "member")  # doctest: +SKIP
    'eyJhbGciOiJIUzI1NiIs...'
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    cfg = settings()
    issued = clock.epoch()
    claims = {
        "sub": sub,
        "role": role,
        "iss": cfg.jwt_issuer,
        "aud": cfg.jwt_audience,
        "iat": issued,
        "exp": issued + (ttl_seconds or cfg.token_ttl_seconds),
        **extra,
    }
    return jwt.encode(claims, cfg.jwt_secret, algorithm=ALGORITHM, headers={"kid": key_id(cfg.jwt_secret)})


def _secret_for(token: str) -> str:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise Unauthorized("malformed token", code="invalid_token") from exc
    secret = _known_secret(kid)
    # A key id this instance does not know may be a rotation it has not seen yet: re-read the
    # secret store once (rate-limited) before refusing the token.
    if secret is None and kid and secrets.refresh():
        secret = _known_secret(kid)
    return secret or settings().jwt_secret


def _known_secret(kid: str | None) -> str | None:
    cfg = settings()
    if cfg.jwt_previous_secret and kid == key_id(cfg.jwt_previous_secret):
        return cfg.jwt_previous_secret
    if kid == key_id(cfg.jwt_secret):
        return cfg.jwt_secret
    return None


def verify_token(token: str) -> Principal:
    cfg = settings()
    try:
        claims = jwt.decode(
            token,
            _secret_for(token),
            algorithms=[ALGORITHM],  # pinned: never taken from the token header
            audience=cfg.jwt_audience,
            issuer=cfg.jwt_issuer,
            # Times are checked below against the project clock: PyJWT reads the wall clock,
            # so a token minted after `clock.advance` (tests, demos) would be "not yet valid".
            options={"require": REQUIRED_CLAIMS, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}", code="invalid_token") from exc
    _check_times(claims)
    role, sub = claims.get("role"), claims.get("sub")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise Unauthorized("token has an unknown role or subject", code="invalid_token")
    return Principal(sub=sub, role=role)


def _check_times(claims: dict) -> None:
    now = clock.epoch()
    try:
        issued, expires = int(claims["iat"]), int(claims["exp"])
        not_before = int(claims.get("nbf", issued))
    except (TypeError, ValueError, OverflowError):
        raise Unauthorized("token times (iat, nbf, exp) must be integers", code="invalid_token") from None
    if expires <= now - LEEWAY_SECONDS:
        raise Unauthorized("token has expired", code="token_expired")
    if max(issued, not_before) > now + LEEWAY_SECONDS:
        raise Unauthorized("token is not yet valid", code="invalid_token")


def authenticate(authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthorized("missing Authorization header", code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("expected 'Authorization: Bearer <token>'", code="invalid_token")
    return verify_token(token.strip())


def require_role(principal: Principal, roles: tuple[str, ...]) -> None:
    if not any(principal.acts_as(role) for role in roles):
        raise Forbidden(f"this call needs one of the roles: {', '.join(roles)}", code="wrong_role")
