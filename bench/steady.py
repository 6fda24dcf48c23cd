"""Steady-state stream lag: purchases arriving at a steady rate, fact → ledger entry lag.

    python -m bench.steady [--rate 20] [--seconds 300] [--seed 7] [--json-out F]

The service is bench/server.py in a subprocess (Chalice's local server, the stream poller and
the scheduler, as `make run`) on its own DynamoDB Local; members are seeded with the
simulator's helpers (bench/simulate.py), not timed: referrers, their referees signed up through
a click on their link, and a pool of referees converted beforehand. Then `rate × seconds`
purchases are sent open loop — request i is due at start + i / rate whatever the latency of the
others (a pool of senders far larger than rate × latency), so the arrival rate is honest — in a
fixed mix: converting first purchases (conversion, commission and, two levels down, the
grandparent's share), repeat purchases of converted referees (commission, share) and purchases
of members nobody referred (own-purchase points only). Every purchase also earns own-purchase
points.

Lag is measured like the simulator's, on the server's clock: the order's `created_at` → the
`created_at` of each ledger entry that purchase caused. The run is checked against the oracle
(bench/model.py): every expected ledger entry exists exactly once with its kind, unit, amount
and reversed amount, and nothing else; a figure from a broken run is not reported as passing.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import model  # noqa: E402
from bench.simulate import Failure, Simulation  # noqa: E402
from bench.stack import batch_get_all, percentile, process_cpu  # noqa: E402

CAMPAIGN = "steady-1"
FIRST_SHARE = 0.25     # of the timed purchases: converting first purchases (one per waiting referee)
UNREFERRED_SHARE = 0.15  # ... purchases of members nobody referred; the rest: repeat purchases
REPEATS_EACH = 5       # repeat purchases per converted referee (keeps each member's spend under silver)
ORDERS_PER_ROOT = 8
MAX_REPEAT_FEN = 300_00  # 5 repeats + a first purchase stay under the program's silver tier (2,000 yuan)
MAX_ROOT_FEN = 200_00
SENDERS = 64  # open loop: enough senders that a slow answer never delays the next due request
LAG_KINDS = ("conversion", "commission", "second_level")  # own-purchase points are dated at the purchase


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- the open-loop schedule ----------------------------------------------------------------------

def due_offsets(rate: float, seconds: float) -> list[float]:
    """When each request is due, in seconds after the start: `rate × seconds` of them, evenly
    spaced; request i at i / rate (not after the previous one's answer)."""
    return [i / rate for i in range(int(round(rate * seconds)))]


def send_open_loop(tasks: list[Callable[[], None]], rate: float, submit: Callable[[Callable[[], None]], Any],
                   now: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> list[float]:
    """Hand task i to `submit` (which must not block: a pool) at start + i / rate. The schedule is
    anchored at the start, so a late hand-over (a busy machine) is followed at once by every
    request already due, never by a drift of the rest. Returns the hand-over times, relative to
    the start (their spread against the schedule shows whether the rate was kept)."""
    start = now()
    handed: list[float] = []
    for task, due in zip(tasks, due_offsets(rate, len(tasks) / rate)):
        wait = start + due - now()
        if wait > 0:
            sleep(wait)
        handed.append(now() - start)
        submit(task)
    return handed


# -- the run ---------------------------------------------------------------------------------------

def plan(total: int, seed: int) -> tuple[model.World, list[model.SimOrder], list[model.SimOrder]]:
    """The members and orders for `total` timed purchases: (world, setup orders, timed orders).

    Members: roots (referrers nobody referred), referees of the roots (generation 1) and referees
    of generation-1 sharers (generation 2, whose purchases pay a grandparent too). Referees are
    either waiting (their one timed purchase converts them) or converted in the setup (their timed
    purchases are repeats)."""
    rng = random.Random(seed)
    n_first = max(1, int(total * FIRST_SHARE))
    n_unreferred = int(total * UNREFERRED_SHARE)
    n_repeat = total - n_first - n_unreferred
    n_pool = max(1, math.ceil(n_repeat / REPEATS_EACH))
    n_roots = max(2, math.ceil(n_unreferred / ORDERS_PER_ROOT), (n_first + n_pool) // 40)
    members: list[model.SimMember] = []

    def add(gen: int, referrer: model.SimMember | None) -> model.SimMember:
        idx = len(members)
        m = model.SimMember(idx, f"steady{seed}-{idx}", gen, referrer.idx if referrer else None, CAMPAIGN,
                            f"dev-steady{seed}-{idx}")
        if referrer is not None:
            referrer.referees.append(idx)
        members.append(m)
        return m

    roots = [add(0, None) for _ in range(n_roots)]
    roles = ["first"] * n_first + ["pool"] * n_pool
    rng.shuffle(roles)
    half = len(roles) // 2
    gen1 = [add(1, rng.choice(roots)) for _ in roles[:half]]
    sharers = gen1[: max(1, len(gen1) // 3)]
    gen2 = [add(2, rng.choice(sharers)) for _ in roles[half:]]
    for m in roots + sharers:
        m.channels = ["wechat_friend"]
    referees = gen1 + gen2
    waiting = [m for m, role in zip(referees, roles) if role == "first"]
    pool = [m for m, role in zip(referees, roles) if role == "pool"]
    minimum = model.sim_campaign_rules()["min_purchase_fen"]
    counts: dict[int, int] = {}

    def order(m: model.SimMember, low: int, high: int, kind: str, offset: int, phase: int) -> model.SimOrder:
        n = counts[m.idx] = counts.get(m.idx, 0) + 1
        return model.SimOrder(f"st{seed}-o{m.idx}-{n}", m.idx, rng.randint(low, high), kind, offset, phase)

    # Setup conversions (phase 1), then the timed orders (phase 2, each a minute after the one
    # before: distinct times, so the conversion ranks in time are unambiguous).
    setup = [order(m, minimum, model.MAX_AMOUNT_FEN, "first", 1 + j, 1) for j, m in enumerate(pool)]
    kinds = ["first"] * n_first + ["repeat"] * n_repeat + ["unreferred"] * n_unreferred
    rng.shuffle(kinds)
    queues = {"first": iter(waiting), "repeat": iter(pool[i % n_pool] for i in range(n_repeat)),
              "unreferred": iter(roots[i % n_roots] for i in range(n_unreferred))}
    timed = []
    for i, kind in enumerate(kinds):
        m = next(queues[kind])
        low, high = {"first": (minimum, model.MAX_AMOUNT_FEN), "repeat": (10_00, MAX_REPEAT_FEN),
                     "unreferred": (10_00, MAX_ROOT_FEN)}[kind]
        timed.append(order(m, low, high, "first" if kind == "first" else "repeat", 2 + len(pool) + i, 2))
    visits = [[model.Visit(m.referrer, 0, False, 1, m.idx) for m in gen1],
              [model.Visit(m.referrer, 0, False, 1, m.idx) for m in gen2]]
    world = model.World(seed, members, visits, setup + timed, [], [CAMPAIGN], rank_phases=1)
    return world, setup, timed


class SteadyRun(Simulation):
    """The simulator's plumbing (service, clients, sign-ups, purchases, ledger reads) with a
    steady-traffic world instead of the viral one."""

    def __init__(self, args: argparse.Namespace):
        sim_args = argparse.Namespace(members=0, seed=args.seed, concurrency=args.concurrency,
                                      ddb_endpoint=args.ddb_endpoint, out_dir=args.out_dir, verbose=args.verbose,
                                      profile_every=1)
        super().__init__(sim_args)
        self.rate, self.seconds = args.rate, args.seconds
        self.world, self.setup_orders, self.timed_orders = plan(int(round(args.rate * args.seconds)), args.seed)

    def seed_members(self) -> None:
        self.campaigns()
        w = self.world
        by_gen: dict[int, list[model.SimMember]] = {}
        for m in w.members:
            by_gen.setdefault(m.gen, []).append(m)
        self.run_step("roots log in", [lambda m=m: self.login(m) for m in by_gen[0]], settle=False)
        for gen, visits in enumerate(w.visits_by_gen):
            sharers = [m for m in by_gen.get(gen, []) if m.channels]
            self.run_step(f"gen {gen}: codes and links", [lambda m=m: self.share(m) for m in sharers], settle=False)
            self.run_step(f"gen {gen + 1}: clicks and sign-ups", [lambda v=v: self.visit(v) for v in visits],
                          settle=False)
        self.run_step("sign-ups settle", [])
        server_now = datetime.fromisoformat(self.service.control("GET", "/now")["now"].replace("Z", "+00:00"))
        self.base = server_now + timedelta(minutes=1)
        self.run_step("setup conversions", [lambda o=o: self.purchase(o) for o in self.setup_orders])

    def steady(self) -> dict[str, Any]:
        """Send the timed purchases open loop; then wait until the streams are drained."""
        self.http.latencies.pop("purchase", None)
        before = self.service.control("GET", "/stats")
        errors: list[str] = []
        lock = threading.Lock()

        def task(o: model.SimOrder) -> Callable[[], None]:
            def run() -> None:
                try:
                    self.purchase(o)
                except Exception as exc:  # noqa: BLE001 - counted; the run fails
                    with lock:
                        errors.append(f"{o.order_id}: {exc!r}")
            return run

        load_start = loadavg()
        ddb_pid = self.ddb.process.pid if getattr(self, "ddb", None) else None
        ddb_cpu = process_cpu(ddb_pid)
        with ThreadPoolExecutor(max_workers=SENDERS) as pool:
            started = time.monotonic()
            handed = send_open_loop([task(o) for o in self.timed_orders], self.rate, pool.submit)
            sent = time.monotonic()
        answered = time.monotonic()
        load_end = loadavg()
        settled = self.service.settle()
        drained = time.monotonic()
        ddb_cpu = process_cpu(ddb_pid) - ddb_cpu
        self.errors += errors
        late = [h - d for h, d in zip(handed, due_offsets(self.rate, len(handed) / self.rate))]
        span = handed[-1] - handed[0] if len(handed) > 1 else float("nan")
        latencies = self.http.latencies.get("purchase", [])
        return {
            "purchases": len(self.timed_orders), "rate": self.rate, "seconds": self.seconds,
            "achieved_rate": (len(handed) - 1) / span if span else float("nan"),
            "hand_over_late_p99_ms": percentile(late, 0.99) * 1e3, "hand_over_late_max_ms": max(late) * 1e3,
            "sending_seconds": sent - started, "all_answered_seconds": answered - started,
            "drained_after_last_answer_seconds": drained - answered,
            # purchases per second from the first hand-over until the streams were drained
            "drain_rate": len(self.timed_orders) / (drained - started),
            "purchase_http_ms": {"p50": percentile(latencies, .5) * 1e3, "p95": percentile(latencies, .95) * 1e3,
                                 "p99": percentile(latencies, .99) * 1e3, "max": max(latencies, default=0) * 1e3},
            "stream": {k: settled.get(k, 0) - before.get(k, 0) for k in (
                "records", "batches", "failed_batches", "handler_seconds", "handler_cpu_seconds",
                "poller_cpu_seconds")},
            # DynamoDB Local's CPU from the first hand-over to the drain (HTTP requests included)
            "ddblocal_cpu_seconds": ddb_cpu,
            "stream_errors": settled["errors"],
            "stream_handlers": {k: {f: round(v.get(f, 0) - before.get("handlers", {}).get(k, {}).get(f, 0), 3)
                                    for f in ("count", "seconds", "cpu_seconds")}
                                for k, v in settled.get("handlers", {}).items()},
            "stream_record_types": {k: n - before.get("record_types", {}).get(k, 0)
                                    for k, n in settled.get("record_types", {}).items()
                                    if n - before.get("record_types", {}).get(k, 0)},
            "load_start": load_start, "load_end": load_end,
            "request_errors": len(errors),
        }

    def check(self) -> tuple[list[str], dict[int, list[dict]]]:
        """Every member's ledger over HTTP against the oracle: each expected entry once, with its
        kind, unit, amount and reversed amount, and no other entry."""
        expected = model.expected_outcome(self.world, self.member_ids, self.bound_between, self.base, self.rules,
                                          self.default_rules)
        ledgers: dict[int, list[dict]] = {}

        def fetch(idx: int) -> None:
            ledgers[idx] = self.read_member(idx)["ledger"]

        self.run_step("verify: every member's ledger over HTTP", [lambda i=m.idx: fetch(i) for m in self.world.members],
                      settle=False)
        diffs: list[str] = []
        for m in self.world.members:
            member_id = self.member_ids[m.idx]
            if m.idx not in ledgers:
                diffs.append(f"{member_id} (#{m.idx}): ledger could not be read")
                continue
            got: dict[str, dict] = {}
            for e in ledgers[m.idx]:
                if e["entry_id"] in got:
                    diffs.append(f"{member_id} (#{m.idx}) {e['entry_id']}: listed more than once")
                got[e["entry_id"]] = e
            want = expected.entries[member_id]
            for entry_id in sorted(set(want) | set(got)):
                e, g = want.get(entry_id), got.get(entry_id)
                if e is None:
                    diffs.append(f"{member_id} (#{m.idx}) {entry_id}: unexpected entry {json.dumps(g)}")
                elif g is None:
                    diffs.append(f"{member_id} (#{m.idx}) {entry_id}: missing; expected amount {e.amount}")
                else:
                    for name, a, b in (("kind", e.rule, g["kind"]), ("unit", e.unit, g["unit"]),
                                       ("amount", e.amount, g["amount"]), ("reversed_amount", e.reversed,
                                                                          g["reversed_amount"])):
                        if a != b:
                            diffs.append(f"{member_id} (#{m.idx}) {entry_id}: {name} expected {a!r}, got {b!r}")
        self.expected_entries = sum(len(book) for book in expected.entries.values())
        return diffs, ledgers

    def lags(self, ledgers: dict[int, list[dict]]) -> dict[str, Any]:
        """Order created_at → entry created_at for every entry a timed purchase caused (server clock)."""
        timed = {o.order_id for o in self.timed_orders}
        by_kind: dict[str, list[tuple[str, str]]] = {}
        for entries in ledgers.values():
            for e in entries:
                rule, _, source = e["entry_id"].partition(".")
                if rule in LAG_KINDS and source in timed:
                    by_kind.setdefault(rule, []).append((source, e["created_at"]))
        keys = [{"pk": {"S": f"O#{o}"}, "sk": {"S": "ORDER"}} for o in sorted(timed)]
        created = {item["order_id"]["S"]: item["created_at"]["S"]
                   for item in batch_get_all(self.raw, self.prefix + "main", keys, consistent=True)}
        parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731

        def summary(pairs: list[tuple[str, str]]) -> dict[str, Any]:
            lags = [(parse(at) - parse(created[o])).total_seconds() for o, at in pairs if o in created]
            return {"entries": len(lags), "p50_s": percentile(lags, .5), "p95_s": percentile(lags, .95),
                    "p99_s": percentile(lags, .99), "max_s": max(lags, default=float("nan"))}

        return {"all": summary([p for pairs in by_kind.values() for p in pairs]),
                **{kind: summary(by_kind.get(kind, [])) for kind in LAG_KINDS}}

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            self.start()
            t = time.perf_counter()
            self.seed_members()
            setup_seconds = time.perf_counter() - t
            figures = self.steady()
            t = time.perf_counter()
            diffs, ledgers = self.check()
            lag = self.lags(ledgers)
            stats = self.service.control("GET", "/stats")
        finally:
            self.stop()
        return {**figures, "members": len(self.world.members), "setup_seconds": setup_seconds,
                "setup_purchases": len(self.setup_orders), "verify_seconds": time.perf_counter() - t,
                "wall_seconds": time.perf_counter() - started, "ledger_entries": self.expected_entries,
                "lag": lag, "mismatches": len(diffs), "diff": diffs, "errors": self.errors[:20],
                "server_aws_calls": stats["calls"], "passed": not diffs and not self.errors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steady", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="purchases per second")
    parser.add_argument("--seconds", type=float, default=300.0, help="how long they keep arriving")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=8, help="clients for the (untimed) setup and checks")
    parser.add_argument("--ddb-endpoint", default=None, help="reuse a DynamoDB Local (default: start one)")
    parser.add_argument("--out-dir", default=str(ROOT / ".cache" / "bench" / "steady"))
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    run = SteadyRun(args)
    print(f"steady traffic: {len(run.timed_orders)} purchases at {args.rate:g}/s for {args.seconds:g} s "
          f"({len(run.world.members)} members, {len(run.setup_orders)} converted beforehand) …", flush=True)
    try:
        result = run.run()
    except Failure as exc:
        print(f"the run failed: {exc}")
        return 2
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({k: v for k, v in result.items() if k != "diff"}, indent=1))
    lag = result["lag"]["all"]
    print(f"arrival {result['achieved_rate']:.2f}/s (asked {args.rate:g}/s; hand-over late p99 "
          f"{result['hand_over_late_p99_ms']:.0f} ms); lag over {lag['entries']} entries p50 {lag['p50_s']:.2f} s, "
          f"p95 {lag['p95_s']:.2f} s, p99 {lag['p99_s']:.2f} s, max {lag['max_s']:.2f} s; streams "
          f"{result['stream']['records']} records in {result['stream']['batches']} batches; load "
          f"{result['load_start']} → {result['load_end']}")
    stream, n = result["stream"], max(1, result["purchases"])
    print(f"stream CPU per purchase: poller thread {stream['poller_cpu_seconds'] / n * 1e3:.0f} ms, of which in "
          f"the functions {stream['handler_cpu_seconds'] / n * 1e3:.0f} ms; drained "
          f"{result['drain_rate']:.2f} purchases/s; DynamoDB Local (requests and streams) "
          f"{result['ddblocal_cpu_seconds'] / n * 1e3:.0f} ms CPU per purchase")
    for name, h in sorted(result["stream_handlers"].items(), key=lambda kv: -kv[1]["cpu_seconds"])[:8]:
        print(f"  {name}: {h['cpu_seconds'] / n * 1e3:.1f} ms CPU per purchase ({h['count'] / n:.1f} calls)")
    for line in result["diff"][:30]:
        print("  " + line)
    for error in result["errors"]:
        print("REQUEST ERROR", error)
    print("exact check " + ("PASSED" if result["passed"] else f"FAILED ({result['mismatches']} differences)"))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
