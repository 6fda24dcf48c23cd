"""Per-operation figures, in process: Chalice's test client against DynamoDB Local.

For each operation (click, code lookup, login with referral, purchase, refund, ledger page):
latency p50/p95/p99 of the HTTP call; the floor — p50 of the minimal raw boto3 calls that
operation needs, measured in the same run on the same data — and our p50 / floor p50; the
DynamoDB calls and request units of the call; and, after each call, a drain of the streams
that measures what the stream handlers spend on the fact (calls, units, records, batches,
handler time). The default campaign is used, as seeded (7-day hold, monthly cap, budget).

    python -m bench.micro [--n 200] [--ddb-endpoint URL] [--json-out F] [--by-handler]
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.meter import Meter, Tally, tables_index_keys  # noqa: E402
from bench.stack import DynamoDBLocal, base_env, percentile as pct  # noqa: E402

OPS = ("click", "code_lookup", "login_referral", "purchase", "refund", "ledger_page")
FLOOR_CALLS = {
    "click": "GetItem code + PutItem click",
    "code_lookup": "GetItem code + BatchGetItem (campaign, referrer)",
    "login_referral": "GetItem identity + GetItem code + BatchGetItem (referrer, campaign, sign-up window, click) "
                      "+ TransactWriteItems (identity, member, referrer count shard, window counter)",
    "purchase": "GetItem member + PutItem order (condition: new)",
    "refund": "GetItem order + TransactWriteItems (refund, order's refunded total)",
    "ledger_page": "Query (lsi1, 20 entries)",
}


class Bench:
    def __init__(self, endpoint: str, n: int, n_model: int, drop: tuple[str, ...] = (), by_handler: bool = False):
        self.n, self.n_model, self.drop, self.by_handler = n, n_model, drop, by_handler
        self.prefix = f"micro-{int(time.time())}-"
        os.environ.update(base_env(endpoint, self.prefix, "bench-" + secrets.token_hex(24)))
        os.environ["PUBLIC_BASE_URL"] = "https://ref.example.com"
        from chalicelib import bootstrap
        from chalicelib.core import aws
        from chalicelib.core.config import settings

        settings.cache_clear()
        aws.reset()
        bootstrap.prepare(aws.dynamodb(), self.prefix)
        from chalice.test import Client

        from app import app
        without_handlers(self.drop)
        from chalicelib.core.auth import issue_token
        from chalicelib.store.base import table_name
        from infra.local.gateway import JsonNotFoundGateway
        from infra.local.stream_poller import StreamPoller, LambdaContext

        self.app = app
        self.client_cm = Client(app, stage_name="local", project_dir=str(ROOT))
        self.client = self.client_cm.__enter__()
        self.client.http._local_gateway = JsonNotFoundGateway(app, self.client.http._config)
        self.issue = issue_token
        self.service_token = issue_token("bench-backend", "service")
        self.handler_seconds = 0.0
        self.batches = 0
        self.records = 0

        self.records_by_type: dict[str, int] = {}

        def invoke(name: str, event: dict) -> Any:
            started = time.perf_counter()
            for record in event.get("Records", []):
                image = record["dynamodb"].get("NewImage") or record["dynamodb"].get("OldImage") or {}
                kind = (image.get("type") or {}).get("S", "?")
                self.records_by_type[kind] = self.records_by_type.get(kind, 0) + 1
            try:
                return app.handler_map[name](event, LambdaContext(name))
            finally:
                self.handler_seconds += time.perf_counter() - started
                self.batches += 1
                self.records += len(event.get("Records", []))

        self.poller = StreamPoller(app, aws.dynamodb(), aws.streams(), table_name, invoke=invoke)
        import boto3

        self.raw = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id="bench", aws_secret_access_key="bench")
        self.meter_raw = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                      aws_access_key_id="bench", aws_secret_access_key="bench")
        main, clicks = self.prefix + "main", self.prefix + "clicks"
        self.main, self.clicks = main, clicks
        self.meter = Meter(self.meter_raw, tables_index_keys(self.prefix))
        self.results: dict[str, dict[str, Any]] = {}
        if by_handler:
            label_handlers(self.meter)

    # -- HTTP helpers ------------------------------------------------------------------------
    def req(self, method: str, path: str, body: Any = None, token: str | None = None, expect: int = 200):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.http.request(method, path, headers=headers,
                                            body=json.dumps(body).encode() if body is not None else b"")
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path} → {response.status_code}: {response.body[:300]!r}")
        return response

    def login(self, openid: str, referral: dict | None = None) -> dict:
        body = {"provider": "dev", "openid": openid, "display_name": f"Bench {openid}", "device_id": "d-" + openid}
        if referral:
            body["referral"] = referral
        return json.loads(self.req("POST", "/v1/auth/login", body).body)

    def drain(self) -> None:
        self.poller.drain(max_rounds=200, ignore_backoff=True)

    # -- setup -------------------------------------------------------------------------------
    def setup(self) -> None:
        self.drain()
        self.referrers: list[dict] = []
        grandparents = []
        for i in range(10):
            data = self.login(f"gp{i}")
            token = data["access_token"]
            code = json.loads(self.req("GET", "/v1/members/me/code", token=token).body)["code"]
            grandparents.append(code)
        for i in range(40):
            data = self.login(f"ref{i}", {"code": grandparents[i % 10]})
            token = data["access_token"]
            link = json.loads(self.req("POST", "/v1/links", {"channel": "wechat_moments"}, token=token, expect=201).body)
            self.referrers.append({"member_id": data["member"]["member_id"], "token": token, "code": link["code"],
                                   "link": link["link_id"]})
        self.drain()

    # -- measuring ---------------------------------------------------------------------------
    def measure(self, op: str, call: Callable[[int], None], count: int, model: bool) -> dict[str, Any]:
        latencies, api, stream = [], Tally(), Tally()
        handler, batches, records = 0.0, 0, 0
        self.records_by_type = {}
        self.meter.model = model
        for i in range(count):
            self.meter.label = f"{op}:api"
            started = time.perf_counter()
            call(i)
            latencies.append(time.perf_counter() - started)
            h0, b0, r0 = self.handler_seconds, self.batches, self.records
            self.meter.label = f"{op}:stream"
            self.drain()
            handler += self.handler_seconds - h0
            batches += self.batches - b0
            records += self.records - r0
        self.meter.label = None
        api.add(self.meter.tallies.pop(f"{op}:api"))
        stream.add(self.meter.tallies.pop(f"{op}:stream", Tally()))
        by_handler = {}
        for label in [k for k in self.meter.tallies if k.startswith(f"{op}:stream:")]:
            tally = self.meter.tallies.pop(label)
            stream.add(tally)
            by_handler[label.split(":", 2)[2]] = tally
        return {"latencies": latencies, "api": api, "stream": stream, "handler_seconds": handler,
                "batches": batches, "records": records, "count": count, "by_handler": by_handler,
                "records_by_type": dict(self.records_by_type)}

    def run(self) -> dict[str, Any]:
        self.setup()
        clicks: list[tuple[str, str]] = []
        referees: list[dict] = []
        orders: list[tuple[str, int]] = []
        counter = {"login": 0, "order": 0, "refund": 0}

        def click(i: int) -> None:
            r = self.referrers[i % len(self.referrers)]
            response = self.req("GET", f"/r/{r['code']}?l={r['link']}", expect=302)
            clicks.append((r["code"], parse_qs(urlsplit(response.headers["Location"]).query)["click"][0]))

        def lookup(i: int) -> None:
            self.req("GET", f"/v1/codes/{self.referrers[i % len(self.referrers)]['code']}")

        def login(i: int) -> None:
            code, click_id = clicks[counter["login"] % len(clicks)]
            counter["login"] += 1
            data = self.login(f"friend-{uuid.uuid4().hex[:12]}", {"code": code, "click_id": click_id})
            referees.append(data["member"])

        def purchase(i: int) -> None:
            member = referees[counter["order"] % len(referees)]
            counter["order"] += 1
            order_id = f"ord-{uuid.uuid4().hex[:16]}"
            self.req("POST", "/v1/events/purchases", {"order_id": order_id, "member_id": member["member_id"],
                                                      "amount_fen": 120_00}, token=self.service_token)
            orders.append((order_id, 120_00))

        def refund(i: int) -> None:
            order_id, amount = orders[counter["refund"] % len(orders)]
            counter["refund"] += 1
            # Alternate: a 30 % refund (commission reversed in part) and a full one (un-converts).
            part = amount if i % 2 else amount * 3 // 10
            self.req("POST", "/v1/events/refunds", {"order_id": order_id, "refund_id": f"rf-{i}", "amount_fen": part},
                     token=self.service_token)

        def ledger(i: int) -> None:
            self.req("GET", "/v1/members/me/ledger?limit=20", token=self.referrers[i % len(self.referrers)]["token"])

        calls = {"click": click, "code_lookup": lookup, "login_referral": login, "purchase": purchase,
                 "refund": refund, "ledger_page": ledger}
        with self.meter.installed():
            for op in OPS:  # warm-up: first calls build clients, caches, counters
                for i in range(5):
                    calls[op](i)
                self.drain()
            counter.update(order=0, refund=0)
            orders.clear()
            latency, floors = {}, {}
            for op in OPS:  # each floor right after its operation: the same moment of the run
                latency[op] = self.measure(op, calls[op], self.n, model=False)
                floors[op] = self.floor(op, clicks)
            modelled = {}
            for op in OPS:  # the same again with the billed-units model, on fresh referees and orders
                if op == "purchase":
                    counter["order"] = len(referees) - self.n_model
                if op == "refund":
                    orders[:] = orders[-self.n_model:]
                    counter["refund"] = 0
                modelled[op] = self.measure(op, lambda i, f=calls[op], o=op: f(i + (5000 if o == "refund" else 0)),
                                            self.n_model, model=True)
            agreement = dict(self.meter.agreement)
        self.client_cm.__exit__(None, None, None)
        out = {}
        for op in OPS:
            lat, mod = latency[op], modelled[op]
            n = lat["count"]
            out[op] = {
                "n": n, "p50_ms": pct(lat["latencies"], .5) * 1e3, "p95_ms": pct(lat["latencies"], .95) * 1e3,
                "p99_ms": pct(lat["latencies"], .99) * 1e3,
                "floor_p50_ms": floors[op] * 1e3, "floor_calls": FLOOR_CALLS[op],
                "overhead": pct(lat["latencies"], .5) / floors[op],
                "api_calls": lat["api"].total_calls / n, "api_calls_by_op": {k: v / n for k, v in lat["api"].calls.items()},
                "api_failed": sum(lat["api"].failed.values()) / n,
                "api_rru_reported": lat["api"].rru / n, "api_wru_reported": lat["api"].wru / n,
                "api_rru": mod["api"].model_rru / mod["count"], "api_wru": mod["api"].model_wru / mod["count"],
                "stream_calls": lat["stream"].total_calls / n,
                "stream_calls_by_op": {k: v / n for k, v in lat["stream"].calls.items()},
                "stream_failed": sum(lat["stream"].failed.values()) / n,
                "stream_rru_reported": lat["stream"].rru / n, "stream_wru_reported": lat["stream"].wru / n,
                "stream_rru": mod["stream"].model_rru / mod["count"], "stream_wru": mod["stream"].model_wru / mod["count"],
                "stream_records": lat["records"] / n, "stream_batches": lat["batches"] / n,
                "stream_handler_ms": lat["handler_seconds"] / n * 1e3, "n_model": mod["count"],
                "stream_records_by_type": {k: v / n for k, v in sorted(lat["records_by_type"].items())},
                "wru_by_item": {k: v / mod["count"] for k, v in
                                (mod["api"].wru_by_item + mod["stream"].wru_by_item).most_common()},
            }
            if self.by_handler:
                m = mod["count"]
                out[op]["stream_by_handler"] = {
                    name: {"wru": t.model_wru / m, "rru": t.model_rru / m, "calls": t.total_calls / m}
                    for name, t in sorted(mod["by_handler"].items(), key=lambda kv: -kv[1].model_wru)}
        return {"ops": out, "model_agreement": agreement}

    # -- the floor: minimal raw boto3 calls, same data ---------------------------------------
    def floor(self, op: str, clicks: list[tuple[str, str]]) -> float:
        """p50 of the minimal raw calls `op` needs, on copies of the data it just used."""
        from chalicelib.store.tables import TABLES

        raw, main = self.raw, self.main
        floor_main, floor_clicks = self.prefix + "floor-main", self.prefix + "floor-clicks"
        if not getattr(self, "_floor_tables", False):
            for logical, name in (("main", floor_main), ("clicks", floor_clicks)):
                request = TABLES[logical].create_request(name)
                request.pop("StreamSpecification", None)  # same keys and indexes, no stream to drain
                raw.create_table(**request)
                raw.get_waiter("table_exists").wait(TableName=name)
            self._floor_tables = True

        def get(table: str, pk: str, sk: str, consistent: bool = False) -> dict | None:
            return raw.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                ConsistentRead=consistent).get("Item")

        def rekey(item: dict, **keys: str) -> dict:
            return {**item, **{k: {"S": v} for k, v in keys.items()}}

        r0 = self.referrers[0]
        member_pk = f"M#{r0['member_id']}"
        sample_click = raw.get_item(TableName=self.clicks, Key={"pk": {"S": f"K#{clicks[0][1]}"},
                                                               "sk": {"S": "CLICK"}})["Item"]
        sample_identity = raw.query(TableName=main, IndexName="gsi1", Limit=1, KeyConditionExpression="gsi1pk = :p",
                                    ExpressionAttributeValues={":p": {"S": f"REF#{r0['member_id']}"}})["Items"]
        referee_item = sample_identity[0] if sample_identity else get(main, member_pk, "PROFILE")
        if "created_at" not in referee_item:  # a DownlineEntry: the floor's one member item carries its keys
            referee_item = {**get(main, referee_item["pk"]["S"], "PROFILE"),
                            **{k: referee_item[k] for k in ("gsi1pk", "gsi1sk")}}
        sample_order = raw.query(TableName=main, IndexName="gsi1", Limit=1, KeyConditionExpression="gsi1pk = :p",
                                 ExpressionAttributeValues={":p": {"S": f"ORDERS#{referee_item['member_id']['S']}"}})["Items"]
        order_item = sample_order[0] if sample_order else None
        identity_item = {"pk": {"S": "ID#dev#x"}, "sk": {"S": "ID"}, "type": {"S": "identity"},
                         "provider": {"S": "dev"}, "subject": {"S": "x"},
                         "member_id": referee_item["member_id"], "created_at": referee_item["created_at"]}
        hour = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H")

        def click_floor(i: int) -> None:
            get(main, f"C#{r0['code']}", "CODE")
            raw.put_item(TableName=floor_clicks, Item=rekey(sample_click, pk=f"K#floor{i}-{uuid.uuid4().hex}"))

        def lookup_floor(i: int) -> None:
            get(main, f"C#{r0['code']}", "CODE")
            raw.batch_get_item(RequestItems={main: {"Keys": [{"pk": {"S": "CAMP#default"}, "sk": {"S": "CONFIG"}},
                                                             {"pk": {"S": member_pk}, "sk": {"S": "PROFILE"}}]}})

        def login_floor(i: int) -> None:
            new_id = f"floor-{i}-{uuid.uuid4().hex[:8]}"
            get(main, f"ID#dev#{new_id}", "ID")
            get(main, f"C#{r0['code']}", "CODE")
            raw.batch_get_item(RequestItems={main: {"Keys": [
                {"pk": {"S": member_pk}, "sk": {"S": "PROFILE"}}, {"pk": {"S": "CAMP#default"}, "sk": {"S": "CONFIG"}},
                {"pk": {"S": f"SIGNUPS#{r0['code']}"}, "sk": {"S": f"H#{hour}"}}]},
                self.clicks: {"Keys": [{"pk": sample_click["pk"], "sk": {"S": "CLICK"}}]}})
            raw.transact_write_items(TransactItems=[
                {"Put": {"TableName": floor_main, "Item": rekey(identity_item, pk=f"ID#dev#{new_id}"),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Put": {"TableName": floor_main, "Item": rekey(referee_item, pk=f"M#{new_id}"),
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": {"TableName": floor_main, "Key": {"pk": {"S": "M#floor-referrer"}, "sk": {"S": "PROFILE#SIGNUPS#0"}},
                            "UpdateExpression": "ADD #c :one", "ExpressionAttributeNames": {"#c": "count"},
                            "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                {"Update": {"TableName": floor_main, "Key": {"pk": {"S": f"SIGNUPS#{r0['code']}"}, "sk": {"S": f"H#{hour}"}},
                            "UpdateExpression": "ADD signups :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            ])

        def purchase_floor(i: int) -> None:
            get(main, f"M#{referee_item['member_id']['S']}", "PROFILE")
            raw.put_item(TableName=floor_main, Item=rekey(order_item, pk=f"O#floor-{i}-{uuid.uuid4().hex[:8]}"),
                         ConditionExpression="attribute_not_exists(pk)")

        def refund_floor(i: int) -> None:
            get(main, order_item["pk"]["S"], "ORDER", consistent=True)
            pk = f"O#floor-{i}"
            raw.transact_write_items(TransactItems=[
                {"Put": {"TableName": floor_main, "Item": {"pk": {"S": pk}, "sk": {"S": f"REFUND#{uuid.uuid4().hex[:8]}"},
                                                            "type": {"S": "refund"}, "amount_fen": {"N": "100"},
                                                            "order_id": {"S": pk}, "refund_id": {"S": "r"},
                                                            "member_id": order_item["member_id"],
                                                            "occurred_at": order_item["occurred_at"],
                                                            "request_hash": order_item["request_hash"],
                                                            "created_at": order_item["created_at"]},
                         "ConditionExpression": "attribute_not_exists(pk)"}},
                {"Update": {"TableName": floor_main, "Key": {"pk": {"S": pk}, "sk": {"S": "ORDER"}},
                            "UpdateExpression": "ADD refunded_fen :a", "ExpressionAttributeValues": {":a": {"N": "100"}}}},
            ])

        def ledger_floor(i: int) -> None:
            raw.query(TableName=main, IndexName="lsi1", Limit=20, ScanIndexForward=False,
                      KeyConditionExpression="pk = :p AND begins_with(lsi1sk, :l)",
                      ExpressionAttributeValues={":p": {"S": member_pk}, ":l": {"S": "LEDGER#"}})

        fn = {"click": click_floor, "code_lookup": lookup_floor, "login_referral": login_floor,
              "purchase": purchase_floor, "refund": refund_floor, "ledger_page": ledger_floor}[op]
        if op in ("purchase", "refund") and order_item is None:
            raise RuntimeError("no order to copy for the floor")
        for i in range(5):
            fn(-i - 1)
        times = []
        for i in range(self.n):
            started = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - started)
        return pct(times, .5)


INSIGHT = ("chalicelib.leaderboards", "chalicelib.funnel", "chalicelib.quality", "chalicelib.exports",
           "chalicelib.referrals.downline")


def label_handlers(meter: Meter) -> None:
    """Bill each stream handler's calls under its own name (`<op>:stream:<module>.<handler>`)."""
    from chalicelib import streams

    def labelled(fn: Callable) -> Callable:
        name = f"{fn.__module__.removeprefix('chalicelib.')}.{fn.__name__}"

        def run(*args: Any) -> Any:
            outer = meter.label
            if outer is None or not outer.endswith(":stream"):
                return fn(*args)
            meter.label = f"{outer}:{name}"
            try:
                return fn(*args)
            finally:
                meter.label = outer

        run.__module__ = fn.__module__
        return run

    for registry in (streams._handlers, streams._batch_handlers):
        for key, handlers in registry.items():
            registry[key] = [labelled(h) for h in handlers]


