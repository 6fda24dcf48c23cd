"""infra/local/prepare.sh: what `make run`, `make test` and `.ci/run` need (Java 17+, npm),
installed once when the user may, else a clear instruction. Run against fake commands."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "infra/local/prepare.sh"


def fake_machine(tmp_path: Path, *, java: str | None, npm: bool, uid: int, sudo_ok: bool | None) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "head"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "calls"

    def script(name: str, body: str) -> None:
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / name).chmod(0o755)

    script("id", f"echo {uid}")
    script("apt-get", f'echo "apt-get $*" >> {log}')
    if java:
        script("java", f"echo 'openjdk version \"{java}\" 2024-01-16' >&2")
    if npm:
        script("npm", "true")
    if sudo_ok is not None:
        script("sudo", f'[ "$1" = -n ] && shift; [ "$1" = true ] && exit {0 if sudo_ok else 1}; '
                       f'echo "sudo $*" >> {log}; "$@"')
    return bin_dir


def run(bin_dir: Path, **env: str):
    result = subprocess.run([str(bin_dir / "bash"), str(SCRIPT)], env={"PATH": str(bin_dir), **env},
                            capture_output=True, text=True, timeout=30)
    calls = (bin_dir.parent / "calls")
    return result, calls.read_text().splitlines() if calls.exists() else []


def test_a_prepared_machine_installs_nothing(tmp_path):
    result, calls = run(fake_machine(tmp_path, java="17.0.10", npm=True, uid=1000, sudo_ok=False))
    assert result.returncode == 0 and calls == []


def test_root_installs_what_is_missing_once(tmp_path):
    result, calls = run(fake_machine(tmp_path, java="11.0.2", npm=False, uid=0, sudo_ok=None))
    assert result.returncode == 0, result.stderr
    assert calls[-1] == "apt-get install -y -qq openjdk-17-jre-headless npm"


def test_ci_also_installs_chromium_and_a_chinese_font_for_the_browser_test(tmp_path):
    bin_dir = fake_machine(tmp_path, java="17.0.10", npm=True, uid=0, sudo_ok=None)
    result, calls = run(bin_dir, WITH_BROWSER="1")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == "apt-get install -y -qq chromium fonts-noto-cjk"
    assert "WITH_BROWSER=1 make test" in (ROOT / ".ci/run").read_text()


def test_a_machine_with_chromium_and_the_font_installs_nothing_for_the_browser(tmp_path):
    bin_dir = fake_machine(tmp_path, java="17.0.10", npm=True, uid=0, sudo_ok=None)
    for tool, body in (("chromium", "true"), ("fc-list", "echo 'NotoSansCJK.ttc: Noto Sans CJK SC'")):
        (bin_dir / tool).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    (bin_dir / "grep").symlink_to(shutil.which("grep"))
    result, calls = run(bin_dir, WITH_BROWSER="1")
    assert result.returncode == 0 and calls == [], result.stderr


def test_passwordless_sudo_installs_through_sudo(tmp_path):
    result, calls = run(fake_machine(tmp_path, java=None, npm=True, uid=1000, sudo_ok=True))
    assert result.returncode == 0, result.stderr
    assert "sudo apt-get install -y -qq openjdk-17-jre-headless" in calls


def test_without_rights_it_says_what_to_run_and_stops(tmp_path):
    result, calls = run(fake_machine(tmp_path, java=None, npm=False, uid=1000, sudo_ok=False))
    assert result.returncode == 1 and calls == []
    assert "sudo apt-get install -y openjdk-17-jre-headless npm" in result.stderr


@pytest.mark.parametrize("target", ["run", "test"])
def test_make_run_and_test_and_ci_share_the_one_preparation(target):
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^{target}: .*\bprepare\b", makefile, re.M)
    assert re.search(r"^prepare:\n\t@?infra/local/prepare\.sh$", makefile, re.M)
    ci = (ROOT / ".ci/run").read_text()
    assert "make test" in ci and "apt-get" not in ci
    assert os.access(SCRIPT, os.X_OK)
