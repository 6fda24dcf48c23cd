"""Viral-campaign simulator: a seeded branching process driven through the HTTP API, checked
to the point and the fen against an independent oracle (bench/model.py).

    python -m bench.simulate [--members 2000] [--seed 7] [--concurrency 8] [--json-out F]

It starts its own DynamoDB Local (in memory, free port) and the service (bench/server.py:
Chalice's local HTTP server + the stream poller + the scheduler, in one subprocess), so it
never touches a running `make run`. Clients are concurrent threads with keep-alive
connections. Time: the server process moves its own clock (`clock.advance`, through the
bench control port) by 8 days twice, and the real scheduler (every 1 s) releases the matured
rewards; the simulator waits for a sweep that started after the move and released nothing.

Exit status 0 when every member's ledger entries (kind, unit, amount, reversed amount,
status, held), balances (available, pending), referral counters (signed_up, converted), the
campaign budgets, the click counters, every campaign's all-time leaderboards (top 100 by
referrals, GMV and points) and its funnel (clicks, sign-ups, first purchases, GMV, invites,
rewards cost) equal the oracle's; 1 with a diff otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs, quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import model  # noqa: E402
from bench.stack import DynamoDBLocal, HttpClient, Service, batch_get_all, percentile, process_cpu  # noqa: E402
from chalicelib.members.models import SignupCount  # noqa: E402
from chalicelib.rewards.budget import SHARDS as BUDGET_SHARDS  # noqa: E402

DAY = 86400
RELEASE_JUMP = 8 * DAY  # > hold_days (7)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class Failure(Exception):
    pass


class Simulation:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.world = model.generate(args.members, args.seed)
        self.steps: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.member_ids: dict[int, str] = {}
        self.tokens: dict[int, str] = {}
        self.codes: dict[int, str] = {}
        self.links: dict[int, list[str]] = {}
        self.bound_between: dict[int, tuple[datetime, datetime]] = {}
        self.clicks_by_code: dict[str, int] = {}
        self.clicks_by_campaign: dict[str, int] = {}
        self.attributions: dict[int, dict] = {}
        self.order_times: dict[str, datetime] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def run_step(self, name: str, tasks: Iterable[Callable[[], None]], settle: bool = True) -> None:
        tasks = list(tasks)
        before = self.http.requests
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.args.concurrency) as pool:
            for future in [pool.submit(t) for t in tasks]:
                try:
                    future.result()
                except Exception as exc:  # noqa: BLE001 - collected, the run fails at the end
                    self.errors.append(f"{name}: {exc!r}")
        http_seconds = time.perf_counter() - started
        settle_started = time.perf_counter()
        stats = self.service.settle() if settle else {}
        self.steps.append({"step": name, "tasks": len(tasks), "requests": self.http.requests - before,
                           "http_seconds": http_seconds, "settle_seconds": time.perf_counter() - settle_started,
                           "stream_records": stats.get("records")})
        if self.args.verbose:
            print(f"  {name}: {len(tasks)} tasks, {self.http.requests - before} requests in {http_seconds:.1f}s, "
                  f"settled in {time.perf_counter() - settle_started:.1f}s", flush=True)

    def call(self, op: str, method: str, path: str, expect: int, body: Any = None, token: str | None = None):
        status, headers, data = self.http.request(op, method, path, body, token)
        if status != expect:
            raise Failure(f"{method} {path} → {status} (expected {expect}): {str(data)[:300]}")
        return headers, data

    # -- the run -----------------------------------------------------------------------------
    def start(self) -> None:
        from chalicelib.core import auth
        from chalicelib.core.config import settings

        self.ddb = DynamoDBLocal() if not self.args.ddb_endpoint else None
        endpoint = self.args.ddb_endpoint or self.ddb.endpoint
        self.prefix = f"sim{self.args.seed}-{int(time.time())}-"
        out = Path(self.args.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.service = Service(endpoint, self.prefix, log_path=out / "simulate-server.log")
        os.environ.update({"JWT_SECRET": self.service.jwt_secret, "STAGE": "local"})
        settings.cache_clear()
        self.http = HttpClient(self.service.port)
        self.ops_token = auth.issue_token("bench-ops", auth.OPS, ttl_seconds=7 * DAY)  # the staff maximum
        self.service_token = auth.issue_token("bench-backend", auth.SERVICE, ttl_seconds=90 * DAY)
        import boto3

        self.raw = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id="bench", aws_secret_access_key="bench")
        self.cpu_start = self.cpu_now()

    def cpu_now(self) -> dict[str, float]:
        """CPU seconds used so far by the service process, DynamoDB Local and this process (the
        clients, the model and the verification): what a larger run needs of the machine."""
        own = os.times()
        return {"service": process_cpu(self.service.process.pid),
                "dynamodb_local": process_cpu(self.ddb.process.pid) if self.ddb else 0.0,
                "simulator": own.user + own.system}

    def stop(self) -> None:
        """Also after a start that failed half-way (e.g. CreateTable timing out under load): what
        was started is stopped, so no DynamoDB Local is left running."""
        service, ddb = getattr(self, "service", None), getattr(self, "ddb", None)
        try:
            if service is not None:
                service.stop()
        finally:
            if ddb is not None:
                ddb.stop()

    def campaigns(self) -> None:
        rules = model.sim_campaign_rules()
        for campaign_id in self.world.campaigns:
            self.call("campaign", "POST", "/v1/campaigns", 200, token=self.ops_token, body={
                "campaign_id": campaign_id, "name": f"Simulated {campaign_id}", "offer": "¥10 off",
                "landing_url": "https://shop.example.com/viral", "rules": rules})
        _, default = self.call("campaign", "GET", "/v1/campaigns/default", 200, token=self.ops_token)
        self.default_rules = default["rules"]
        self.rules = {c: rules for c in self.world.campaigns}
        spend = model.gross_spend(self.world, self.rules, self.default_rules)
        budgets = {**{c: rules["budget_points"] for c in self.world.campaigns},
                   "default": self.default_rules.get("budget_points")}
        for campaign_id, spent in spend.items():
            budget = budgets.get(campaign_id)
            if budget is not None and spent > model.BUDGET_HEADROOM * budget:
                raise Failure(f"campaign {campaign_id} would spend {spent} of {budget}: the budget could bind, "
                              "and then the outcome would depend on order; use fewer members per campaign")

    def login(self, m: model.SimMember, referral: dict | None = None) -> None:
        body = {"provider": "dev", "openid": m.openid, "display_name": f"Sim {m.idx}", "device_id": m.device}
        if referral:
            body["referral"] = referral
        sent = now_utc()
        _, data = self.call("login_referral" if referral else "login", "POST", "/v1/auth/login", 200, body=body)
        received = now_utc()
        if not data.get("created"):
            raise Failure(f"member {m.idx} was not created by its first login")
        self.member_ids[m.idx] = data["member"]["member_id"]
        self.tokens[m.idx] = data["access_token"]
        if referral:
            self.bound_between[m.idx] = (sent, received)
            self.attributions[m.idx] = data.get("attribution") or {}

    def share(self, m: model.SimMember) -> None:
        token = self.tokens[m.idx]
        _, code = self.call("my_code", "GET", f"/v1/members/me/code?campaign_id={m.campaign}", 200, token=token)
        self.codes[m.idx] = code["code"]
        links = []
        for channel in m.channels:
            _, link = self.call("create_link", "POST", "/v1/links", 201, token=token,
                                body={"channel": channel, "campaign_id": m.campaign})
            links.append(link["link_id"])
        self.links[m.idx] = links

    def visit(self, v: model.Visit) -> None:
        advocate = self.world.members[v.advocate]
        code, link = self.codes[v.advocate], self.links[v.advocate][v.link]
        if v.lookup:
            _, info = self.call("code_lookup", "GET", f"/v1/codes/{code}", 200)
            if not info.get("valid"):
                raise Failure(f"code {code} looked up as invalid")
        click_id = None
        for n in range(v.clicks):
            headers, _ = self.call("click", "GET", f"/r/{code}?l={quote(link)}", 302)
            params = parse_qs(urlsplit(headers["location"]).query)
            if params.get("ref") != [code] or not params.get("click"):
                raise Failure(f"click on {code} redirected without attribution: {headers['location']}")
            with self.http.lock:
                self.clicks_by_code[code] = self.clicks_by_code.get(code, 0) + 1
                self.clicks_by_campaign[advocate.campaign] = self.clicks_by_campaign.get(advocate.campaign, 0) + 1
            if n == 0:
                click_id = params["click"][0]
        if v.signup is not None:
            self.login(self.world.members[v.signup], {"code": code, "click_id": click_id})

    def purchase(self, o: model.SimOrder) -> None:
        at = self.base + timedelta(minutes=o.offset_minutes)
        self.order_times[o.order_id] = at
        self.call("purchase", "POST", "/v1/events/purchases", 200, token=self.service_token, body={
            "order_id": o.order_id, "member_id": self.member_ids[o.member], "amount_fen": o.amount,
            "occurred_at": model.iso(at)})

    def refund_set(self, parts: list[model.SimRefund]) -> None:
        for r in parts:  # one order's refunds in order, one after the other
            at = self.order_times[r.order_id] + timedelta(minutes=r.offset_minutes)
            self.call("refund", "POST", "/v1/events/refunds", 200, token=self.service_token, body={
                "order_id": r.order_id, "refund_id": r.refund_id, "amount_fen": r.amount, "occurred_at": model.iso(at)})

    def release(self, name: str) -> None:
        started = time.perf_counter()
        marker = self.service.control("POST", "/advance", seconds=RELEASE_JUMP)["monotonic"]
        swept = self.service.control("GET", "/await-sweep", timeout=6 * 3600 + 60, after=marker, wait=6 * 3600)
        stats = self.service.settle()
        self.steps.append({"step": name, "tasks": 0, "requests": 0, "http_seconds": 0.0,
                           "settle_seconds": time.perf_counter() - started, "stream_records": stats.get("records"),
                           "released": swept.get("released")})
        if self.args.verbose:
            print(f"  {name}: released {swept.get('released')} entries in {swept.get('runs')} sweeps, "
                  f"{time.perf_counter() - started:.1f}s", flush=True)

    def drive(self) -> None:
        w = self.world
        members = w.members
        t0 = time.perf_counter()
        self.campaigns()
        by_gen: dict[int, list[model.SimMember]] = {}
        for m in members:
            by_gen.setdefault(m.gen, []).append(m)
        for gen, visits in enumerate(w.visits_by_gen):
            roots = [m for m in by_gen.get(gen, []) if m.referrer is None and m.idx not in self.member_ids]
            if roots:
                self.run_step(f"gen {gen}: roots log in", [lambda m=m: self.login(m) for m in roots], settle=False)
            sharers = [m for m in by_gen.get(gen, []) if m.channels and m.idx in self.member_ids]
            self.run_step(f"gen {gen}: codes and links", [lambda m=m: self.share(m) for m in sharers], settle=False)
            self.run_step(f"gen {gen}: clicks, lookups, sign-ups", [lambda v=v: self.visit(v) for v in visits],
                          settle=False)
        missing = [m.idx for m in members if m.idx not in self.member_ids]
        if missing:
            raise Failure(f"{len(missing)} members never signed up (first: {missing[:5]}); "
                          f"first request errors: {self.errors[:3]}")
        self.run_step("sign-ups settle", [])
        self.engagement()
        self.red_packets()
        self.signup_seconds = time.perf_counter() - t0
        server_now = datetime.fromisoformat(self.service.control("GET", "/now")["now"].replace("Z", "+00:00"))
        self.base = server_now + timedelta(minutes=1)
        t1 = time.perf_counter()
        for phase in range(0, w.repeat_phase + 1):
            label = "phase 0 (cannot convert)" if phase == 0 else (
                "repeat purchases" if phase == w.repeat_phase else "burst (every converting purchase at once)")
            self.run_step(label, [lambda o=o: self.purchase(o) for o in w.orders_in(phase)])
        self.purchase_seconds = time.perf_counter() - t1
        for late in (False, True):
            grouped: dict[str, list[model.SimRefund]] = {}
            for r in w.refunds:
                if r.late == late:
                    grouped.setdefault(r.order_id, []).append(r)
            self.run_step("late refunds (after release)" if late else "refunds",
                          [lambda p=p: self.refund_set(p) for p in grouped.values()])
            self.release("release sweep 2" if late else "release sweep 1")
        self.drive_seconds = time.perf_counter() - t0

    # -- engagement: check-ins and share-for-gift assists ------------------------------------
    def engagement(self) -> None:
        self.plan = model.engagement_plan(self.world, self.rules)
        self.checkin_days: dict[int, str] = {}
        self.share_ids: dict[int, str] = {}
        self.run_step("check-ins (each tapped twice)", [lambda i=i: self.check_in(i) for i in self.plan.checkins],
                      settle=False)
        self.run_step("shares for gifts", [lambda s=s: self.open_share(s) for s, _ in self.plan.shares], settle=False)
        self.assist_answers: dict[int, list[int]] = {s: [] for s, _ in self.plan.shares}
        assists = [(sharer, a) for sharer, assisters in self.plan.shares for a in assisters]
        self.run_step("assists (one more than each target, all at once)",
                      [lambda s=s, a=a: self.assist(s, a) for s, a in assists])
        for sharer, answers in self.assist_answers.items():
            target = self.rules[self.world.members[sharer].campaign]["assist_target"]
            if sorted(answers) != [200] * target + [409]:
                self.errors.append(f"share of {sharer}: assist answers {sorted(answers)}, expected {target} x 200 "
                                   "and one 409 (past the target)")

    def check_in(self, idx: int) -> None:
        body = {"campaign_id": self.world.members[idx].campaign}
        _, first = self.call("checkin", "POST", "/v1/checkins", 200, body=body, token=self.tokens[idx])
        _, again = self.call("checkin", "POST", "/v1/checkins", 200, body=body, token=self.tokens[idx])
        if first["already_checked_in"] or not again["already_checked_in"] or again["day"] != first["day"]:
            raise Failure(f"member {idx} checked in twice on one day: {first} then {again}")
        self.checkin_days[idx] = first["day"]

    def open_share(self, idx: int) -> None:
        body = {"campaign_id": self.world.members[idx].campaign, "channel": "wechat_friend"}
        _, share = self.call("share_open", "POST", "/v1/shares", 201, body=body, token=self.tokens[idx])
        self.share_ids[idx] = share["share_id"]

    def assist(self, sharer: int, assister: int) -> None:
        status, _, _ = self.http.request("assist", "POST", f"/v1/shares/{self.share_ids[sharer]}/assists", None,
                                         self.tokens[assister])
        with self.http.lock:
            self.assist_answers[sharer].append(status)

    # -- red packets: one ops packet per campaign, claimed by more friends than it has shares --
    PACKET_TOTAL_FEN, PACKET_COUNT = 1000, 10

    def red_packets(self) -> None:
        self.packet_claims: dict[int, tuple[str, int]] = {}  # member → (campaign, amount) as answered
        packets: dict[str, str] = {}
        expires = (now_utc() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for campaign in sorted({m.campaign for m in self.world.members}):
            _, packet = self.call("red_packet", "POST", "/v1/red-packets", 201, token=self.ops_token, body={
                "campaign_id": campaign, "total_fen": self.PACKET_TOTAL_FEN, "count": self.PACKET_COUNT,
                "expires_at": expires})
            packets[campaign] = packet["packet_id"]
        claimers = {c: [m.idx for m in self.world.members if m.campaign == c][:self.PACKET_COUNT + 2] for c in packets}
        self.run_step("red packets (claimed by two more friends than shares, all at once)",
                      [lambda c=c, i=i: self.claim_packet(c, packets[c], i) for c in packets for i in claimers[c]],
                      settle=False)
        for campaign, packet_id in packets.items():
            won = [amount for c, amount in self.packet_claims.values() if c == campaign]
            if len(won) != min(self.PACKET_COUNT, len(claimers[campaign])) or min(won, default=1) < 1 or \
                    (len(claimers[campaign]) >= self.PACKET_COUNT and sum(won) != self.PACKET_TOTAL_FEN):
                self.errors.append(f"red packet {packet_id} of {campaign}: shares {sorted(won)} (expected "
                                   f"{self.PACKET_COUNT} shares ≥ 1 fen summing to {self.PACKET_TOTAL_FEN})")
        self.packet_ids = packets

    def claim_packet(self, campaign: str, packet_id: str, idx: int) -> None:
        status, _, data = self.http.request("red_packet_claim", "POST", f"/v1/red-packets/{packet_id}/claims", None,
                                            self.tokens[idx], extra_headers={"Idempotency-Key": f"claim-{idx}"})
        if status == 200:
            with self.http.lock:
                self.packet_claims[idx] = (campaign, data["amount_fen"])
        elif status != 409 or data["error"]["code"] != "packet_empty":
            raise Failure(f"claim of {packet_id} by {idx} → {status}: {str(data)[:200]}")

    # -- verification ------------------------------------------------------------------------
    def read_member(self, idx: int) -> dict[str, Any]:
        """The member's ledger (every page) over HTTP; the profile over HTTP for a sample, the rest
        from the stored member items (same fields, read in batches: saves a request per member)."""
        token = self.tokens[idx]
        me = None
        if idx % self.args.profile_every == 0:
            _, me = self.call("member_me", "GET", "/v1/members/me", 200, token=token)
        items, cursor = [], None
        while True:
            path = "/v1/members/me/ledger?limit=100" + (f"&cursor={quote(cursor)}" if cursor else "")
            _, page = self.call("ledger_page", "GET", path, 200, token=token)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return {"me": me, "ledger": items}

    def refresh_tokens(self) -> None:
        """Member tokens live at most 12 hours and the server's clock has moved 16 days: the
        members log in again (same identity, same member) before their ledgers are read."""
        def again(m: model.SimMember) -> None:
            _, data = self.call("login_again", "POST", "/v1/auth/login", 200,
                                body={"provider": "dev", "openid": m.openid})
            if data.get("created") or data["member"]["member_id"] != self.member_ids[m.idx]:
                raise Failure(f"member {m.idx} logging in again was not found as the same member")
            self.tokens[m.idx] = data["access_token"]

        self.run_step("verify: members log in again (fresh tokens)", [lambda m=m: again(m) for m in self.world.members],
                      settle=False)

    def verify(self) -> dict[str, Any]:
        w = self.world
        self.refresh_tokens()
        server_now = datetime.fromisoformat(self.service.control("GET", "/now")["now"].replace("Z", "+00:00"))
        expected = model.expected_outcome(w, self.member_ids, self.bound_between, self.base, self.rules,
                                          self.default_rules, released_until=server_now)
        model.add_engagement(expected, w, self.member_ids, self.rules, self.checkin_days, self.share_ids)
        model.add_red_packet_claims(expected, self.member_ids, self.packet_ids, self.packet_claims)
        model.add_points_boards(expected)
        actual: dict[int, dict] = {}

        def fetch(idx: int) -> None:
            actual[idx] = self.read_member(idx)

        t = time.perf_counter()
        self.run_step("verify: read every member's ledger (and a sample of profiles) over HTTP",
                      [lambda i=m.idx: fetch(i) for m in w.members], settle=False)
        stored = self.stored_members([self.member_ids[m.idx] for m in w.members])
        for m in w.members:
            if m.idx in actual and actual[m.idx]["me"] is None:
                item = stored[self.member_ids[m.idx]]
                actual[m.idx]["me"] = {
                    "points": {"available": int(item.get("points_available", {"N": "0"})["N"]),
                               "pending": int(item.get("points_pending", {"N": "0"})["N"])},
                    "advocate": {"referrals": {"signed_up": int(item.get("referrals_signed_up", {"N": "0"})["N"]),
                                               "converted": int(item.get("referrals_converted", {"N": "0"})["N"])}}}
        self.verify_seconds = time.perf_counter() - t
        diffs: list[str] = []
        for m in w.members:
            if m.idx not in actual:
                diffs.append(f"member {m.idx}: could not be read")
                continue
            member_id = self.member_ids[m.idx]
            me, ledger = actual[m.idx]["me"], actual[m.idx]["ledger"]
            want = expected.entries[member_id]
            got = {e["entry_id"]: e for e in ledger}
            for entry_id in sorted(set(want) | set(got)):
                e, g = want.get(entry_id), got.get(entry_id)
                if e is None:
                    diffs.append(f"{member_id} (#{m.idx}) {entry_id}: unexpected entry {json.dumps(g)}")
                    continue
                if g is None:
                    diffs.append(f"{member_id} (#{m.idx}) {entry_id}: missing; expected amount {e.amount} "
                                 f"reversed {e.reversed} status {e.status} held {e.held}")
                    continue
                pairs = (("kind", e.rule, g["kind"]), ("unit", e.unit, g["unit"]), ("amount", e.amount, g["amount"]),
                         ("reversed_amount", e.reversed, g["reversed_amount"]), ("status", e.status, g["status"]),
                         ("held", e.held, g["held"]))
                for name, a, b in pairs:
                    if a != b:
                        diffs.append(f"{member_id} (#{m.idx}) {entry_id}: {name} expected {a!r}, got {b!r}")
            balances = {"available": me["points"]["available"], "pending": me["points"]["pending"]}
            if balances != expected.balances[member_id]:
                diffs.append(f"{member_id} (#{m.idx}) balances: expected {expected.balances[member_id]}, got {balances}")
            referrals = me["advocate"]["referrals"]
            if referrals != expected.referrals[member_id]:
                diffs.append(f"{member_id} (#{m.idx}) referrals: expected {expected.referrals[member_id]}, got {referrals}")
            if m.referrer is not None:
                a = self.attributions.get(m.idx, {})
                want_attr = {"status": "bound", "click_linked": True, "held_for_review": m.shared_device}
                got_attr = {k: a.get(k) for k in want_attr}
                if got_attr != want_attr:
                    diffs.append(f"{member_id} (#{m.idx}) sign-up attribution: expected {want_attr}, got {got_attr}")
        # Budgets (no endpoint shows them: read the usage items directly, every shard).
        budgets = {}
        for campaign_id in [*w.campaigns, "default"]:
            keys = [{"pk": {"S": f"BUDGET#{campaign_id}"}, "sk": {"S": "BUDGET"}}] + [
                {"pk": {"S": f"BUDGET#{campaign_id}#{n}"}, "sk": {"S": "BUDGET"}} for n in range(BUDGET_SHARDS)]
            items = batch_get_all(self.raw, self.prefix + "main", keys, consistent=True)
            budgets[campaign_id] = sum(int(item["spent"]["N"]) for item in items if "spent" in item)
            want = expected.budgets.get(campaign_id, 0)
            if budgets[campaign_id] != want:
                diffs.append(f"budget {campaign_id}: expected spent {want}, got {budgets[campaign_id]}")
        # Click counters (stream-aggregated, in the control table): per code and per campaign.
        keys = [f"CNT#{c}" for c in self.clicks_by_code] + [f"CNT#CAMP#{c}" for c in self.clicks_by_campaign]
        want_counts = {**{f"CNT#{c}": n for c, n in self.clicks_by_code.items()},
                       **{f"CNT#CAMP#{c}": n for c, n in self.clicks_by_campaign.items()}}
        got_counts = {item["pk"]["S"]: int(item["total"]["N"]) for item in batch_get_all(
            self.raw, self.prefix + "control", [{"pk": {"S": k}, "sk": {"S": "COUNTS"}} for k in keys], consistent=True)}
        for key, n in want_counts.items():
            if got_counts.get(key, 0) != n:
                diffs.append(f"click counter {key}: expected {n}, got {got_counts.get(key, 0)}")
        diffs += self.check_boards(expected, server_now)
        diffs += self.check_funnel(expected, server_now)
        self.expected, self.actual = expected, actual
        return {"diffs": diffs, "budgets": budgets}

    def staff_token(self, server_now: datetime) -> str:
        """An ops token minted on the server's clock (it has moved past the first one's lifetime)."""
        from chalicelib.core import auth, clock

        clock.advance(server_now - clock.now())
        try:
            return auth.issue_token("bench-ops", auth.OPS, ttl_seconds=DAY)
        finally:
            clock.reset()

    def check_boards(self, expected: model.Outcome, server_now: datetime) -> list[str]:
        """Every campaign's all-time leaderboards, top 100 as ops see them, against the oracle:
        the same scores in the same order, each row the score the oracle gives that member (ties
        may list tied members in any order the service documents)."""
        token, diffs = self.staff_token(server_now), []
        self.board_rows = 0
        for campaign_id in [*self.world.campaigns, "default"]:
            for metric in ("referrals", "gmv", "points"):
                want = expected.boards.get((campaign_id, metric), {})
                _, board = self.call("leaderboard", "GET", f"/v1/leaderboards/{campaign_id}?metric={metric}"
                                     "&period=all&limit=100", 200, token=token)
                got = [(row["member"]["member_id"], row["score"]) for row in board["items"]]
                self.board_rows += len(got)
                top = sorted(want.values(), reverse=True)[:100]
                if [score for _, score in got] != top:
                    diffs.append(f"leaderboard {campaign_id}/{metric}: expected scores {top[:10]}…, "
                                 f"got {[score for _, score in got][:10]}…")
                for member_id, score in got:
                    if want.get(member_id) != score:
                        diffs.append(f"leaderboard {campaign_id}/{metric}: {member_id} expected "
                                     f"{want.get(member_id)}, got {score}")
        return diffs

    def check_funnel(self, expected: model.Outcome, server_now: datetime) -> list[str]:
        """Every campaign's funnel over the whole run against what the simulator sent and the
        oracle settled: clicks, sign-ups, first purchases (standing conversions), referred GMV,
        invites (links made) and the rewards' cost (points and coupon fen, net of reversals)."""
        token, diffs = self.staff_token(server_now), []
        first, last = (self.base - timedelta(days=1)).date(), (server_now + timedelta(days=1)).date()
        members = self.world.members
        for campaign_id in [*self.world.campaigns, "default"]:
            def total(metric: str) -> int:
                return sum(expected.boards.get((campaign_id, metric), {}).values())

            coupons = sum(e.standing for book in expected.entries.values() for e in book.values()
                          if e.unit == "coupon_fen" and e.campaign == campaign_id)
            want = {"clicks": self.clicks_by_campaign.get(campaign_id, 0),
                    "signups": sum(1 for m in members if m.referrer is not None and m.campaign == campaign_id),
                    "first_purchases": total("referrals"), "gmv_fen": total("gmv"),
                    "invites": sum(len(self.links.get(m.idx, [])) for m in members if m.campaign == campaign_id),
                    "points": total("points"), "coupon_fen": coupons}
            _, f = self.call("funnel", "GET", f"/v1/analytics/campaigns/{campaign_id}/funnel?from={first}&to={last}",
                             200, token=token)
            got = {**{k: f[k] for k in ("clicks", "signups", "first_purchases", "gmv_fen", "invites")},
                   "points": f["rewards_cost"]["points"], "coupon_fen": f["rewards_cost"]["coupon_fen"]}
            for name, value in want.items():
                if got[name] != value:
                    diffs.append(f"funnel {campaign_id} {name}: expected {value}, got {got[name]}")
        return diffs

    def stored_members(self, member_ids: list[str]) -> dict[str, dict]:
        """Member items, with `referrals_signed_up` made the total of the item and its count's shards."""
        keys = [{"pk": {"S": pk}, "sk": {"S": sk}} for m in member_ids
                for pk, sk in [(f"M#{m}", "PROFILE"), *SignupCount.keys(m)]]
        items = batch_get_all(self.raw, self.prefix + "main", keys, consistent=True)
        members = {item["pk"]["S"]: dict(item) for item in items if item["sk"]["S"] == "PROFILE"}
        for item in items:
            if item["sk"]["S"] != "PROFILE" and item["pk"]["S"] in members:
                member = members[item["pk"]["S"]]
                total = int(member.get("referrals_signed_up", {"N": "0"})["N"]) + int(item["count"]["N"])
                member["referrals_signed_up"] = {"N": str(total)}
        return {item["member_id"]["S"]: item for item in members.values()}

    def stream_lag(self) -> dict[str, Any]:
        """Purchase written (order.created_at) → ledger entry written (entry.created_at), both on
        the server's clock, for the entries the purchase phases created."""
        purchase_entries: dict[str, list[str]] = {}
        for idx, data in self.actual.items():
            for e in data["ledger"]:
                if e["kind"] in ("commission", "second_level") or (
                        e["kind"] == "conversion" and e["order_id"] in self.first_orders):
                    purchase_entries.setdefault(e["order_id"], []).append(e["created_at"])
        order_ids = sorted(purchase_entries)
        keys = [{"pk": {"S": f"O#{o}"}, "sk": {"S": "ORDER"}} for o in order_ids]
        created = {item["order_id"]["S"]: item["created_at"]["S"]
                   for item in batch_get_all(self.raw, self.prefix + "main", keys)}
        parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
        lags = [(parse(at) - parse(created[o])).total_seconds() for o, ats in purchase_entries.items()
                if o in created for at in ats]
        return {"entries": len(lags), "p50_s": percentile(lags, 0.5), "p95_s": percentile(lags, 0.95),
                "max_s": max(lags) if lags else float("nan")}

    def report(self, verification: dict[str, Any], lag: dict[str, Any], wall: float) -> dict[str, Any]:
        w = self.world
        ops = {op: {"n": len(v), "p50_ms": percentile(v, .5) * 1e3, "p95_ms": percentile(v, .95) * 1e3,
                    "p99_ms": percentile(v, .99) * 1e3} for op, v in sorted(self.http.latencies.items())}
        drive_requests = sum(s["requests"] for s in self.steps if not s["step"].startswith("verify"))
        drive_http = sum(s["http_seconds"] for s in self.steps if not s["step"].startswith("verify"))
        stats = self.service.control("GET", "/stats")
        return {
            "members": len(w.members), "seed": self.args.seed, "concurrency": self.args.concurrency,
            "generations": len(w.visits_by_gen), "campaigns": len(w.campaigns),
            "visits": sum(len(v) for v in w.visits_by_gen), "clicks": sum(self.clicks_by_code.values()),
            "lookups": len(self.http.latencies.get("code_lookup", [])),
            "signups": len(self.bound_between), "orders": len(w.orders), "refunds": len(w.refunds),
            "rank_phases": w.rank_phases, "conversions": self.expected.conversions,
            "fraud_held_referrals": self.expected.flagged,
            "ledger_entries": sum(len(b) for b in self.expected.entries.values()),
            "budgets": verification["budgets"],
            "wall_seconds": wall, "drive_seconds": self.drive_seconds, "signup_seconds": self.signup_seconds,
            "purchase_seconds": self.purchase_seconds, "verify_seconds": self.verify_seconds,
            "drive_requests": drive_requests, "drive_http_seconds": drive_http,
            "throughput_rps": drive_requests / drive_http if drive_http else float("nan"),
            "throughput_overall_rps": drive_requests / self.drive_seconds,
            "stream": {"records": stats["records"], "batches": stats["batches"], "failed_batches": stats["failed_batches"],
                       "handler_seconds": stats["handler_seconds"], "errors": stats["errors"]},
            "server_aws_calls": stats["calls"], "faults": stats.get("faults", {}),
            "cpu_seconds": {k: v - self.cpu_start[k] for k, v in self.cpu_now().items()},
            "cores": os.cpu_count(),
            "busy_retries": self.http.busy_retries,
            "stream_lag": lag, "ops": ops, "steps": self.steps,
            "board_rows": self.board_rows,
            "mismatches": len(verification["diffs"]), "request_errors": self.errors,
            "passed": not verification["diffs"] and not self.errors,
        }

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            self.start()
            self.drive()
            self.first_orders = {o.order_id for o in self.world.orders if o.kind == "first"}
            verification = self.verify()
            lag = self.stream_lag()
            result = self.report(verification, lag, time.perf_counter() - started)
            result["diff"] = verification["diffs"]
            return result
        finally:
            self.stop()


