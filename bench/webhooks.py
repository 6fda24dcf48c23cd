"""Webhook deliveries on the local runtime: how many per second one sweep sends, and what an
event costs in DynamoDB from fan-out to delivered.

Members sign up (each a `member.created` event, among others); the stream handlers fan the
events out to the subscriptions (metered: `fanout`); then `send_due` runs until nothing is due,
POSTing to real HTTP receivers on loopback (metered: `deliver`, and timed).

    python -m bench.webhooks --members 1000 --subscriptions 2 --json-out .cache/bench/webhooks.json
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.meter import Meter, Tally, tables_index_keys  # noqa: E402
from bench.prices import DDB_RRU_USD, DDB_WRU_USD  # noqa: E402
from bench.stack import DynamoDBLocal, prepare_in_process  # noqa: E402


class Sink(BaseHTTPRequestHandler):
    received = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with Sink.lock:
            Sink.received += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 refuses connections when every sender posts at once
    daemon_threads = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=2)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    ddb = DynamoDBLocal()
    try:
        return run(args, ddb.endpoint)
    finally:
        ddb.stop()


def run(args, endpoint: str) -> int:
    prefix = f"wh-{int(time.time())}-"
    prepare_in_process(endpoint, prefix)
    from chalicelib.core import aws
    import boto3

    from app import app
    from chalicelib.members import service as members
    from chalicelib.store.base import table_name
    from chalicelib.webhooks import delivery, subscriptions
    from chalicelib.webhooks.models import Delivery
    from infra.local.stream_poller import StreamPoller

    server = Server(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    for n in range(args.subscriptions):
        subscriptions.create(url, ["member.created"], f"bench {n}", "bench")

    poller = StreamPoller(app, aws.dynamodb(), aws.streams(), table_name)
    raw = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    meter = Meter(raw, tables_index_keys(prefix))
    from chalicelib.webhooks import fanout

    def sign_up(batch: str) -> None:
        for i in range(args.members):
            members.find_or_create("backend", f"{batch}-{i}", member_id=f"{batch}-{i}", source="backend")

    def undelivered() -> list:
        return [d for hook in subscriptions.all_subscriptions(fresh=True)
                for d in Delivery.query(f"WH#{hook.webhook_id}", filter_condition=Delivery.status != "delivered")]

    def drain_deliveries() -> int:
        """Sweep runs until every delivery is delivered (a run that finds nothing due yet waits)."""
        runs = 0
        while runs < 50:
            runs += 1
            sent = delivery.send_due()
            label, meter.label = meter.label, None  # the bench's own check is not the sweep's cost
            left = undelivered()
            meter.label = label
            if not left:
                return runs
            if not sent:
                time.sleep(2)  # what is left is backing off
        raise RuntimeError("deliveries still pending after 50 runs")

    sign_up("cost")
    with meter.installed():
        meter.model = True
        # the fan-out's share of the stream handlers: the publish they call, metered alone
        original = fanout.publish

        def metered_publish(events):
            previous, meter.label = meter.label, "fanout"
            try:
                return original(events)
            finally:
                meter.label = previous

        fanout.publish = metered_publish
        poller.drain(max_rounds=100_000)
        fanout.publish = original
        meter.label = "deliver"
        drain_deliveries()
        meter.label = None
    # throughput without the meter (its billing model reads every written item twice)
    sign_up("speed")
    poller.drain(max_rounds=100_000)
    before, started = Sink.received, time.perf_counter()
    runs = drain_deliveries()
    elapsed = time.perf_counter() - started
    if Sink.received - before != args.members * args.subscriptions:
        raise RuntimeError(f"{Sink.received - before} deliveries received, {args.members * args.subscriptions} expected")
    deliveries = args.members * args.subscriptions
    retried = sum(1 for hook in subscriptions.all_subscriptions(fresh=True)
                  for d in Delivery.query(f"WH#{hook.webhook_id}") if int(d.attempts) > 1)
    fan, send = meter.tallies.get("fanout", Tally()), meter.tallies.get("deliver", Tally())
    per_k = 1000 / deliveries
    cost = {k: round(v * per_k, 1) for k, v in (("fanout_wru", fan.model_wru), ("fanout_rru", fan.model_rru),
                                               ("deliver_wru", send.model_wru), ("deliver_rru", send.model_rru))}
    usd = ((fan.model_wru + send.model_wru) * DDB_WRU_USD + (fan.model_rru + send.model_rru) * DDB_RRU_USD) * per_k
    result = {
        "events": args.members, "subscriptions": args.subscriptions, "deliveries": deliveries,
        "received": Sink.received - before, "deliveries_retried": retried, "sweep_runs": runs,
        "deliver_seconds": round(elapsed, 2), "deliveries_per_second": round(deliveries / elapsed, 1),
        "calls_per_1000_deliveries": {"fanout": round(fan.total_calls * per_k), "deliver": round(send.total_calls * per_k)},
        "units_per_1000_deliveries": cost, "ddb_usd_per_1000_deliveries": round(usd, 6),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
