"""Reading a leaderboard at scale: a top-100 page and "my rank" on boards of N members.

Seeds one board per metric straight into DynamoDB Local (score items on the rank index and the
score-bucket counts, as the stream handlers leave them; names for the members a top page shows),
then times the reads the routes make and meters their DynamoDB calls and read units:

- `top 100`: ranking.top + the names (the ops route's work);
- `my rank` of a member in the top thousand of its shard (exact: counts on the rank index) and
  far below it (estimated from the buckets), with the estimate's real error against the true
  rank computed here from the seeded scores.

    python -m bench.boards --members 100000 --json-out .cache/bench/boards.json
"""
from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.meter import Meter, tables_index_keys  # noqa: E402
from bench.stack import DynamoDBLocal, percentile, prepare_in_process  # noqa: E402

REPEATS = 30


def scores_for(metric: str, n: int, rng: random.Random) -> list[int]:
    """A viral campaign's shape: most advocates bring one or two friends, a few KOLs dozens;
    referred GMV spread over orders of magnitude (log-normal, median ≈ ¥80)."""
    if metric == "referrals":
        return [int(rng.paretovariate(1.6)) if rng.random() > 0.02 else rng.randint(20, 60)
                for _ in range(n)]
    return [max(1, int(math.exp(rng.gauss(9.0, 1.5)))) for _ in range(n)]


def seed(raw, table: str, board: str, scores: dict[str, int]) -> None:
    from chalicelib.leaderboards import rules

    def item(member: str, score: int) -> dict:
        return {"pk": {"S": f"LBS#{board}#{member}"}, "sk": {"S": "S"}, "type": {"S": "board_score"},
                "board": {"S": board}, "member_id": {"S": member}, "score": {"N": str(score)},
                "gsi1pk": {"S": f"LB#{board}#{rules.shard(member)}"}, "gsi1sk": {"S": rules.rank_key(score, member)}}

    buckets: dict[tuple[int, int], int] = {}
    for member, score in scores.items():
        key = (rules.shard(member), rules.bucket(score))
        buckets[key] = buckets.get(key, 0) + 1
    requests = [{"PutRequest": {"Item": item(m, s)}} for m, s in scores.items()]
    groups: dict[tuple[int, int], dict] = {}  # as scores.py writes them: one item per bucket group
    for (shard, b), c in buckets.items():
        groups.setdefault((shard, rules.bucket_group(b)), {})[f"b{b:03d}"] = {"N": str(c)}
    requests += [{"PutRequest": {"Item": {"pk": {"S": f"LBH#{board}#{shard}"}, "sk": {"S": f"G#{g:03d}"},
                                          "type": {"S": "board_bucket_group"}, **counts}}}
                 for (shard, g), counts in groups.items()]

    def write(chunk: list[dict]) -> None:
        pending = {table: chunk}
        while pending:
            pending = raw.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, [requests[i:i + 25] for i in range(0, len(requests), 25)]))


def timed(meter: Meter, label: str, fn) -> dict:
    """p50/p95 wall time over REPEATS calls (unmetered), then one metered call's calls and units."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    meter.label = label
    fn()
    meter.label = None
    tally = meter.tallies[label]
    return {"p50_ms": percentile(times, .5) * 1e3, "p95_ms": percentile(times, .95) * 1e3,
            "calls": dict(tally.calls), "rru": tally.model_rru, "result": result}


def run(args, endpoint: str) -> dict:
    prefix = f"lb-{int(time.time())}-"
    prepare_in_process(endpoint, prefix)
    import boto3

    from chalicelib.leaderboards import ranking, rules
    from chalicelib.members.models import Member

    raw = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    meter = Meter(raw, tables_index_keys(prefix))
    rng = random.Random(args.seed)
    out: dict = {"members": args.members, "repeats": REPEATS, "boards": {}}
    for metric in ("referrals", "gmv"):
        board = rules.board("bench", metric, "all")
        values = scores_for(metric, args.members, rng)
        scores = {f"m{i:06d}": s for i, s in enumerate(values)}
        started = time.perf_counter()
        seed(raw, prefix + "boards", board, scores)
        seeded = time.perf_counter() - started
        ordered = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        for member, _ in ordered[:100]:
            Member(*Member.key(member), member_id=member, display_name=f"会员 {member}", created_at="2026-11-01").save()

        def true_rank(score: int) -> int:
            return 1 + sum(1 for _, s in ordered if s > score)

        figures = {"seed_seconds": seeded, "distinct_scores": len(set(values))}
        with meter.installed():
            meter.model = False
            figures["top_100"] = timed(meter, f"{metric} top", lambda: ranking.with_names(ranking.top(board, 100), False))
            figures["top_100"]["result"] = len(figures["top_100"]["result"])
            for label, position in (("rank_in_top_thousand", 800), ("rank_far_below", args.members // 2)):
                member, score = ordered[position]
                fig = timed(meter, f"{metric} {label}", lambda m=member: ranking.rank_of(board, m))
                answer, truth = fig.pop("result"), true_rank(score)
                fig.update({"true_rank": truth, "answered_rank": answer["rank"], "exact": answer["exact"],
                            "stated_error": answer.get("error", 0), "real_error": abs(answer["rank"] - truth)})
                figures[label] = fig
        out["boards"][metric] = figures
        print(json.dumps({metric: figures}, indent=1, default=str), flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.boards")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    ddb = DynamoDBLocal()
    try:
        result = run(args, ddb.endpoint)
    finally:
        ddb.stop()
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
