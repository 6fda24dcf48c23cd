"""Mint a bearer token from the stage's own secret, for a brand's backend or for staff.

    make token ARGS="--role service --sub brand-backend --ttl 2592000"
    STAGE=prod JWT_SECRET=... python -m tools.token --role ops --sub alice

It reads the same environment and settings as the service (STAGE, JWT_SECRET, JWT_ISSUER,
JWT_AUDIENCE, TOKEN_TTL_SECONDS), so the token verifies wherever that secret is current.
The token goes to stdout alone (easy to capture); what it is goes to stderr, with its `jti`:
keep that to revoke the token later (POST /v1/ops/tokens/revoke, admin). Lifetimes are capped
per role (chalicelib/core/auth.py MAX_LIFETIME_SECONDS): ops/admin 7 days, service 90 days.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from chalicelib.core.auth import MAX_LIFETIME_SECONDS, ROLES, issue_token, verify_token
from chalicelib.core.config import ConfigError, settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.token", description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", required=True, choices=ROLES, help="service for a brand's backend; ops/admin for staff")
    parser.add_argument("--sub", required=True, help="who the token is for, e.g. brand-backend or a staff id")
    parser.add_argument("--ttl", type=int, default=None, metavar="SECONDS",
                        help="lifetime in seconds (default: the stage's TOKEN_TTL_SECONDS; at most "
                             "7 days for ops/admin, 90 days for service)")
    args = parser.parse_args(argv)
    if args.ttl is not None and args.ttl <= 0:
        parser.error("--ttl must be a positive number of seconds")
    if args.ttl is not None and args.ttl > MAX_LIFETIME_SECONDS[args.role]:
        parser.error(f"--ttl: a {args.role} token lives at most {MAX_LIFETIME_SECONDS[args.role]} seconds")
    if not args.sub.strip():
        parser.error("--sub must not be empty")
    try:
        cfg = settings()
        token = issue_token(args.sub, args.role, ttl_seconds=args.ttl)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    principal = verify_token(token)  # fail here, not at the caller's first request
    expires = datetime.fromtimestamp(_expiry(token), tz=timezone.utc).isoformat()
    print(token)
    print(f"# {args.role} token for {args.sub!r}, stage {cfg.stage}, expires {expires}, jti {principal.jti} "
          f"(revoke: POST /v1/ops/tokens/revoke)", file=sys.stderr)
    return 0


def _expiry(token: str) -> int:
    import jwt

    return int(jwt.decode(token, options={"verify_signature": False})["exp"])


if __name__ == "__main__":
    sys.exit(main())
