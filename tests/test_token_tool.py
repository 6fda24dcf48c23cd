"""`python -m tools.token` mints tokens from the stage's secret that the service accepts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from chalicelib.core import clock
from chalicelib.core.auth import verify_token
from chalicelib.core.config import settings
from tools import token as token_tool

ROOT = Path(__file__).resolve().parents[1]
STAGE_SECRET = "a-deployed-stage-secret-0123456789abcdef"


@pytest.fixture
def stage(monkeypatch):
    """A deployed stage's environment, as an operator would export it."""
    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("JWT_SECRET", STAGE_SECRET)
    monkeypatch.setenv("JWT_ISSUER", "referral-service-prod")
    settings.cache_clear()
    yield
    monkeypatch.undo()
    settings.cache_clear()


def test_command_line_token_verifies_with_the_stage_secret(stage):
    run = subprocess.run([sys.executable, "-m", "tools.token", "--role", "service", "--sub", "brand-backend"],
                         cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    minted = run.stdout.strip()
    assert "\n" not in minted  # stdout is the token alone
    principal = verify_token(minted)
    assert (principal.sub, principal.role) == ("brand-backend", "service")
    claims = jwt.decode(minted, STAGE_SECRET, algorithms=["HS256"], audience="referral-api")
    assert claims["iss"] == "referral-service-prod"
    assert claims["exp"] - claims["iat"] == settings().token_ttl_seconds


def test_ttl_and_role(stage, capsys):
    assert token_tool.main(["--role", "ops", "--sub", "alice", "--ttl", "600"]) == 0
    minted = capsys.readouterr().out.strip()
    claims = jwt.decode(minted, STAGE_SECRET, algorithms=["HS256"], audience="referral-api",
                        issuer="referral-service-prod")
    assert (claims["sub"], claims["role"], claims["exp"] - claims["iat"]) == ("alice", "ops", 600)
    assert claims["iat"] == pytest.approx(clock.epoch(), abs=5)


def test_a_token_from_another_secret_is_refused(stage, capsys, monkeypatch):
    assert token_tool.main(["--role", "admin", "--sub", "root"]) == 0
    minted = capsys.readouterr().out.strip()
    monkeypatch.setenv("JWT_SECRET", "some-other-stage-secret-0123456789abcdef")
    settings.cache_clear()
    from chalicelib.core.errors import Unauthorized

    with pytest.raises(Unauthorized):
        verify_token(minted)


@pytest.mark.parametrize("argv", [["--role", "root", "--sub", "x"], ["--role", "ops"], ["--sub", "x"],
                                  ["--role", "ops", "--sub", "x", "--ttl", "0"],
                                  ["--role", "ops", "--sub", " "]])
def test_bad_arguments_exit_with_usage(stage, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        token_tool.main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().out == ""


def test_unsafe_secret_is_refused_without_a_traceback(monkeypatch):
    env = {**os.environ, "STAGE": "prod", "JWT_SECRET": "too-short"}
    run = subprocess.run([sys.executable, "-m", "tools.token", "--role", "ops", "--sub", "alice"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "JWT_SECRET must be at least 32 bytes" in run.stderr
    assert "Traceback" not in run.stderr


def test_staff_tokens_get_a_jti_and_a_capped_lifetime(stage, capsys):
    assert token_tool.main(["--role", "ops", "--sub", "alice"]) == 0
    out = capsys.readouterr()
    jti = jwt.decode(out.out.strip(), options={"verify_signature": False})["jti"]
    assert jti and f"jti {jti}" in out.err
    with pytest.raises(SystemExit) as exited:
        token_tool.main(["--role", "ops", "--sub", "alice", "--ttl", str(8 * 86400)])
    assert exited.value.code == 2 and "at most" in capsys.readouterr().err
