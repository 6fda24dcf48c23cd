"""The simulated viral campaign (seeded, pure) and the independent oracle of its ledger.

Nothing here imports the service's reward or referral code: the oracle re-derives every
ledger entry from the campaign rules (plain JSON, the same document the simulator POSTs to
/v1/campaigns) and the generated facts. Where the service's documented behaviour has a
detail that matters for the exact figures, the oracle states it next to the computation.

Determinism. The service decides some things "at the moment a fact is processed" (which order
converts, whether a referral is held). The facts are therefore released in phases, each drained
(stream settled) before the next:

  sign-ups (by generation) → phase 0 (orders that cannot convert: below the minimum, or out of
  the window) → phase 1, a burst: every converting first purchase at once (a KOL's 20-60 friends
  sent concurrently) → repeat purchases → refunds → release → late refunds → release.

The commission rate is not such a decision: it is the level reached at the referee's conversion
rank in time (converted_at, ties by member id) among the conversions standing at the end, which
the service reaches whatever order its handlers run in; the oracle settles it over the final
conversions. Milestones stand while the count does, tied to the m-th conversion (none once
they no longer stand); whether one is held depends on its tie at the first release too, since
an entry already available is never held again.

Caps and budget never bind (no monthly cap on the simulated campaigns; budgets far above the
expected spend, checked before the run), so their outcome cannot depend on order either. Each
refunding member refunds one order (one full refund, or one or two partial ones, all equally
"quick"), so the re-attribution of a conversion never depends on refund order.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

CHANNELS = ("wechat_friend", "wechat_moments", "weibo", "xiaohongshu", "douyin", "qq", "sms", "poster", "other")

# Shape of the branching process (per advocate / friend / member).
P_SHARE = 0.6          # a referee becomes an advocate and shares (roots always do)
P_KOL = 0.03           # an advocate is a KOL: 20-60 friends instead of ~3.5
MEAN_FRIENDS = 3.5
P_LOOKUP = 0.4         # the landing page looks the code up before the click... (GET /v1/codes)
P_DOUBLE_CLICK = 0.05  # a friend clicks twice (the second click signs nobody up)
P_SIGNUP = 0.55        # a friend who clicked signs up
P_SHARED_DEVICE = 0.03  # a referee signs up on the referrer's device: fraud hold
P_BUY = 0.6
P_FIRST = 0.9          # a buying referee makes one qualifying in-window purchase (else only small ones)
P_SMALL = 0.12         # ... and before it a purchase below the minimum
P_LATE = 0.04          # ... and a purchase after the attribution window
P_REFUND = 0.2
P_REFUND_CONVERTING = 0.5
P_FULL_REFUND = 0.35
P_QUICK = 0.4
P_LATE_REFUND = 0.35   # refunded after the first release (reversal from the available balance)
MAX_AMOUNT_FEN = 400_00
MEMBERS_PER_CAMPAIGN = 5_000
PROGRAM = "program"  # own-purchase points: the seeded default program (program/rules.py)
PROGRAM_SILVER_SPEND_FEN = 2000_00
PROGRAM_RETURN_WINDOW_DAYS = 7
BUDGET_HEADROOM = 0.9  # expected spend must stay under 90 % of a budget


def sim_campaign_rules() -> dict[str, Any]:
    """The rules of every simulated campaign (JSON for POST /v1/campaigns)."""
    return {
        "attribution_window_days": 30,
        "min_purchase_fen": 50_00,
        "referee_signup_points": 20,
        "referee_coupon_fen": 10_00,
        "referrer_conversion_points": 100,
        "advocate_levels": [
            {"name": "friend", "min_conversions": 0, "commission_bps": 100},
            {"name": "advocate", "min_conversions": 3, "commission_bps": 200},
            {"name": "ambassador", "min_conversions": 8, "commission_bps": 300},
        ],
        "milestones": [],  # the service pays milestones by the default campaign's rules only
        "second_level_bps": 50,
        "monthly_cap_points": None,  # no cap: awards never depend on order
        "budget_points": 10_000_000,
        "budget_fen": 1_000_000_00,  # coupons count against the money part of the budget
        "hold_days": 7,
        "signups_per_hour_alert": 100_000,  # velocity flags would depend on timing; device flags do not
        "checkin_points": 5,
        "assist_target": 3,
        "assist_reward_points": 40,
        "assists_per_device_per_day": 100_000,  # farming flags are tested in tests/test_engagement.py
    }


@dataclass
class SimMember:
    idx: int
    openid: str
    gen: int
    referrer: int | None
    campaign: str
    device: str
    shared_device: bool = False
    channels: list[str] = field(default_factory=list)
    referees: list[int] = field(default_factory=list)


@dataclass
class Visit:
    """A friend opening one of an advocate's share links."""
    advocate: int
    link: int  # index into the advocate's channels
    lookup: bool
    clicks: int
    signup: int | None  # the member created by this visit's first click


