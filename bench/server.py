"""The service as `make run` runs it — Chalice's local HTTP server, the stream poller and the
scheduler, in one process — plus a small control port for the simulator (never part of the
service): wait until the streams are settled, move the clock, wait for a release sweep.

    python -m bench.server --port 8100 --control-port 8101   (env: DDB_ENDPOINT, TABLE_PREFIX, ...)

The server runs in this process, so `chalicelib.core.clock.advance` moves the time that the
routes, stream handlers and scheduled sweeps all read.

The HTTP server is `infra.local.gateway.local_server`, as in `make run`: a thread per
connection, `current_request` kept per thread.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]


class Control:
    """State shared between the poller loop, the scheduler wrapper and the control port."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.round = 0
        self.idle_streak = 0  # consecutive rounds that delivered nothing with no shard in backoff
        self.idle_since_round = 0
        self.records = 0
        self.batches = 0
        self.failed_batches = 0
        self.handler_seconds = 0.0
        self.handler_cpu_seconds = 0.0  # CPU of the poller's threads inside the functions (decode included)
        self.poller_thread: threading.Thread | None = None
        self.sweeps: list[dict] = []  # {started, ended, released}
        self.errors: list[str] = []
        self.waiters = 0
        self.calls: dict[str, list[float]] = {}  # "<service>.<operation>" → [count, seconds]
        # "<table>:<item type>:<handler>" → [calls, seconds, CPU seconds]: the poller thread's own CPU
        # (time.thread_time), the figure to trust on a loaded machine where wall time waits for cores.
        self.handlers: dict[str, list[float]] = {}
        self.record_types: dict[str, int] = {}  # "<function>:<item type>:<event>" → stream records delivered


def time_aws_calls(control: Control) -> None:
    """Count every AWS call this process makes, and the time it waits for each, by operation:
    where the run's time goes (the simulator reports it)."""
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def timed(client, operation, params):
        started = time.perf_counter()
        try:
            return original(client, operation, params)
        finally:
            key = f"{client.meta.service_model.service_name}.{operation}"
            with control.lock:
                entry = control.calls.setdefault(key, [0, 0.0])
                entry[0] += 1
                entry[1] += time.perf_counter() - started

    BaseClient._make_api_call = timed


def time_stream_handlers(control: Control) -> None:
    """Time every registered stream handler (per record, and per batch for batch handlers), by
    name: which capability the stream's time goes to."""
    from chalicelib import streams

    def timed(name, fn):
        def run(*args):
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return fn(*args)
            finally:
                with control.lock:
                    entry = control.handlers.setdefault(name, [0, 0.0, 0.0])
                    entry[0] += 1
                    entry[1] += time.perf_counter() - started
                    entry[2] += time.thread_time() - cpu
        return run

    streams.load_handlers()  # registered by a first batch otherwise: after this
    for registry in (streams._handlers, streams._batch_handlers):
        for (table, item_type), handlers in registry.items():
            handlers[:] = [timed(f"{table}:{item_type}:{fn.__module__.removeprefix('chalicelib.')}.{fn.__name__}", fn)
                           for fn in handlers]


