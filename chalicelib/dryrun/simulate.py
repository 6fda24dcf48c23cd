"""The dry run's replay: facts in time order through the reward rules, state in memory.

Every amount is decided by the functions production pays with (rewards/rules.py: which awards a
fact earns, which orders earn commission, the rate of a conversion's rank, milestones, refund reversals, the cap and budget
bound; referrals/graph.py: what converts, the attribution window). This module only plays the
part of the stream handlers and the ledger, in the order the facts happened, keeping in dicts
what production keeps in items: the binding, the conversions ranked per advocate, the entries,
the monthly cap usage and the budget spent. No I/O: state before the replay is handed in.

Not replayed (facts the dry run does not have): fraud reviews (held entries count as if
approved, a rejected referral is not voided), redemptions (reversals never fall short), own
purchase points (the program's, not the campaign's).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable

from ..campaigns.rules import Rules
from ..core import clock
from ..referrals import graph
from ..rewards import rules as reward_rules
from ..rewards.rules import ADVOCATE_RULES, Award

Level = tuple[str | None, int]


@dataclass(frozen=True)
class Fact:
    kind: str  # signup | purchase | refund
    at: str
    member_id: str
    referrer_id: str | None = None
    grandparent_id: str | None = None
    version: int | None = None  # the campaign version the referral was bound under (None: current)
    window_ends_at: str | None = None  # as recorded (None: from the rules' window)
    order_id: str | None = None
    refund_id: str | None = None
    amount_fen: int = 0

    @property
    def sort_key(self) -> tuple[str, int, str]:
        rank = {"signup": 0, "purchase": 1, "refund": 2}[self.kind]
        return self.at, rank, self.refund_id or self.order_id or self.member_id


@dataclass
class Referee:
    member_id: str
    referrer_id: str
    grandparent_id: str | None
    rules: Rules
    bound_at: str | None
    window_ends_at: str | None
    status: str = "signed_up"
    converted_at: str | None = None
    converting_order: str | None = None


@dataclass
class Order:
    order_id: str
    member_id: str
    amount_fen: int
    at: str
    refunded_fen: int = 0


@dataclass
class Entry:
    member_id: str
    entry_id: str
    rule: str
    unit: str
    amount: int
    status: str
    created_at: str
    available_at: str
    campaign_id: str
    source_id: str
    order_id: str | None = None
    referee_id: str | None = None
    reversed_amount: int = 0
    capped_from: int | None = None

    @property
    def standing(self) -> int:
        return self.amount - self.reversed_amount


@dataclass
class Mark:
    """A conversion under its advocate (production: referrals.models.Conversion)."""
    referrer_id: str
    converted_at: str
    referee_id: str
    rules: Rules | None  # the referral's rules (None: recorded before the replay, never restated)
    level: Level | None = None

    @property
    def sk(self) -> tuple[str, str]:
        return self.converted_at, self.referee_id


@dataclass
class Before:
    """State recorded before the replayed facts (empty for a what-if over given facts)."""
    referees: dict[str, Referee] = field(default_factory=dict)
    conversions: dict[str, list[Mark]] = field(default_factory=dict)  # per advocate, in rank order
    cap_used: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (member, campaign, month)
    points_spent: dict[str, int] = field(default_factory=dict)
    fen_spent: dict[str, int] = field(default_factory=dict)


class Replay:
    """`rules_for(version)`: the campaign rules a referral bound under `version` is judged by;
    `levels_for(rules)`: the level table for a conversion under those rules (production falls back
    to the default campaign's); `milestones`: the default campaign's rules that pay milestones, or
    None when this campaign's conversions pay none in this replay."""

    def __init__(self, campaign_id: str, rules_for: Callable[[int | None], Rules],
                 levels_for: Callable[[Rules], Rules], milestones: Rules | None, milestone_campaign: str,
                 before: Before | None = None):
        before = before or Before()
        self.campaign_id = campaign_id
        self.rules_for, self.levels_for = rules_for, levels_for
        self.milestone_rules, self.milestone_campaign = milestones, milestone_campaign
        self.referees = dict(before.referees)
        self.conversions = {k: list(v) for k, v in before.conversions.items()}
        self.milestones_before = {k: len(v) for k, v in before.conversions.items()}  # reached and paid before
        self.cap_used = dict(before.cap_used)
        self.points_spent = dict(before.points_spent)
        self.fen_spent = dict(before.fen_spent)
        self.before_points_spent, self.before_fen_spent = dict(before.points_spent), dict(before.fen_spent)
        self.orders: dict[str, Order] = {}
        self.member_orders: dict[str, list[Order]] = {}
        self.entries: dict[tuple[str, str], Entry] = {}
        self.skipped: list[dict[str, str]] = []
        self.now = ""

    # -- facts --------------------------------------------------------------------------------

    def run(self, facts: list[Fact]) -> None:
        for fact in sorted(facts, key=lambda f: f.sort_key):
            self.now = fact.at  # when production's handlers would run: the fact's own time
            getattr(self, f"_{fact.kind}")(fact)

    def _skip(self, fact: Fact, reason: str) -> None:
        self.skipped.append({"kind": fact.kind, "id": fact.refund_id or fact.order_id or fact.member_id,
                             "reason": reason})

    def _signup(self, fact: Fact) -> None:
        if fact.member_id in self.referees:
            return self._skip(fact, "already_bound")
        if not fact.referrer_id or fact.referrer_id == fact.member_id:
            return self._skip(fact, "no_referrer")
        rules = self.rules_for(fact.version)
        parent = self.referees.get(fact.referrer_id)
        grandparent = fact.grandparent_id or (parent.referrer_id if parent else None)
        referee = Referee(fact.member_id, fact.referrer_id, grandparent, rules, fact.at,
                          fact.window_ends_at or graph.window_end(fact.at, rules.attribution_window_days))
        self.referees[fact.member_id] = referee
        for grant in reward_rules.signup_awards(rules, fact.member_id):  # rewards.handlers.on_member
            self._award(grant, rules, fact.at)

    def _purchase(self, fact: Fact) -> None:
        if fact.order_id in self.orders:
            return self._skip(fact, "duplicate_order")
        order = Order(fact.order_id, fact.member_id, fact.amount_fen, fact.at)
        self.orders[order.order_id] = order
        self.member_orders.setdefault(order.member_id, []).append(order)
        referee = self.referees.get(fact.member_id)
        if referee is None:
            return self._skip(fact, "buyer_not_referred")
        # attribution.apply_purchase: the referral converts, or an earlier qualifying order takes it
        if self._converts(referee, order, "signed_up"):
            referee.status = "converted"
            self._move_conversion(referee, None, order)
        elif (referee.status == "converted" and (order.at, order.order_id) < (referee.converted_at,
                                                                               referee.converting_order or "")
              and self._converts(referee, order, "converted")):
            self._move_conversion(referee, self.orders[referee.converting_order], order)
        self._commission(referee, order)  # rewards.handlers.on_order_counted

    def _refund(self, fact: Fact) -> None:
        order = self.orders.get(fact.order_id or "")
        if order is None:
            return self._skip(fact, "order_not_replayed")
        if fact.amount_fen > order.amount_fen - order.refunded_fen:
            return self._skip(fact, "refund_exceeds_order")
        order.refunded_fen += fact.amount_fen
        referee = self.referees.get(order.member_id)
        if referee is None:
            return
        if referee.converting_order == order.order_id and not self._converts(referee, order, "converted"):
            self._reattribute(referee, order)  # attribution._reattribute
        for member_id, rule in ((referee.referrer_id, "commission"), (referee.grandparent_id, "second_level")):
            entry = self.entries.get((member_id or "", f"{rule}.{order.order_id}"))
            if entry is not None:  # rewards.handlers.on_refund_counted
                self._reverse_to(entry, reward_rules.reversal_target(entry.amount, order.refunded_fen,
                                                                     order.amount_fen))

    # -- attribution ----------------------------------------------------------------------------

    @staticmethod
    def _converts(referee: Referee, order: Order, expected: str) -> bool:
        if referee.status != expected:
            return False
        return graph.converts(order.amount_fen - order.refunded_fen, order.at, referee.rules.min_purchase_fen,
                              referee.bound_at, referee.window_ends_at)

    def _reattribute(self, referee: Referee, refunded: Order) -> None:
        for order in sorted(self.member_orders.get(referee.member_id, []), key=lambda o: (o.at, o.order_id)):
            if order.order_id != refunded.order_id and self._converts(referee, order, "converted"):
                return self._move_conversion(referee, refunded, order)
        referee.status = "signed_up"
        self._move_conversion(referee, refunded, None)

    def _move_conversion(self, referee: Referee, old: Order | None, new: Order | None) -> None:
        """The converting order changed (None: none): its reward follows it (rewards.handlers.
        _conversion_changed), then the advocate's ranks and milestones (on_conversion)."""
        gone = self._mark_of(referee) if old is not None else None
        referee.converted_at = new.at if new else None
        referee.converting_order = new.order_id if new else None
        if old is not None:
            entry = self.entries.get((referee.referrer_id, f"conversion.{old.order_id}"))
            if entry is not None:
                self._reverse_to(entry, entry.amount)
        if new is not None:
            for grant in reward_rules.conversion_awards(referee.rules, referee.referrer_id, referee.member_id,
                                                        new.order_id):
                entry = self.entries.get((grant.member_id, grant.entry_id))
                if entry is None:
                    self._award(grant, referee.rules, new.at)
                elif entry.reversed_amount:  # held the conversion before: it stands again
                    self._restate(entry, grant.amount, 0, referee.rules)
        # the conversion items change in one transaction; their records' handlers see both changes
        marks = self.conversions.setdefault(referee.referrer_id, [])
        kept = gone if gone is not None and new is not None and gone.sk == (new.at, referee.member_id) else None
        if gone is not None and kept is None:
            marks.remove(gone)
        mark = kept
        if new is not None and mark is None:
            mark = Mark(referee.referrer_id, new.at, referee.member_id, referee.rules)
            bisect.insort(marks, mark, key=lambda m: m.sk)
        if gone is not None and kept is None:
            if new is None:  # undone: the referee's orders earn no commission any more
                self._restate_commissions(gone, undone=True)
            self._settle_milestones(referee.referrer_id, self._rerank_after(gone))
        if mark is not None:
            self._settle(mark)
            self._restate_commissions(mark)
            self._settle_milestones(referee.referrer_id, self._rerank_after(mark))

    def _mark_of(self, referee: Referee) -> Mark | None:
        for mark in self.conversions.get(referee.referrer_id, []):
            if mark.referee_id == referee.member_id:
                return mark
        return None

    # -- ranks (rewards/ranks.py) ---------------------------------------------------------------

    def _rank(self, mark: Mark) -> int:
        return sum(1 for other in self.conversions.get(mark.referrer_id, []) if other.sk <= mark.sk)

    def _settle(self, mark: Mark) -> Level:
        if mark.rules is not None:
            mark.level = reward_rules.rate_at_rank(self.levels_for(mark.rules), self._rank(mark))
        return mark.level or (None, 0)

    def _rerank_after(self, mark: Mark) -> int:
        marks = self.conversions.get(mark.referrer_id, [])
        position = sum(1 for other in marks if other.sk <= mark.sk)
        for later in marks:
            if later.sk <= mark.sk:
                continue
            position += 1
            if later.rules is None:
                continue
            level = reward_rules.rate_at_rank(self.levels_for(later.rules), position)
            if later.level != level:
                later.level = level
                self._restate_commissions(later)
        return len(marks)

    def _restate_commissions(self, mark: Mark, undone: bool = False) -> None:
        """ranks.restate_commissions: every order of the referee in the window earns what
        `earns_commission` says now, at the mark's rate (gained, restated or lost)."""
        referee = self.referees.get(mark.referee_id)
        if mark.rules is None or referee is None:
            return
        converting = None if undone else self._converting(referee)
        for order in sorted(self.member_orders.get(referee.member_id, []), key=lambda o: (o.at, o.order_id)):
            if not graph.in_window(order.at, referee.bound_at, referee.window_ends_at):
                continue
            due = {}
            if reward_rules.earns_commission(order.at, order.order_id, converting, referee.bound_at,
                                             referee.window_ends_at):
                due = {grant.rule: grant for grant in reward_rules.purchase_awards(
                    referee.rules, order.order_id, order.amount_fen, referee.member_id, referee.referrer_id,
                    mark.level or (None, 0), referee.grandparent_id)}
            for member_id, rule in ((referee.referrer_id, "commission"), (referee.grandparent_id, "second_level")):
                entry, grant = self.entries.get((member_id or "", f"{rule}.{order.order_id}")), due.get(rule)
                if entry is None and grant is not None:
                    entry = self._award(grant, referee.rules, self.now)
                    self._reverse_to(entry, reward_rules.reversal_target(entry.amount, order.refunded_fen,
                                                                         order.amount_fen))
                elif entry is not None:
                    amount = grant.amount if grant is not None else 0
                    self._restate(entry, amount, reward_rules.reversal_target(amount, order.refunded_fen,
                                                                              order.amount_fen), mark.rules)

    @staticmethod
    def _converting(referee: Referee) -> tuple[str, str] | None:
        if referee.status != "converted" or not referee.converted_at:
            return None
        return referee.converted_at, referee.converting_order or ""

    def _settle_milestones(self, referrer_id: str, converted: int) -> None:
        rules = self.milestone_rules
        if rules is None:
            return
        marks = self.conversions.get(referrer_id, [])
        for conversions, stands in reward_rules.milestones_standing(rules, converted).items():
            if conversions <= self.milestones_before.get(referrer_id, 0):
                continue  # reached before the replay: paid then, not by these facts
            entry = self.entries.get((referrer_id, f"milestone.{conversions}"))
            if stands:
                referee_id = marks[conversions - 1].referee_id
                if entry is not None and entry.referee_id == referee_id and not entry.reversed_amount:
                    continue
                bonus = next(m.bonus_points for m in rules.milestones if m.conversions == conversions)
                if entry is None:
                    self._award(reward_rules.milestone_award(referrer_id, conversions, bonus, referee_id), rules,
                                self.now, campaign_id=self.milestone_campaign)
                else:
                    entry.referee_id = referee_id
                    self._restate(entry, entry.amount, 0, rules)
            elif entry is not None and entry.standing > 0:
                self._reverse_to(entry, entry.amount)

    def _commission(self, referee: Referee, order: Order) -> None:
        if not reward_rules.earns_commission(order.at, order.order_id, self._converting(referee), referee.bound_at,
                                             referee.window_ends_at):
            return
        mark = self._mark_of(referee)
        if mark is None:
            return
        for grant in reward_rules.purchase_awards(referee.rules, order.order_id, order.amount_fen, referee.member_id,
                                                  referee.referrer_id, self._settle(mark), referee.grandparent_id):
            entry = self._award(grant, referee.rules, order.at)
            if order.refunded_fen:
                self._reverse_to(entry, reward_rules.reversal_target(entry.amount, order.refunded_fen,
                                                                     order.amount_fen))

    # -- the ledger (rewards/ledger.py, in memory) ----------------------------------------------

    def _award(self, grant: Award, rules: Rules, at: str, campaign_id: str | None = None) -> Entry:
        campaign_id = campaign_id or self.campaign_id
        found = self.entries.get((grant.member_id, grant.entry_id))
        if found is not None:
            return found  # paid once per (rule, fact, beneficiary)
        cap_key = (grant.member_id, campaign_id, at[:7])
        amount = reward_rules.bounded_award(grant, rules, self.cap_used.get(cap_key, 0),
                                            self.points_spent.get(campaign_id, 0), self.fen_spent.get(campaign_id, 0))
        points = grant.unit == "points"
        entry = Entry(grant.member_id, grant.entry_id, grant.rule, grant.unit, amount,
                      reward_rules.first_status(grant.unit), at,
                      clock.iso(clock.parse(at) + timedelta(days=rules.hold_days)) if points else at, campaign_id,
                      grant.source_id, grant.order_id, grant.referee_id,
                      capped_from=grant.amount if amount != grant.amount else None)
        self.entries[(entry.member_id, entry.entry_id)] = entry
        if points and amount:
            if grant.rule in ADVOCATE_RULES and rules.monthly_cap_points is not None:
                self.cap_used[cap_key] = self.cap_used.get(cap_key, 0) + amount
            if rules.budget_points is not None:
                self.points_spent[campaign_id] = self.points_spent.get(campaign_id, 0) + amount
        elif not points and amount and rules.money_budget_fen is not None:
            self.fen_spent[campaign_id] = self.fen_spent.get(campaign_id, 0) + amount
        return entry

    def _reverse_to(self, entry: Entry, target: int) -> None:
        if entry.unit != "points" or entry.reversed_amount >= target:
            return  # refunds take back points; coupons are voided only by a fraud rejection
        target = min(target, entry.amount)
        self.points_spent[entry.campaign_id] = self.points_spent.get(entry.campaign_id, 0) - (target - entry.reversed_amount)
        entry.reversed_amount = target
        if target >= entry.amount:
            entry.status = "reversed"

    def _restate(self, entry: Entry, amount: int, reversed_amount: int, rules: Rules) -> None:
        if entry.unit != "points":
            return
        delta = (amount - reversed_amount) - entry.standing
        if (amount, reversed_amount) == (entry.amount, entry.reversed_amount):
            return
        cap_key = (entry.member_id, entry.campaign_id, entry.created_at[:7])
        capped_increase = delta > 0 and entry.rule in ADVOCATE_RULES and rules.monthly_cap_points is not None
        if delta > 0:
            allowed = reward_rules.bounded_increase(delta, entry.rule, rules, self.cap_used.get(cap_key, 0),
                                                    self.points_spent.get(entry.campaign_id, 0))
            amount -= delta - allowed
            delta = allowed
        entry.amount, entry.reversed_amount = amount, reversed_amount
        entry.status = reward_rules.first_status(entry.unit) if entry.standing > 0 else "reversed"
        self.points_spent[entry.campaign_id] = self.points_spent.get(entry.campaign_id, 0) + delta
        if capped_increase and delta > 0:
            self.cap_used[cap_key] = self.cap_used.get(cap_key, 0) + delta
