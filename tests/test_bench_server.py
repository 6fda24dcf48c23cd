"""The simulator's service process (bench/server.py: HTTP, stream poller, schedules) polls
without errors and delivers what is written — a smoke test, since its poller specializes the
local runtime's and a mismatch there only shows as a benchmark that never settles."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import BACKEND, ROOT

pytestmark = pytest.mark.skipif(BACKEND != "ddblocal", reason="the service process needs a DynamoDB Local")


def test_the_bench_service_polls_cleanly_and_delivers_records(ddb_endpoint, tmp_path):
    from bench.stack import Service

    prefix = f"benchsrv{int(time.time())}-"
    # in a child process: preparing here would point this test process's settings at the bench's
    subprocess.run([sys.executable, "-c", "import sys; from bench.stack import prepare_in_process; "
                    "prepare_in_process(sys.argv[1], sys.argv[2])", ddb_endpoint, prefix],
                   cwd=str(ROOT), check=True, capture_output=True, timeout=120)
    service = Service(ddb_endpoint, prefix, log_path=tmp_path / "server.log")
    try:
        deadline = time.monotonic() + 60
        stats = service.control("GET", "/stats")
        while time.monotonic() < deadline and (stats["rounds"] < 5 or not stats["records"]):
            time.sleep(0.5)
            stats = service.control("GET", "/stats")
        assert stats["errors"] == []
        assert stats["records"] > 0  # the seeded campaign and program reached the handlers
        assert service.settle()["settled"] is True
    finally:
        service.stop()