def fault_spec(text: str, seed: int) -> str:
    """>>> fault_spec("0.05", 7)
    'conflict=0.05,throttle=0.025,timeout=0.025,seed=7,backoff=0.01'
    """
    try:
        rate = float(text)
    except ValueError:
        return text
    return f"conflict={rate:g},throttle={rate / 2:g},timeout={rate / 2:g},seed={seed},backoff=0.01"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--ddb-endpoint", default=None, help="reuse a DynamoDB Local (default: start one)")
    parser.add_argument("--out-dir", default=str(ROOT / ".cache" / "bench"))
    parser.add_argument("--profile-every", type=int, default=5,
                        help="read GET /v1/members/me for every n-th member (the rest: stored member items)")
    parser.add_argument("--json-out", default=None)
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--faults", default=None, metavar="RATE|SPEC",
                        help="inject DynamoDB faults in the service (chalicelib/store/faults.py): a rate R means "
                             "conflict=R, throttle=R/2, timeout=R/2; or a FAULTS spec such as conflict=0.05,timeout=0.01")
    args = parser.parse_args(argv)
    if args.faults:
        import os

        os.environ["FAULTS"] = fault_spec(args.faults, args.seed)
    print(f"simulating {args.members} members (seed {args.seed}, concurrency {args.concurrency}) …", flush=True)
    sim = Simulation(args)
    result = sim.run()
    out = Path(args.out_dir)
    (out / "simulate-diff.txt").write_text("\n".join(result["diff"]) + "\n")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({k: v for k, v in result.items() if k != "diff"}, indent=1,
                                                  default=str))
    print(f"{result['members']} members, {result['signups']} sign-ups, {result['clicks']} clicks, "
          f"{result['orders']} orders, {result['refunds']} refunds, {result['conversions']} conversions, "
          f"{result['ledger_entries']} ledger entries; {result['drive_requests']} requests, "
          f"{result['throughput_rps']:.0f} req/s while sending; wall {result['wall_seconds']:.0f}s")
    if result["faults"]:
        print(f"faults injected in the service: {result['faults']}; busy (503) answers retried by the clients: "
              f"{result['busy_retries']}")
    for error in result["request_errors"][:20]:
        print("REQUEST ERROR", error)
    if result["diff"]:
        print(f"MISMATCH: {len(result['diff'])} differences between the oracle and the service "
              f"(all in {out / 'simulate-diff.txt'}):")
        for line in result["diff"][:40]:
            print("  " + line)
    if result["passed"]:
        print("exact check PASSED: every ledger entry, balance, referral counter, budget and click counter matches, "
              f"{result['board_rows']} leaderboard rows (top 100 of every campaign's boards) and every campaign's funnel")
        return 0
    print("exact check FAILED")
    return 1


if __name__ == "__main__":
    sys.exit(main())
