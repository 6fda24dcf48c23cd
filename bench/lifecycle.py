"""What the lifecycle sweep costs per 1,000 members per day, on DynamoDB Local.

A seeded population buys through a simulated year (regulars, occasional buyers, one-timers who
churn, some with a birthday set); every simulated day the stream handlers run for the day's
facts (not metered: that is the purchase's cost, in BENCHMARKS.md's micro benchmark), then the
sweep runs once for the day, metered with the billed-units model. A separate run of the sweep
with nothing due gives the fixed cost of each of its 96 runs a day.

    python -m bench.lifecycle --members 200 --days 365 --json-out .cache/bench/lifecycle.json
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.meter import Meter, Tally, tables_index_keys  # noqa: E402
from bench.stack import DynamoDBLocal, prepare_in_process  # noqa: E402

RUNS_PER_DAY = 96  # rate(15 minutes)


def population(n: int, seed: int) -> list[dict]:
    """Each member: mean days between purchases (None: buys once), when they stop, birthday."""
    rng = random.Random(seed)
    members = []
    for i in range(n):
        kind = rng.choices(["regular", "occasional", "once", "never"], [0.2, 0.35, 0.3, 0.15])[0]
        every = {"regular": 12, "occasional": 45, "once": None, "never": None}[kind]
        members.append({"id": f"lc{seed}-{i}", "kind": kind, "every": every,
                        "stops_after": rng.randint(60, 400) if kind != "never" else 0,
                        "first": rng.randint(0, 30), "amount": rng.choice([59_00, 129_00, 299_00, 899_00]),
                        "birthday": f"{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}" if rng.random() < 0.3 else None})
    return members


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle")
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    ddb = DynamoDBLocal()
    try:
        return run(args, ddb.endpoint)
    finally:
        ddb.stop()


def run(args, endpoint: str) -> int:
    prefix = f"lc-{int(time.time())}-"
    prepare_in_process(endpoint, prefix)
    from chalicelib.core import aws, clock
    import boto3

    from app import app
    from chalicelib.facts import service as facts
    from chalicelib.facts.schemas import PurchaseIn
    from chalicelib.lifecycle import sweep
    from chalicelib.members import service as members
    from chalicelib.members.models import Member
    from chalicelib.store.base import table_name
    from infra.local.stream_poller import StreamPoller

    poller = StreamPoller(app, aws.dynamodb(), aws.streams(), table_name)
    raw = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    meter = Meter(raw, tables_index_keys(prefix))
    people = population(args.members, args.seed)
    for p in people:
        members.find_or_create("backend", p["id"], member_id=p["id"], source="backend")
        if p["birthday"]:
            Member(*Member.key(p["id"])).update(actions=[Member.birthday.set(p["birthday"]),
                                                         Member.marketing_opt_in.set(True)])
    poller.drain()
    sweep_tally, moved, started = Tally(), 0, time.perf_counter()
    orders = 0
    with meter.installed():
        for day in range(args.days):
            for p in people:
                due = p["kind"] != "never" and day >= p["first"] and day - p["first"] <= p["stops_after"] and (
                    day == p["first"] if p["every"] is None else (day - p["first"]) % p["every"] == 0)
                if due:
                    orders += 1
                    facts.record_purchase(PurchaseIn(order_id=f"{p['id']}-d{day}", member_id=p["id"],
                                                     amount_fen=p["amount"]))
            poller.drain()
            meter.model, meter.label = True, "sweep"
            moved += sweep.run_due()
            meter.label = None
            sweep_tally.add(meter.tallies.pop("sweep", Tally()))
            poller.drain()
            clock.advance(timedelta(days=1))
        meter.model, meter.label = True, "empty"
        while sweep.run_due():  # anything left due now, then a run with nothing due
            pass
        meter.tallies.pop("empty", None)
        sweep.run_due()
        meter.label = None
        empty = meter.tallies.pop("empty", Tally())
    member_days = args.members * args.days
    per_k = 1000 / member_days
    result = {
        "members": args.members, "days": args.days, "seed": args.seed, "orders": orders,
        "reconciles": moved, "reconciles_per_1000_member_days": round(moved * per_k, 2),
        # the daily runs' own queries are the fixed cost below: counted there, not here
        "due_work_per_1000_member_days": {
            "calls": round((sweep_tally.total_calls - args.days * empty.total_calls) * per_k, 1),
            "rru": round((sweep_tally.model_rru - args.days * empty.model_rru) * per_k, 1),
            "wru": round(sweep_tally.model_wru * per_k, 1)},
        "empty_run": {"calls": empty.total_calls, "rru": round(empty.model_rru, 2)},
        "empty_runs_per_day": {"calls": empty.total_calls * RUNS_PER_DAY,
                               "rru": round(empty.model_rru * RUNS_PER_DAY, 1)},
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
