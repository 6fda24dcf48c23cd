"""The whole suite on both backends, side by side: moto in-process and DynamoDB Local.

    python -m tools.test_all [--serial] [pytest args...]

The two passes share nothing (moto is in-process; each DynamoDB Local pass starts its own
engine on a free port), and each is mostly one busy core, so on a two-core machine running
them together takes about as long as the slower one. Each pass writes its log to
.cache/test-<backend>.log; progress is printed every minute and each log in full at the end.
Exit status: 0 only when both passes ran tests and passed (pytest's 5, "no tests ran", fails).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / ".cache"
BACKENDS = ("moto", "ddblocal")
PROGRESS_EVERY_SECONDS = 60


def _start(backend: str, extra: list[str]) -> tuple[subprocess.Popen, Path]:
    log_path = LOGS / f"test-{backend}.log"
    log = open(log_path, "wb")
    # The slowest tests are listed at the end of each log: the suite's time is a CI budget.
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=25", "tests", *extra]
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env={**os.environ, "BACKEND": backend})
    return process, log_path


def _progress(log_path: Path) -> str:
    """The last progress marker pytest -q printed ("[ 42%]"), or what it printed last."""
    text = log_path.read_bytes()[-4000:].decode("utf-8", "replace")
    marks = [line for line in text.splitlines() if line.rstrip().endswith("%]")]
    last = (marks or text.splitlines() or [""])[-1].rstrip()
    return last[-12:] if marks else last[-80:]


def _run(backends: list[str], extra: list[str]) -> dict[str, int]:
    started = time.monotonic()
    running = {backend: _start(backend, extra) for backend in backends}
    codes: dict[str, int] = {}
    next_progress = PROGRESS_EVERY_SECONDS
    while len(codes) < len(running):
        time.sleep(1)
        for backend, (process, _) in running.items():
            if backend not in codes and process.poll() is not None:
                codes[backend] = process.returncode
                print(f"[{time.monotonic() - started:6.0f}s] {backend}: finished, exit {process.returncode}", flush=True)
        if time.monotonic() - started >= next_progress:
            next_progress += PROGRESS_EVERY_SECONDS
            marks = ", ".join(f"{b} {_progress(p)}" for b, (_, p) in running.items() if b not in codes)
            if marks:
                print(f"[{time.monotonic() - started:6.0f}s] {marks}", flush=True)
    for backend, (_, log_path) in running.items():
        print(f"\n===== backend {backend}: {log_path.relative_to(ROOT)} =====", flush=True)
        sys.stdout.write(log_path.read_text("utf-8", "replace"))
    return codes


def main(argv: list[str]) -> int:
    serial = "--serial" in argv
    extra = [arg for arg in argv if arg != "--serial"]
    LOGS.mkdir(exist_ok=True)
    if serial:
        codes = {}
        for backend in BACKENDS:
            codes.update(_run([backend], extra))
    else:
        codes = _run(list(BACKENDS), extra)
    print("\n" + "  ".join(f"{b}: {'passed' if c == 0 else f'FAILED (exit {c})'}" for b, c in codes.items()))
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
