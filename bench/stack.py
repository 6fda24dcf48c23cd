"""Start what a benchmark needs on free ports: DynamoDB Local (in memory) and the service
(bench/server.py) as a subprocess. Never touches a running `make run` instance."""
from __future__ import annotations

import http.client
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (NaN for no values)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def process_cpu(pid: int | None) -> float:
    """CPU seconds (user + system) a process has used; 0 when it cannot be read."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def batch_get_all(raw: Any, table: str, keys: list[dict], consistent: bool = False) -> list[dict]:
    """Every item of `keys` that exists, 100 keys per BatchGetItem, unprocessed keys retried."""
    found: list[dict] = []
    for i in range(0, len(keys), 100):
        request = {table: {"Keys": keys[i:i + 100], "ConsistentRead": consistent}}
        while request:
            answer = raw.batch_get_item(RequestItems=request)
            found += answer["Responses"].get(table, [])
            request = answer.get("UnprocessedKeys") or None
    return found


def prepare_in_process(ddb_endpoint: str, prefix: str) -> None:
    """Point this process's service code at fresh tables `<prefix>*` on `ddb_endpoint`, created
    and seeded as a new stage's (the in-process benchmarks: lifecycle, webhooks)."""
    os.environ.update(base_env(ddb_endpoint, prefix, "bench-" + secrets.token_hex(24)))
    from chalicelib import bootstrap
    from chalicelib.core import aws
    from chalicelib.core.config import settings

    settings.cache_clear()
    aws.reset()
    bootstrap.prepare(aws.dynamodb(), prefix)


def base_env(ddb_endpoint: str, prefix: str, jwt_secret: str) -> dict[str, str]:
    return {
        "STAGE": "local",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "DDB_ENDPOINT": ddb_endpoint,
        "TABLE_PREFIX": prefix,
        "JWT_SECRET": jwt_secret,
        # Every simulated client comes from 127.0.0.1: one rate-limit key for the whole crowd.
        "RATE_LIMIT_PER_MINUTE": "1000000000",
        # Member tokens must outlive the simulated 16 days (the clock moves for the releases).
        "TOKEN_TTL_SECONDS": str(90 * 86400),
        # The simulator dates orders and refunds ahead of the server's clock (it jumps later).
        "FACT_MAX_FUTURE_SECONDS": str(90 * 86400),
        "LOG_LEVEL": "WARNING",
        "DEV_LOGIN_ENABLED": "true",
    }


class DynamoDBLocal:
    def __init__(self) -> None:
        from infra.local import ddblocal

        self._ddblocal = ddblocal
        self.port = ddblocal.free_port()
        self.process = ddblocal.start(self.port)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._ddblocal.stop(self.process)


class Service:
    """bench/server.py in a subprocess; stopped by closing its stdin."""

    def __init__(self, ddb_endpoint: str, prefix: str, log_path: Path | None = None):
        from infra.local.ddblocal import free_port

        self.jwt_secret = "bench-" + secrets.token_hex(24)
        self.port, self.control_port = free_port(), free_port()
        env = {**os.environ, **base_env(ddb_endpoint, prefix, self.jwt_secret),
               "PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}", "SCHEDULE_INTERVAL_SECONDS": "1"}
        env.pop("AWS_PROFILE", None)
        cmd = [sys.executable, "-m", "bench.server", "--port", str(self.port), "--control-port", str(self.control_port)]
        self.log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.log)
        line = self.process.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            self.stop()
            raise RuntimeError(f"the service did not start (see {log_path})")
        self.env = env

    def control(self, method: str, path: str, timeout: float = 900, **params: Any) -> dict:
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=timeout)
        try:
            conn.request(method, f"{path}?{urlencode(params)}" if params else path)
            response = conn.getresponse()
            body = json.loads(response.read() or b"{}")
            if response.status != 200:
                raise RuntimeError(f"control {path}: {response.status} {body}")
            return body
        finally:
            conn.close()

    def settle(self) -> dict:
        return self.control("GET", "/settle", timeout=6 * 3600 + 60, wait=6 * 3600)

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
                self.process.wait(timeout=15)
            except Exception:  # noqa: BLE001
                self.process.kill()
                self.process.wait()


class HttpClient:
    """Keep-alive HTTP/1.1 connections, one per thread; latency recorded per operation."""

    def __init__(self, port: int):
        self.port = port
        self._local = threading.local()
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = {}
        self.requests = 0
        self.busy_retries = 0  # 503 answers (storage busy) sent again, as a real client would

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        return conn

    def request(self, op: str, method: str, path: str, body: Any = None, token: str | None = None,
                extra_headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        """One request; a 503 with Retry-After (the service's "busy, try again") is sent again."""
        for _ in range(10):
            status, headers, data = self._request(op, method, path, body, token, extra_headers)
            if status != 503 or "retry-after" not in headers:
                break
            with self.lock:
                self.busy_retries += 1
            time.sleep(0.05)
        return status, headers, data

    def _request(self, op: str, method: str, path: str, body: Any = None, token: str | None = None,
                 extra_headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": "application/json", **(extra_headers or {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body).encode() if body is not None else None
        for attempt in range(3):
            conn = self._conn()
            started = time.perf_counter()
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                raw = response.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            with self.lock:
                self.latencies.setdefault(op, []).append(elapsed)
                self.requests += 1
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                self._local.conn = None
            content_type = response.getheader("Content-Type", "")
            data = json.loads(raw) if raw and content_type.startswith("application/json") else raw
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        raise RuntimeError("unreachable")