def without_handlers(modules: tuple[str, ...]) -> None:
    """Drop the stream handlers registered by `modules` (once app has registered them all)."""
    from chalicelib import streams

    streams.load_handlers()  # registered by a first batch otherwise: after this
    for registry in (streams._handlers, streams._batch_handlers):
        for key, handlers in registry.items():
            registry[key] = [h for h in handlers if not h.__module__.startswith(modules)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro")
    parser.add_argument("--n", type=int, default=200, help="calls per operation for latency, calls and units")
    parser.add_argument("--n-model", type=int, default=30, help="calls per operation for the billed-units model")
    parser.add_argument("--ddb-endpoint", default=None)
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--without-insight", action="store_true",
                        help="unregister the insight stream handlers (what they cost = the difference)")
    parser.add_argument("--by-handler", action="store_true",
                        help="also bill each stream handler's calls under its own name (billed-units model)")
    args = parser.parse_args(argv)
    ddb = DynamoDBLocal() if not args.ddb_endpoint else None
    try:
        result = Bench(args.ddb_endpoint or ddb.endpoint, args.n, args.n_model,
                       drop=INSIGHT if args.without_insight else (), by_handler=args.by_handler).run()
    finally:
        if ddb:
            ddb.stop()
    text = json.dumps(result, indent=1, default=str)
    if args.json_out:
        Path(args.json_out).write_text(text)
    for op, r in result["ops"].items():
        print(f"{op:15s} p50 {r['p50_ms']:6.1f} ms  p95 {r['p95_ms']:6.1f}  p99 {r['p99_ms']:6.1f}  floor {r['floor_p50_ms']:5.1f} "
              f"x{r['overhead']:.1f}  api calls {r['api_calls']:.2f} RRU {r['api_rru']:.2f} WRU {r['api_wru']:.2f}  "
              f"stream calls {r['stream_calls']:.2f} RRU {r['stream_rru']:.2f} WRU {r['stream_wru']:.2f}")
        print(f"{'':15s} stream records {r['stream_records']:.1f}: " +
              ", ".join(f"{k} {v:.1f}" for k, v in r["stream_records_by_type"].items()))
        print(f"{'':15s} WRU by item written: " + ", ".join(f"{k} {v:.1f}" for k, v in r["wru_by_item"].items()))
        for name, h in r.get("stream_by_handler", {}).items():
            if h["wru"] or h["rru"]:
                print(f"{'':15s}   {name:45s} WRU {h['wru']:6.2f}  RRU {h['rru']:6.2f}  calls {h['calls']:.2f}")
    print("model agreement on non-transactional writes:", result["model_agreement"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