@dataclass
class SimOrder:
    order_id: str
    member: int
    amount: int
    kind: str  # small | late | first | repeat
    offset_minutes: int  # occurred_at = base + offset
    phase: int  # 0, 1..K (rank), K+1 (repeat)


@dataclass
class SimRefund:
    order_id: str
    refund_id: str
    amount: int
    quick: bool
    late: bool
    offset_minutes: int  # after the order's occurred_at


@dataclass
class World:
    seed: int
    members: list[SimMember]
    visits_by_gen: list[list[Visit]]
    orders: list[SimOrder]
    refunds: list[SimRefund]
    campaigns: list[str]
    rank_phases: int

    @property
    def repeat_phase(self) -> int:
        return self.rank_phases + 1

    def orders_in(self, phase: int) -> list[SimOrder]:
        return [o for o in self.orders if o.phase == phase]


def _geometric(rng: random.Random, mean: float) -> int:
    p = 1.0 / (1.0 + mean)
    n = 0
    while rng.random() > p:
        n += 1
    return n


def generate(n_members: int, seed: int) -> World:
    rng = random.Random(seed)
    n_campaigns = max(1, math.ceil(n_members / MEMBERS_PER_CAMPAIGN))
    campaigns = [f"viral-{i + 1}" for i in range(n_campaigns)]
    members: list[SimMember] = []
    roots_made = 0

    def add(gen: int, referrer: SimMember | None) -> SimMember:
        nonlocal roots_made
        idx = len(members)
        if referrer is None:
            campaign = campaigns[roots_made % n_campaigns]
            roots_made += 1
        else:
            campaign = referrer.campaign
        m = SimMember(idx, f"sim{seed}-{idx}", gen, referrer.idx if referrer else None, campaign, f"dev-{seed}-{idx}")
        if referrer is not None:
            referrer.referees.append(idx)
            if rng.random() < P_SHARED_DEVICE:
                m.device, m.shared_device = referrer.device, True
        members.append(m)
        return m

    n_roots = max(4, n_members // 100)
    current = [add(0, None) for _ in range(min(n_roots, n_members))]
    visits_by_gen: list[list[Visit]] = []
    gen = 0
    while True:
        visits: list[Visit] = []
        nxt: list[SimMember] = []
        for m in current:
            if m.referrer is not None and rng.random() >= P_SHARE:
                continue
            m.channels = rng.sample(CHANNELS, rng.choice((1, 1, 1, 2)))
            friends = rng.randint(20, 60) if rng.random() < P_KOL else _geometric(rng, MEAN_FRIENDS)
            for _ in range(friends):
                visit = Visit(m.idx, rng.randrange(len(m.channels)), rng.random() < P_LOOKUP,
                              2 if rng.random() < P_DOUBLE_CLICK else 1, None)
                if rng.random() < P_SIGNUP and len(members) < n_members:
                    child = add(gen + 1, m)
                    visit.signup = child.idx
                    nxt.append(child)
                visits.append(visit)
        visits_by_gen.append(visits)
        if len(members) >= n_members:
            break
        if not nxt:  # the process died out: new roots start the next generation
            nxt = [add(gen + 1, None) for _ in range(min(n_roots, n_members - len(members)))]
        current = nxt
        gen += 1

    orders: list[SimOrder] = []
    rules = sim_campaign_rules()
    minimum = rules["min_purchase_fen"]
    window_minutes = (rules["attribution_window_days"] + 1) * 24 * 60
    firsts: dict[int, SimOrder] = {}
    for m in members:
        if rng.random() >= P_BUY:
            continue
        n = 0

        def order(amount: int, kind: str, offset: int) -> SimOrder:
            nonlocal n
            o = SimOrder(f"s{seed}-o{m.idx}-{n}", m.idx, amount, kind, offset, 0)
            n += 1
            orders.append(o)
            return o

        if m.referrer is not None:
            if rng.random() < P_SMALL:
                order(rng.randint(1_00, minimum - 1), "small", 5)
            if rng.random() < P_LATE:
                order(rng.randint(minimum, MAX_AMOUNT_FEN), "late", window_minutes + 60)
            if rng.random() >= P_FIRST:
                continue  # only purchases that cannot convert
            # within the hour before repeat purchases (offset 120+): distinct times, so rank in time matters
            firsts[m.idx] = order(rng.randint(minimum, MAX_AMOUNT_FEN), "first", 60 + rng.randint(0, 59))
        for j in range(rng.choice((0, 0, 1, 1, 2))):
            order(rng.randint(10_00, MAX_AMOUNT_FEN), "repeat", 120 + 60 * j)

    # One burst: every converting first purchase in phase 1, sent concurrently.
    rank_phases = 1 if firsts else 0
    for first in firsts.values():
        first.phase = 1
    for o in orders:
        if o.kind == "repeat":
            o.phase = rank_phases + 1

    refunds: list[SimRefund] = []
    by_member: dict[int, list[SimOrder]] = {}
    for o in orders:
        by_member.setdefault(o.member, []).append(o)
    for idx, own in by_member.items():
        candidates = [o for o in own if o.kind in ("first", "repeat")]
        if not candidates or rng.random() >= P_REFUND:
            continue
        first = next((o for o in candidates if o.kind == "first"), None)
        target = first if first is not None and rng.random() < P_REFUND_CONVERTING else rng.choice(candidates)
        quick, late = rng.random() < P_QUICK, rng.random() < P_LATE_REFUND
        if rng.random() < P_FULL_REFUND:
            parts = [target.amount]
        else:
            total = rng.randint(1, target.amount - 1)
            parts = [total] if total < 2 or rng.random() < 0.5 else [total // 2, total - total // 2]
        base = 120 if quick else 72 * 60
        for j, amount in enumerate(parts):
            refunds.append(SimRefund(target.order_id, f"r{j}", amount, quick, late, base + j))
    return World(seed, members, visits_by_gen, orders, refunds, campaigns, rank_phases)


# -- the oracle -------------------------------------------------------------------------------

def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Expected:
    rule: str
    unit: str
    amount: int
    campaign: str
    held: bool
    reversed: int = 0
    referee: int | None = None  # the referral the entry is tied to (a flag holds it)
    matured: bool = True  # its hold has passed by the end of the run (the last release sweep)

    @property
    def standing(self) -> int:
        return self.amount - self.reversed

    @property
    def status(self) -> str:
        if self.unit != "points":
            return "available"
        if self.reversed >= self.amount:
            return "reversed"
        return "pending" if self.held or not self.matured else "available"  # released once matured


@dataclass
class Outcome:
    entries: dict[str, dict[str, Expected]]  # member_id -> entry_id -> entry
    balances: dict[str, dict[str, int]]
    referrals: dict[str, dict[str, int]]
    budgets: dict[str, int]  # campaign -> spent points
    conversions: int
    flagged: int
    # (campaign, metric) -> member_id -> all-time leaderboard score (referrals and gmv here; points
    # from the final entries by `add_points_boards`, once engagement has joined them).
    boards: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)


def _level(rules: dict[str, Any], conversions: int) -> dict[str, Any] | None:
    current = None
    for level in rules["advocate_levels"]:
        if conversions >= level["min_conversions"]:
            current = level
    return current


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def expected_outcome(world: World, member_ids: dict[int, str], bound_between: dict[int, tuple[datetime, datetime]],
                     base: datetime, rules_by_campaign: dict[str, dict[str, Any]],
                     default_rules: dict[str, Any], default_id: str = "default",
                     released_until: datetime | None = None) -> Outcome:
    """Replay the facts phase by phase through the campaign rules (see the module docstring).

    `bound_between[idx]` brackets the member's sign-up time (request sent, answer received):
    the attribution window is judged against both ends and must agree, else the run is void.
    `released_until`: the service's clock at the end; own-purchase points dated so late that their
    return window (7 days) has not passed by then are still pending."""
    members = world.members
    entries: dict[str, dict[str, Expected]] = {member_ids[m.idx]: {} for m in members}
    status: dict[int, str | None] = {m.idx: ("signed_up" if m.referrer is not None else None) for m in members}
    converting: dict[int, str | None] = {m.idx: None for m in members}
    held: dict[int, bool] = {m.idx: m.shared_device for m in members}
    held_before_release = dict(held)  # a flag opened after the release holds nothing already available
    converted: dict[int, int] = {m.idx: 0 for m in members}
    reached: dict[int, int] = {m.idx: 0 for m in members}  # the most conversions ever standing at once
    refunded: dict[str, int] = {}
    orders_of: dict[int, list[SimOrder]] = {}
    for o in world.orders:
        orders_of.setdefault(o.member, []).append(o)
    by_id = {o.order_id: o for o in world.orders}
    flagged = sum(1 for m in members if m.shared_device)

    def occurred(o: SimOrder) -> datetime:
        return base + timedelta(minutes=o.offset_minutes)

    def in_window(y: int, o: SimOrder) -> bool:
        days = rules_by_campaign[members[y].campaign]["attribution_window_days"]
        early, late = (t + timedelta(days=days) for t in bound_between[y])
        at = occurred(o)
        if (at <= early) != (at <= late):
            raise RuntimeError(f"order {o.order_id} falls inside the uncertainty of its window end: the run is void")
        return at <= early

    def qualifies(y: int, o: SimOrder) -> bool:
        """graph.converts: net > 0, net >= the minimum, and inside the window."""
        net = o.amount - refunded.get(o.order_id, 0)
        return net > 0 and net >= rules_by_campaign[members[y].campaign]["min_purchase_fen"] and in_window(y, o)

    def award(beneficiary: int, rule: str, source: str, amount: int, campaign: str, unit: str = "points",
              hold: bool = False, referee: int | None = None) -> Expected:
        book = entries[member_ids[beneficiary]]
        entry_id = f"{rule}.{source}"
        if entry_id not in book:  # deterministic ids: a fact pays a beneficiary once per rule
            book[entry_id] = Expected(rule, unit, amount, campaign, hold if unit == "points" else False,
                                      referee=referee)
        return book[entry_id]

    def reverse_to(beneficiary: int | None, entry_id: str, target: int) -> None:
        if beneficiary is None:
            return
        entry = entries[member_ids[beneficiary]].get(entry_id)
        if entry is not None and entry.unit == "points":
            entry.reversed = max(entry.reversed, min(target, entry.amount))

    # Sign-ups: welcome points and the first-order coupon for every bound referee.
    for m in members:
        if m.referrer is None:
            continue
        r = rules_by_campaign[m.campaign]
        if r["referee_signup_points"]:
            award(m.idx, "welcome", member_ids[m.idx], r["referee_signup_points"], m.campaign, hold=held[m.idx],
                  referee=m.idx)
        if r["referee_coupon_fen"]:
            award(m.idx, "coupon", member_ids[m.idx], r["referee_coupon_fen"], m.campaign, unit="coupon_fen",
                  referee=m.idx)

    def convert(y: int, o: SimOrder) -> None:
        x = members[y].referrer
        status[y], converting[y] = "converted", o.order_id
        converted[x] += 1
        reached[x] = max(reached[x], converted[x])
        r = rules_by_campaign[members[y].campaign]
        if r["referrer_conversion_points"]:
            award(x, "conversion", o.order_id, r["referrer_conversion_points"], members[y].campaign, hold=held[y],
                  referee=y)

    def purchase(o: SimOrder) -> None:
        y = o.member
        x = members[y].referrer
        if x is None:
            return
        if status[y] == "signed_up" and qualifies(y, o):
            convert(y, o)
        if status[y] != "converted" or not in_window(y, o):
            return
        own = rules_by_campaign[members[y].campaign]
        # The level table (and with it second_level_bps) is the referee's campaign's when it has
        # levels, else the default campaign's (rewards/handlers.on_order_counted).
        table = own if own["advocate_levels"] else default_rules
        # The rate is the level reached at the referee's conversion rank in time: settled at the end.
        commissions.append((x, y, o, award(x, "commission", o.order_id, 0, members[y].campaign, hold=held[y],
                                           referee=y)))
        grandparent = members[x].referrer
        if grandparent is not None and o.amount * table["second_level_bps"] // 10_000 > 0:
            award(grandparent, "second_level", o.order_id, o.amount * table["second_level_bps"] // 10_000,
                  members[y].campaign, hold=held[y], referee=y)

    commissions: list[tuple[int, int, SimOrder, Expected]] = []
    for phase in range(0, world.repeat_phase + 1):
        for o in world.orders_in(phase):
            purchase(o)

    def refund_set(order: SimOrder, parts: list[SimRefund]) -> None:
        nonlocal flagged
        y = order.member
        x = members[y].referrer
        refunded[order.order_id] = refunded.get(order.order_id, 0) + sum(p.amount for p in parts)
        total = refunded[order.order_id]
        grandparent = members[x].referrer if x is not None else None
        for beneficiary, rule in ((grandparent, "second_level"),):  # commission: settled at the end
            entry = entries[member_ids[beneficiary]].get(f"{rule}.{order.order_id}") if beneficiary is not None else None
            if entry is not None:  # proportional, on the cumulative refund, rounded up
                reverse_to(beneficiary, f"{rule}.{order.order_id}", _ceil_div(entry.amount * total, order.amount))
        if x is None or status[y] != "converted" or converting[y] != order.order_id:
            return
        if any(p.quick for p in parts):  # a quick refund of the converting order holds the referral
            if not held[y]:
                flagged += 1
            held[y] = True
            if not parts[0].late:  # every entry of the referral is still pending: the flag holds them all
                held_before_release[y] = True
                for book in entries.values():
                    for entry in book.values():
                        if entry.referee == y and entry.unit == "points":
                            entry.held = True
        if qualifies(y, order):
            return
        reverse_to(x, f"conversion.{order.order_id}", 10 ** 12)
        others = sorted((o for o in orders_of[y] if o.order_id != order.order_id),
                        key=lambda o: (occurred(o), o.order_id))
        for other in others:
            if qualifies(y, other):
                converting[y] = other.order_id
                r = rules_by_campaign[members[y].campaign]
                if r["referrer_conversion_points"]:
                    award(x, "conversion", other.order_id, r["referrer_conversion_points"], members[y].campaign,
                          hold=held[y])
                return
        status[y], converting[y] = "signed_up", None
        converted[x] -= 1

    def ranked(x: int) -> list[int]:
        """x's standing conversions in time: by converted_at, ties by the referee's id."""
        mine = [y for y in members[x].referees if status[y] == "converted"]
        return sorted(mine, key=lambda y: (occurred(by_id[converting[y]]), member_ids[y]))

    at_release: dict[int, list[int]] = {}  # each advocate's conversions at the first release
    for late in (False, True):
        grouped: dict[str, list[SimRefund]] = {}
        for refund in world.refunds:
            if refund.late == late:
                grouped.setdefault(refund.order_id, []).append(refund)
        for order_id, parts in grouped.items():
            refund_set(by_id[order_id], parts)
        if not late:
            at_release = {m.idx: ranked(m.idx) for m in members}

    ranks = {x: {y: k for k, y in enumerate(ranked(x), start=1)} for x in {c[0] for c in commissions}}

    def before_conversion(y: int, o: SimOrder) -> bool:
        """rules.earns_commission: only the converting order and those after it in fact order earn
        (a refund that hands the conversion to a later order takes back the orders it passes)."""
        mark = by_id[converting[y]]
        return (occurred(o), o.order_id) < (occurred(mark), mark.order_id)

    for x, y, o, entry in commissions:
        if status[y] != "converted" or before_conversion(y, o):
            # undone, or passed by a moved conversion: no commission, nor a second-level share
            entry.amount = entry.reversed = 0
            grandparent = members[x].referrer
            share = entries[member_ids[grandparent]].get(f"second_level.{o.order_id}") if grandparent is not None else None
            if share is not None:
                share.amount = share.reversed = 0
            continue
        own = rules_by_campaign[members[y].campaign]
        level = _level(own if own["advocate_levels"] else default_rules, ranks[x][y])
        entry.amount = o.amount * level["commission_bps"] // 10_000 if level else 0
        entry.reversed = min(entry.amount, _ceil_div(entry.amount * refunded.get(o.order_id, 0), o.amount))
    for x in (m.idx for m in members):  # milestones stand while the count does, tied to the m-th conversion
        order_of = ranked(x)
        for milestone in default_rules["milestones"]:
            m, bonus = milestone["conversions"], milestone["bonus_points"]
            if not bonus or reached[x] < m:
                continue
            stands = len(order_of) >= m
            referee = order_of[m - 1] if stands else None
            # The first release took it to the available balance unless the referral it was tied
            # to then (the m-th conversion at that point) was held; a re-tie by a late refund can
            # hold only a milestone still pending, and an available entry is never held again
            # (docs/rewards.md: a flag holds a referral's pending entries). One that no longer
            # stands is tied to no referral, so nothing holds it.
            before = at_release[x]
            pending = len(before) >= m and held_before_release[before[m - 1]]
            entry = award(x, "milestone", str(m), bonus, default_id,
                          hold=stands and pending and held[referee], referee=referee)
            entry.reversed = 0 if stands else bonus

    # Own-purchase points (the program, not a campaign): every order earns the base tier's
    # 1 point per whole yuan, reversed in proportion to its refunds, rounded up. No simulated
    # member spends enough to reach the next tier (checked), so the rate never changes.
    spend: dict[int, int] = {}
    for o in world.orders:
        spend[o.member] = spend.get(o.member, 0) + o.amount
    if max(spend.values(), default=0) >= PROGRAM_SILVER_SPEND_FEN:
        raise RuntimeError("a simulated member reaches the silver tier: the oracle assumes the base rate")
    for o in world.orders:
        entry = award(o.member, "purchase", o.order_id, o.amount // 100, PROGRAM)
        entry.reversed = min(entry.amount, _ceil_div(entry.amount * refunded.get(o.order_id, 0), o.amount))
        if released_until is not None:
            entry.matured = occurred(o) + timedelta(days=PROGRAM_RETURN_WINDOW_DAYS) <= released_until

    balances: dict[str, dict[str, int]] = {}
    budgets: dict[str, int] = {}
    for member_id, book in entries.items():
        b = {"available": 0, "pending": 0}
        for entry in book.values():
            if entry.unit != "points":
                continue
            b["pending" if entry.held or not entry.matured else "available"] += entry.standing
            if entry.campaign != PROGRAM:  # the program has no campaign budget
                budgets[entry.campaign] = budgets.get(entry.campaign, 0) + entry.standing
        balances[member_id] = b
    referrals = {member_ids[m.idx]: {"signed_up": len(m.referees), "converted": converted[m.idx]} for m in members}
    conversions = sum(1 for m in members if status[m.idx] == "converted")
    # Leaderboards (docs/leaderboards.md): an advocate's standing conversions; the GMV of their
    # referees' orders inside the attribution window, net of refunds (converting or not).
    boards: dict[tuple[str, str], dict[str, int]] = {}
    for m in members:
        if converted[m.idx]:
            boards.setdefault((m.campaign, "referrals"), {})[member_ids[m.idx]] = converted[m.idx]
    for o in world.orders:
        x = members[o.member].referrer
        net = o.amount - refunded.get(o.order_id, 0)
        if x is not None and net > 0 and in_window(o.member, o):
            board = boards.setdefault((members[o.member].campaign, "gmv"), {})
            board[member_ids[x]] = board.get(member_ids[x], 0) + net
    return Outcome(entries, balances, referrals, budgets, conversions, flagged, boards)


NOT_ON_POINTS_BOARDS = ("redemption", "adjustment", "expiry")


def add_points_boards(outcome: Outcome) -> None:
    """Points boards: each campaign's points entries net of reversals, per owner (the program's
    own-purchase points belong to no campaign)."""
    for member_id, book in outcome.entries.items():
        for entry in book.values():
            if entry.unit != "points" or entry.campaign == PROGRAM or entry.rule in NOT_ON_POINTS_BOARDS:
                continue
            if entry.standing > 0:
                board = outcome.boards.setdefault((entry.campaign, "points"), {})
                board[member_id] = board.get(member_id, 0) + entry.standing


def gross_spend(world: World, rules_by_campaign: dict[str, dict[str, Any]], default_rules: dict[str, Any]) -> dict[str, int]:
    """An upper bound of what each campaign awards (before refunds), to check budgets never bind."""
    ids = {m.idx: f"id{m.idx}" for m in world.members}
    now = datetime.now(timezone.utc)
    bounds = {m.idx: (now, now) for m in world.members}
    empty = World(world.seed, world.members, world.visits_by_gen, world.orders, [], world.campaigns, world.rank_phases)
    outcome = expected_outcome(empty, ids, bounds, now + timedelta(hours=1), rules_by_campaign, default_rules)
    return outcome.budgets


def member_id_hint(openid: str) -> str:
    """Only for labelling before login answers; the real ids come from the login responses."""
    return hashlib.sha256(openid.encode()).hexdigest()[:8]


# -- engagement: check-ins and share-for-gift assists ---------------------------------------------

P_CHECKIN = 0.5        # a member checks in (once; a second tap the same day pays nothing)
P_SHARE_FOR_GIFT = 0.1  # a member opens a share-for-gift; target + 1 members of the campaign assist it


@dataclass
class EngagementPlan:
    checkins: list[int]
    shares: list[tuple[int, list[int]]]  # (sharer, assisters): one more assister than the target


def engagement_plan(world: World, rules_by_campaign: dict[str, dict[str, Any]]) -> EngagementPlan:
    rng = random.Random(world.seed * 7919 + 1)  # its own stream: the referral world stays as it was
    by_campaign: dict[str, list[int]] = {}
    for m in world.members:
        by_campaign.setdefault(m.campaign, []).append(m.idx)
    checkins = [m.idx for m in world.members if rng.random() < P_CHECKIN]
    shares = []
    for m in world.members:
        if rng.random() >= P_SHARE_FOR_GIFT:
            continue
        wanted = rules_by_campaign[m.campaign]["assist_target"] + 1
        pool = by_campaign[m.campaign]
        if len(pool) <= wanted:
            continue
        picked = [i for i in rng.sample(pool, wanted + 1) if i != m.idx][:wanted]
        shares.append((m.idx, picked))
    return EngagementPlan(checkins, shares)


def add_engagement(outcome: Outcome, world: World, member_ids: dict[int, str],
                   rules_by_campaign: dict[str, dict[str, Any]], checkin_days: dict[int, str],
                   share_ids: dict[int, str]) -> None:
    """Add what check-ins and completed shares pay: one entry per member and local day, one per
    share that reached its target (entry ids as the service derives them from the facts)."""
    def pay(idx: int, entry_id: str, rule: str, amount: int) -> None:
        campaign = world.members[idx].campaign
        if not amount:
            return
        outcome.entries[member_ids[idx]][entry_id] = Expected(rule, "points", amount, campaign, False)
        outcome.balances[member_ids[idx]]["available"] += amount  # released by the first sweep
        outcome.budgets[campaign] = outcome.budgets.get(campaign, 0) + amount

    for idx, day in checkin_days.items():
        campaign = world.members[idx].campaign
        pay(idx, f"checkin.{campaign}.{day}", "checkin", rules_by_campaign[campaign]["checkin_points"])
    for idx, share_id in share_ids.items():
        pay(idx, f"share_goal.{share_id}", "share_goal",
            rules_by_campaign[world.members[idx].campaign]["assist_reward_points"])


def add_red_packet_claims(outcome: Outcome, member_ids: dict[int, str], packet_ids: dict[str, str],
                          claims: dict[int, tuple[str, int]]) -> None:
    """Each claim the service answered is one coupon entry for the claimer (the split is random:
    the amounts come from the answers; the simulator checks their sum and count itself)."""
    for idx, (campaign, amount) in claims.items():
        outcome.entries[member_ids[idx]][f"red_packet.{packet_ids[campaign]}"] = Expected(
            "red_packet", "coupon_fen", amount, campaign, False)
