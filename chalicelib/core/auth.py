"""JWT bearer tokens (HS256) and roles, as API.md says.

Two secrets may be valid at once (`JWT_SECRET` and `JWT_PREVIOUS_SECRET`) so the secret can
rotate: tokens carry a `kid` derived from their secret, and verification picks the key by it.

Lifetimes are capped per role (MAX_LIFETIME_SECONDS): a token whose `exp - iat` is longer is
refused however it was signed. Times must be JSON integers. Staff and service tokens carry a
`jti`, checked against the revocation list (core/revocation.py) on every request.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from ..i18n import t
from . import clock, secrets
from .config import settings
from .errors import Forbidden, Unauthorized

MEMBER, SERVICE, OPS, ADMIN = "member", "service", "ops", "admin"
ROLES = (MEMBER, SERVICE, OPS, ADMIN)
ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["sub", "role", "iss", "aud", "iat", "exp"]

HOUR, DAY = 3600, 86400
# The longest a token of each role may live: a stolen member token for hours, a staff token for
# days, a brand backend's service token for about three months (then re-issued).
MAX_LIFETIME_SECONDS = {MEMBER: 12 * HOUR, OPS: 7 * DAY, ADMIN: 7 * DAY, SERVICE: 90 * DAY}
REVOCABLE = (SERVICE, OPS, ADMIN)  # long-lived enough to need a deny-list; they carry a jti
MAX_JTI_LENGTH = 64

# A role may act as the roles it implies (admin can do all that ops can).
IMPLIES = {ADMIN: {ADMIN, OPS}, OPS: {OPS}, SERVICE: {SERVICE}, MEMBER: {MEMBER}}


@dataclass(frozen=True)
class Principal:
    sub: str
    role: str
    jti: str | None = None

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
    cap = MAX_LIFETIME_SECONDS[role]
    lifetime = ttl_seconds or min(cfg.token_ttl_seconds, cap)
    if lifetime > cap:
        raise ValueError(f"a {role} token lives at most {cap} seconds")
    import jwt  # here, not at import: stream and schedule functions never handle a token (cold start)

    issued = clock.epoch()
    claims = {
        "sub": sub,
        "role": role,
        "iss": cfg.jwt_issuer,
        "aud": cfg.jwt_audience,
        "iat": issued,
        "exp": issued + lifetime,
        **({"jti": uuid.uuid4().hex} if role in REVOCABLE else {}),
        **extra,
    }
    return jwt.encode(claims, cfg.jwt_secret, algorithm=ALGORITHM, headers={"kid": key_id(cfg.jwt_secret)})


def _secret_for(token: str) -> str:
    import jwt  # on the first token only (cold start)

    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise Unauthorized(t("malformed token"), code="invalid_token") from exc
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
    import jwt  # on the first token only (cold start)

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
        raise Unauthorized(t("invalid token: {problem}", problem=exc), code="invalid_token") from exc
    role, sub = claims.get("role"), claims.get("sub")
    if role not in ROLES or not isinstance(sub, str) or not sub:
        raise Unauthorized(t("token has an unknown role or subject"), code="invalid_token")
    _check_times(claims, role)
    jti = claims.get("jti")
    if role in REVOCABLE and not (isinstance(jti, str) and 0 < len(jti) <= MAX_JTI_LENGTH):
        raise Unauthorized(t("a {role} token needs a token id (jti); mint it with tools/token.py", role=role),
                           code="invalid_token")
    return Principal(sub=sub, role=role, jti=jti if role in REVOCABLE else None)


def _integer(value: object) -> bool:
    return type(value) is int  # JSON integers only: not 1e300, not "2", not true


def _check_times(claims: dict, role: str) -> None:
    now = clock.epoch()
    times = [claims["iat"], claims["exp"]] + ([claims["nbf"]] if "nbf" in claims else [])
    if not all(_integer(t) for t in times):
        raise Unauthorized(t("token times (iat, nbf, exp) must be integers"), code="invalid_token")
    issued, expires = claims["iat"], claims["exp"]
    not_before = claims.get("nbf", issued)
    if expires - issued > MAX_LIFETIME_SECONDS[role]:
        raise Unauthorized(t("a {role} token may live at most {seconds} seconds",
                             role=role, seconds=MAX_LIFETIME_SECONDS[role]),
                           code="invalid_token")
    if expires <= now - LEEWAY_SECONDS:
        raise Unauthorized(t("token has expired"), code="token_expired")
    if max(issued, not_before) > now + LEEWAY_SECONDS:
        raise Unauthorized(t("token is not yet valid"), code="invalid_token")


def authenticate(authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthorized(t("missing Authorization header"), code="missing_token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(t("expected 'Authorization: Bearer <token>'"), code="invalid_token")
    principal = verify_token(token.strip())
    if principal.jti is not None:
        from . import revocation  # one cached read per token id and instance

        if revocation.is_revoked(principal.jti):
            raise Unauthorized(t("this token has been revoked"), code="token_revoked")
    return principal


def require_role(principal: Principal, roles: tuple[str, ...]) -> None:
    if not any(principal.acts_as(role) for role in roles):
        raise Forbidden(t("this call needs one of the roles: {roles}", roles=', '.join(roles)), code="wrong_role")