def _thread_cpu(thread: threading.Thread | None) -> float:
    """CPU seconds a running thread has used (Linux: its per-thread clock); 0 when unknown."""
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (AttributeError, OSError, TypeError):
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--idle-sleep", type=float, default=0.1)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))

    from chalice.config import Config

    from chalicelib import bootstrap
    from chalicelib.core import aws, clock
    from chalicelib.core.config import settings
    from chalicelib.store.base import table_name
    from infra.local import scheduler
    from infra.local.gateway import local_server
    from infra.local.stream_poller import StreamPoller

    bootstrap.prepare(aws.dynamodb())
    from app import app


    control = Control()
    time_aws_calls(control)
    time_stream_handlers(control)

    def invoke(name: str, event: dict):
        from infra.local.stream_poller import LambdaContext

        started, cpu = time.perf_counter(), time.thread_time()
        try:
            result = app.handler_map[name](event, LambdaContext(name))
        finally:
            with control.lock:
                control.handler_seconds += time.perf_counter() - started
                control.handler_cpu_seconds += time.thread_time() - cpu
                control.batches += 1
                control.records += len(event.get("Records", []))
                for record in event.get("Records", []):
                    data = record.get("dynamodb", {})
                    image = data.get("NewImage") or data.get("OldImage") or {}
                    key = f"{name}:{image.get('type', {}).get('S', '?')}:{record.get('eventName')}"
                    control.record_types[key] = control.record_types.get(key, 0) + 1
        if isinstance(result, dict) and result.get("batchItemFailures"):
            with control.lock:
                control.failed_batches += 1
        return result

    poller = StreamPoller(app, aws.dynamodb(), aws.streams(), table_name, invoke=invoke, region=settings().region)

    sweep_name = "release_matured_rewards"
    original_sweep = app.handler_map[sweep_name]

    def sweep(event, context):
        started = time.monotonic()
        result = original_sweep(event, context)
        with control.lock:
            control.sweeps.append({"started": started, "ended": time.monotonic(), "released": result.get("released")})
            control.lock.notify_all()
        return result

    app.handler_map[sweep_name] = sweep

    stop = threading.Event()

    def poll_loop() -> None:
        while not stop.is_set():
            try:
                delivered = poller.poll_paced()  # as `make run` polls
            except Exception as exc:  # noqa: BLE001 - reported through /stats
                delivered = -1
                with control.lock:
                    control.errors.append(repr(exc))
            backoff = any(shard.failures for source in poller.sources for shard in source.shards.values())
            with control.lock:
                control.round += 1
                if delivered == 0 and not backoff:
                    control.idle_streak += 1
                else:
                    control.idle_streak = 0
                control.lock.notify_all()
            if delivered <= 0:
                stop.wait(args.idle_sleep)

    config = Config.create(chalice_stage="local", app_name=app.app_name, chalice_app=app)
    server = local_server(app, config, "127.0.0.1", args.port)
    override = float(os.environ.get("SCHEDULE_INTERVAL_SECONDS") or 1.0)

    class ControlHandler(BaseHTTPRequestHandler):
        def log_message(self, *a):  # quiet
            pass

        def _send(self, body: dict, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/settle":
                # Two consecutive idle rounds, both started after this request arrived.
                deadline = time.monotonic() + float(query.get("wait", 600))
                with control.lock:
                    control.waiters += 1
                    start_round = control.round
                    try:
                        while not (control.round >= start_round + 3 and control.idle_streak >= 2):
                            left = deadline - time.monotonic()
                            if left <= 0:
                                return self._send({"settled": False, **self._stats()}, 504)
                            control.lock.wait(left)
                    finally:
                        control.waiters -= 1
                return self._send({"settled": True, **self._stats()})
            if url.path == "/await-sweep":
                # A sweep that started after `after` (monotonic) and released nothing: all due entries are out.
                after = float(query["after"])
                deadline = time.monotonic() + float(query.get("wait", 600))
                with control.lock:
                    while not any(s["started"] > after and s["released"] == 0 for s in control.sweeps):
                        left = deadline - time.monotonic()
                        if left <= 0:
                            return self._send({"done": False}, 504)
                        control.lock.wait(left)
                    runs = [s for s in control.sweeps if s["started"] > after]
                return self._send({"done": True, "runs": len(runs), "released": sum(s["released"] for s in runs)})
            if url.path == "/stats":
                with control.lock:
                    return self._send(self._stats())
            if url.path == "/now":
                return self._send({"now": clock.now_iso(), "monotonic": time.monotonic()})
            return self._send({"error": "unknown"}, 404)

        def do_POST(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/advance":
                marker = time.monotonic()
                clock.advance(timedelta(seconds=float(query["seconds"])))
                return self._send({"now": clock.now_iso(), "monotonic": marker})
            return self._send({"error": "unknown"}, 404)

        @staticmethod
        def _stats() -> dict:
            from chalicelib.store import faults  # FAULTS in the environment (simulate --faults)

            plan = faults.active()
            return {"faults": dict(plan.injected) if plan else {},
                    "rounds": control.round, "records": control.records, "batches": control.batches,
                    "failed_batches": control.failed_batches, "handler_seconds": round(control.handler_seconds, 3),
                    "handler_cpu_seconds": round(control.handler_cpu_seconds, 3),
                    # the poller thread and the lanes it ran on its workers (parallelization_factor)
                    "poller_cpu_seconds": round(_thread_cpu(control.poller_thread) + poller.lane_cpu_seconds, 3),
                    "sweeps": len(control.sweeps), "errors": control.errors[-5:],
                    "handlers": {k: {"count": n, "seconds": round(t, 3), "cpu_seconds": round(c, 3)} for k, (n, t, c) in
                                 sorted(control.handlers.items(), key=lambda kv: -kv[1][1])},
                    "record_types": dict(sorted(control.record_types.items(), key=lambda kv: -kv[1])),
                    "calls": {k: {"count": n, "seconds": round(s, 3)} for k, (n, s) in sorted(control.calls.items())}}

    control_server = ThreadingHTTPServer(("127.0.0.1", args.control_port), ControlHandler)
    control_server.daemon_threads = True
    threads = [
        threading.Thread(target=server.server.serve_forever, name="http", daemon=True),
        threading.Thread(target=poll_loop, name="streams", daemon=True),  # threads[1]: the poller
        threading.Thread(target=scheduler.run, args=(app, stop, override), name="schedules", daemon=True),
        threading.Thread(target=control_server.serve_forever, name="control", daemon=True),
    ]
    control.poller_thread = threads[1]
    for thread in threads:
        thread.start()
    print(json.dumps({"ready": True, "port": args.port, "control_port": args.control_port}), flush=True)
    try:
        sys.stdin.read()  # the parent closes our stdin (or dies) to stop us
    except KeyboardInterrupt:
        pass
    stop.set()
    server.server.shutdown()
    control_server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
