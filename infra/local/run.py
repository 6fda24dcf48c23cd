"""`make run`: the whole service on this machine, in one process tree.

DynamoDB Local (persistent in DATA_DIR) → tables created or updated from the specs → the
`default` campaign seeded → the HTTP API on 127.0.0.1:PORT → the stream poller driving the
`@app.on_dynamodb_record` handlers → the timer driving the `@app.schedule` handlers.
SIGINT/SIGTERM stop every part; a restart keeps the data and the stream checkpoints.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def configure_environment() -> dict[str, str]:
    env = os.environ
    env.setdefault("STAGE", "local")
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    port = env.setdefault("PORT", "8000")
    ddb_port = env.setdefault("DDB_PORT", "8001")
    env.setdefault("DATA_DIR", str(ROOT / ".data"))
    env.setdefault("DDB_ENDPOINT", f"http://127.0.0.1:{ddb_port}")
    env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{port}")
    return {"port": port, "ddb_port": ddb_port, "data_dir": env["DATA_DIR"]}


def main() -> int:
    opts = configure_environment()
    sys.path.insert(0, str(ROOT))
    from infra.local import ddblocal

    data_dir = Path(opts["data_dir"])
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        ddb_log = open(data_dir / "dynamodb-local.log", "ab")
        ddb = ddblocal.start(int(opts["ddb_port"]), data_dir / "dynamodb", log_file=ddb_log)
    except ddblocal.DynamoDBLocalError as exc:
        print(f"cannot start DynamoDB Local: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    threads: list[threading.Thread] = []
    server = None
    try:
        from chalice.config import Config

        from chalicelib import bootstrap
        from chalicelib.core import aws
        from chalicelib.core.config import settings
        from chalicelib.store.base import table_name
        from infra.local.gateway import local_server
        from infra.local import scheduler
        from infra.local.stream_poller import Checkpoints, StreamPoller

        bootstrap.prepare(aws.dynamodb())
        from app import app

        config = Config.create(chalice_stage="local", app_name=app.app_name, chalice_app=app)
        server = local_server(app, config, "127.0.0.1", int(opts["port"]))
        poller = StreamPoller(app, aws.dynamodb(), aws.streams(), table_name,
                              Checkpoints(data_dir / "stream-checkpoints.json"), region=settings().region)
        override = float(os.environ["SCHEDULE_INTERVAL_SECONDS"]) if os.environ.get("SCHEDULE_INTERVAL_SECONDS") else None
        threads = [
            threading.Thread(target=server.server.serve_forever, name="http", daemon=True),
            threading.Thread(target=poller.run, args=(stop,), name="streams", daemon=True),
            threading.Thread(target=scheduler.run, args=(app, stop, override), name="schedules", daemon=True),
        ]
        for thread in threads:
            thread.start()
        print(f"referral service on http://127.0.0.1:{opts['port']}  (DynamoDB Local on 127.0.0.1:{opts['ddb_port']}, "
              f"data in {data_dir}; streams: {len(poller.sources)} handlers; "
              f"schedules: {len(scheduler.schedules(app))}). Ctrl-C stops.", flush=True)
        while not stop.is_set():
            stop.wait(0.5)
    finally:
        stop.set()
        if server is not None:
            server.server.shutdown()
            server.server.server_close()
        for thread in threads:
            thread.join(timeout=5)
        ddblocal.stop(ddb)
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
