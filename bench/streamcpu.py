"""Stream CPU per purchase, in process: what the stream work of one purchase costs the machine.

    python -m bench.streamcpu [--purchases 200] [--group 20] [--profile F] [--json-out F]

bench/steady.py measures lag through the service in a subprocess, where the HTTP threads and
the poller share one interpreter (a profile there mixes them). Here one thread does everything:
members are set up through Chalice's test client on DynamoDB Local (roots, referees of roots,
referees of referees, a pool converted beforehand), then purchases in steady.py's mix
(converting first purchases, repeats of converted referees, purchases of members nobody
referred) are sent `--group` at a time, untimed, and the stream drain after each group is
measured: CPU seconds of this thread (`time.thread_time`: the poller's reads and decoding, and
every handler, by name), DynamoDB Local's CPU over the same drain (/proc), records, batches,
calls and request units. `--profile F` writes a cProfile of the drains only (sorted by
`python -m pstats F`). A group of 20 is one second of steady.py's 20 purchases/s.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.micro import Bench  # noqa: E402
from bench.stack import DynamoDBLocal, process_cpu  # noqa: E402
from bench.steady import FIRST_SHARE, REPEATS_EACH, UNREFERRED_SHARE  # noqa: E402


class StreamCpu(Bench):
    def __init__(self, endpoint: str, engine_pid: int | None, purchases: int, group: int, seed: int,
                 plain_parser: bool = False):
        if plain_parser:  # botocore's own parser, for comparison (core/wire.py off)
            from chalicelib.core import wire

            wire.install = lambda client: client
        super().__init__(endpoint, n=0, n_model=0)
        self.parse_seconds = 0.0
        self.engine_pid, self.purchases, self.group = engine_pid, purchases, group
        self.rng = random.Random(seed)
        self.handler_cpu: dict[str, list[float]] = {}  # name → [calls, CPU seconds, engine CPU seconds]
        self.handler_ops: dict[str, dict[str, int]] = {}  # name → DynamoDB operation → calls
        self.running: str | None = None
        self.counting = False  # only during the measured drains
        self._time_handlers()
        self._count_calls()
        self._time_parsing()

    def _time_handlers(self) -> None:
        from chalicelib import streams

        def timed(name, fn):
            def run(*args):
                cpu, engine, self.running = time.thread_time(), process_cpu(self.engine_pid), name
                try:
                    return fn(*args)
                finally:
                    self.running = None
                    entry = self.handler_cpu.setdefault(name, [0, 0.0, 0.0])
                    entry[0] += 1
                    entry[1] += time.thread_time() - cpu
                    entry[2] += process_cpu(self.engine_pid) - engine
            return run

        for registry in (streams._handlers, streams._batch_handlers):
            for (table, item_type), handlers in registry.items():
                handlers[:] = [timed(f"{table}:{item_type}:{fn.__module__.removeprefix('chalicelib.')}.{fn.__name__}",
                                     fn) for fn in handlers]

    def _count_calls(self) -> None:
        """DynamoDB calls by the handler that made them (outside handlers: the poller's)."""
        from botocore.client import BaseClient

        original = BaseClient._make_api_call

        def counted(client, operation, params):
            if not self.counting:
                return original(client, operation, params)
            ops = self.handler_ops.setdefault(self.running or "(poller)", {})
            ops[operation] = ops.get(operation, 0) + 1
            return original(client, operation, params)

        BaseClient._make_api_call = counted

    def _time_parsing(self) -> None:
        """CPU spent turning DynamoDB's answers into Python (botocore's parser, or core/wire.py's)."""
        from botocore import parsers

        original = parsers.ResponseParser.parse

        def timed(parser, response, shape):
            if not self.counting:
                return original(parser, response, shape)
            cpu = time.thread_time()
            try:
                return original(parser, response, shape)
            finally:
                self.parse_seconds += time.thread_time() - cpu

        parsers.ResponseParser.parse = timed

    # -- members, as steady.py plans them ----------------------------------------------------
    def members(self) -> dict[str, list[dict]]:
        n_first = max(1, int(self.purchases * FIRST_SHARE))
        n_unreferred = int(self.purchases * UNREFERRED_SHARE)
        n_pool = max(1, -(-(self.purchases - n_first - n_unreferred) // REPEATS_EACH))
        roots = []
        for i in range(max(2, (n_first + n_pool) // 40, n_unreferred // 8)):
            data = self.login(f"root-{uuid.uuid4().hex[:10]}")
            code = json.loads(self.req("GET", "/v1/members/me/code", token=data["access_token"]).body)["code"]
            roots.append({"member_id": data["member"]["member_id"], "code": code})
        referees: list[dict] = []
        sharers: list[dict] = []
        for i in range(n_first + n_pool):
            # Half are referees of roots, half of generation-1 sharers (their purchases pay a grandparent).
            parent = self.rng.choice(roots) if i % 2 == 0 or not sharers else self.rng.choice(sharers)
            data = self.login(f"friend-{uuid.uuid4().hex[:10]}", {"code": parent["code"]})
            member = {"member_id": data["member"]["member_id"]}
            if parent in roots and len(sharers) < 1 + i // 6:
                member["code"] = json.loads(self.req("GET", "/v1/members/me/code",
                                                     token=data["access_token"]).body)["code"]
                sharers.append(member)
            referees.append(member)
        self.drain()
        self.rng.shuffle(referees)
        pool, waiting = referees[:n_pool], referees[n_pool:]
        for member in pool:
            self.purchase(member, 120_00)
        self.drain()
        return {"roots": roots, "pool": pool, "waiting": waiting, "n_unreferred": n_unreferred}

    def purchase(self, member: dict, amount_fen: int) -> None:
        self.req("POST", "/v1/events/purchases", {"order_id": f"ord-{uuid.uuid4().hex[:16]}",
                                                  "member_id": member["member_id"], "amount_fen": amount_fen},
                 token=self.service_token)

    # -- the measured drains ------------------------------------------------------------------
    def run(self, profile_path: str | None = None) -> dict[str, Any]:
        self.drain()
        who = self.members()
        kinds = (["first"] * len(who["waiting"]) + ["unreferred"] * who["n_unreferred"])
        kinds += ["repeat"] * (self.purchases - len(kinds))
        self.rng.shuffle(kinds)
        queues = {"first": iter(who["waiting"]),
                  "repeat": iter(who["pool"][i % len(who["pool"])] for i in range(len(kinds))),
                  "unreferred": iter(who["roots"][i % len(who["roots"])] for i in range(len(kinds)))}
        amounts = {"first": (50_00, 500_00), "repeat": (10_00, 300_00), "unreferred": (10_00, 200_00)}
        profiler = None
        if profile_path:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)
        self.handler_cpu.clear()
        self.handler_ops.clear()
        self.parse_seconds = 0.0
        h0, b0, r0 = self.handler_seconds, self.batches, self.records
        cpu = engine = wall = 0.0
        with self.meter.installed():
            for start in range(0, len(kinds), self.group):
                for kind in kinds[start:start + self.group]:
                    self.purchase(next(queues[kind]), self.rng.randint(*amounts[kind]))
                self.meter.label = "stream"
                t, c, e = time.perf_counter(), time.thread_time(), process_cpu(self.engine_pid)
                if profiler:
                    profiler.enable()
                self.counting = True
                self.drain()
                self.counting = False
                if profiler:
                    profiler.disable()
                cpu += time.thread_time() - c
                engine += process_cpu(self.engine_pid) - e
                wall += time.perf_counter() - t
                self.meter.label = None
        if profiler:
            profiler.dump_stats(profile_path)
        n = len(kinds)
        tally = self.meter.tallies.get("stream")
        self.client_cm.__exit__(None, None, None)
        return {
            "purchases": n, "group": self.group, "mix": {k: kinds.count(k) for k in amounts},
            "stream_cpu_ms": cpu / n * 1e3, "parse_cpu_ms": self.parse_seconds / n * 1e3, "engine_cpu_ms": engine / n * 1e3, "drain_wall_ms": wall / n * 1e3,
            "records": (self.records - r0) / n, "batches": (self.batches - b0) / n,
            "calls": tally.total_calls / n if tally else 0,
            "calls_by_op": {k: v / n for k, v in tally.calls.items()} if tally else {},
            "rru_reported": tally.rru / n if tally else 0, "wru_reported": tally.wru / n if tally else 0,
            "handlers": {name: {"calls": c / n, "cpu_ms": s / n * 1e3, "engine_cpu_ms": e / n * 1e3,
                                "aws_calls": {op: k / n for op, k in sorted(self.handler_ops.get(name, {}).items())}}
                         for name, (c, s, e) in sorted(self.handler_cpu.items(), key=lambda kv: -kv[1][1])},
            "poller_aws_calls": {op: k / n for op, k in sorted(self.handler_ops.get("(poller)", {}).items())},
            "load": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streamcpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--purchases", type=int, default=200)
    parser.add_argument("--group", type=int, default=20, help="purchases sent before each measured drain")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ddb-endpoint", default=None, help="reuse a DynamoDB Local (its CPU is then not read)")
    parser.add_argument("--profile", default=None, help="write a cProfile of the drains here")
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--plain-parser", action="store_true", help="botocore's parser (core/wire.py off)")
    args = parser.parse_args(argv)
    ddb = DynamoDBLocal() if not args.ddb_endpoint else None
    try:
        result = StreamCpu(args.ddb_endpoint or ddb.endpoint, ddb.process.pid if ddb else None, args.purchases,
                           args.group, args.seed, args.plain_parser).run(args.profile)
    finally:
        if ddb:
            ddb.stop()
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=1))
    print(f"{result['purchases']} purchases {result['mix']} in groups of {result['group']}: stream CPU "
          f"{result['stream_cpu_ms']:.0f} ms per purchase (parsing answers {result['parse_cpu_ms']:.1f} ms; DynamoDB Local {result['engine_cpu_ms']:.0f} ms; drain wall "
          f"{result['drain_wall_ms']:.0f} ms); {result['records']:.1f} records in {result['batches']:.2f} batches, "
          f"{result['calls']:.1f} calls, {result['rru_reported']:.1f} RRU / {result['wru_reported']:.1f} WRU reported; "
          f"load {result['load']}")
    print("  CPU ms, DynamoDB Local CPU ms, calls of the handler, its DynamoDB calls (per purchase)")
    for name, h in result["handlers"].items():
        ops = " ".join(f"{op} {k:.2f}" for op, k in h["aws_calls"].items())
        print(f"  {h['cpu_ms']:7.1f} {h['engine_cpu_ms']:7.1f}  {h['calls']:5.2f}  {name}  {ops}")
    print("  poller: " + " ".join(f"{op} {k:.2f}" for op, k in result["poller_aws_calls"].items()))
    for op, c in sorted(result["calls_by_op"].items()):
        print(f"  calls {op}: {c:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
