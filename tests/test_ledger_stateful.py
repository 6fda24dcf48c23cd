"""Stateful property test of the ledger: random sign-ups, purchases, partial refunds,
redemptions and releases, with stream deliveries that are duplicated, reordered and replayed.
After every step the invariants of DESIGN.md hold."""
from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib import bootstrap
from chalicelib.campaigns import service as campaigns
from chalicelib.campaigns.rules import CampaignIn, Rules
from chalicelib.core import aws, clock
from chalicelib.core.errors import Conflict
from chalicelib.facts import service as facts
from chalicelib.facts.models import Order
from chalicelib.facts.schemas import PurchaseIn, RefundIn
from chalicelib.members import service as members
from chalicelib.members.models import Member
from chalicelib.members.schemas import ReferralIn
from chalicelib.referrals import attribution, codes
from chalicelib.rewards import ledger, rules as reward_rules, sweeps
from infra.local.stream_poller import StreamPoller
from tests.conftest import BACKEND
from tests.ledger_checks import assert_balances_match_entries, budget_spent, entries

CAMPAIGN = "prop"
BUDGET, CAP = 4_000, 1_500
RULES = Rules(min_purchase_fen=50_00, referee_signup_points=50, referrer_conversion_points=300,
              advocate_levels=[{"name": "friend", "min_conversions": 0, "commission_bps": 500},
                               {"name": "star", "min_conversions": 2, "commission_bps": 1000}],
              milestones=[], second_level_bps=200, monthly_cap_points=CAP, budget_points=BUDGET, hold_days=3)
_runs = itertools.count()


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        from app import app

        self.prefix = f"s{next(_runs)}-"
        bootstrap.prepare(aws.dynamodb(), self.prefix)
        campaigns.clear_caches()
        campaigns.create(CampaignIn(campaign_id=CAMPAIGN, name="Property", landing_url="https://x.example/",
                                    rules=RULES))
        self.poller = StreamPoller(app, aws.dynamodb(), aws.streams(), lambda logical: self.prefix + logical)
        self.members: list[str] = []
        self.orders: list[str] = []
        self.refund_ids = itertools.count()
        self.drained = True

    @initialize()
    def founder(self):
        self._signup(None)

    def _signup(self, referrer: str | None) -> None:
        member_id = f"m{len(self.members)}"
        referral = ReferralIn(code=codes.code_for(referrer, CAMPAIGN).code) if referrer else None
        members.find_or_create("backend", member_id, member_id=member_id, source="backend", referral=referral)
        self.members.append(member_id)
        self.drained = False

    @rule(data=st.data())
    def signup(self, data):
        self._signup(data.draw(st.sampled_from(self.members)))

    @rule(data=st.data(), amount=st.sampled_from([120_00, 50_00, 99_00, 20_00]))
    def purchase(self, data, amount):
        order_id = f"o{len(self.orders)}"
        buyers = self.members[1:] or self.members  # mostly referees: their orders earn rewards
        facts.record_purchase(PurchaseIn(order_id=order_id, member_id=data.draw(st.sampled_from(buyers)),
                                         amount_fen=amount))
        self.orders.append(order_id)
        self.drained = False

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), percent=st.integers(1, 100))
    def refund(self, data, percent):
        order = Order.get(*Order.key(data.draw(st.sampled_from(self.orders))), consistent_read=True)
        amount = min(int(order.amount_fen) - int(order.refunded_fen), int(order.amount_fen) * percent // 100)
        if amount > 0:
            facts.record_refund(RefundIn(order_id=order.order_id, refund_id=f"r{next(self.refund_ids)}",
                                         amount_fen=amount))
            self.drained = False

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), percent=st.sampled_from([30, 100]))
    def refund_a_rewarded_order(self, data, percent):
        """Refund an order that earned commission, then let the stream settle."""
        rewarded = [o for o in self.orders if any(
            ledger.find(m, f"commission.{o}") for m in self.members[:-1] if m)]
        if rewarded:
            order = Order.get(*Order.key(data.draw(st.sampled_from(rewarded))), consistent_read=True)
            amount = min(int(order.amount_fen) - int(order.refunded_fen), int(order.amount_fen) * percent // 100)
            if amount > 0:
                facts.record_refund(RefundIn(order_id=order.order_id, refund_id=f"r{next(self.refund_ids)}",
                                             amount_fen=amount))
        self.deliver_everything()

    @rule(data=st.data(), points=st.integers(1, 800))
    def redeem(self, data, points):
        member_id = data.draw(st.sampled_from(self.members))
        try:
            ledger.spend(member_id, f"redemption.{member_id}.{points}.{len(self.orders)}", -points, "test", "redemption")
        except Conflict:
            pass  # short of points (or the same redemption id again): refused, nothing written

    @rule()
    def release(self):
        clock.advance(timedelta(days=4))
        sweeps.release_due()

    @rule()
    def deliver(self):
        self.poller.poll_once()

    @rule()
    def deliver_everything(self):
        self.poller.drain(ignore_backoff=True)
        self.drained = True

    @rule()
    def replay_whole_stream(self):
        """As after a lost checkpoint: every record again, successes included."""
        self.poller.replay_from_start()

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def deliver_out_of_order(self, data):
        """A fact's handler runs ahead of the stream (another shard got there first)."""
        order_id = data.draw(st.sampled_from(self.orders))
        attribution.apply_purchase(order_id)

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def balances_are_the_sum_of_entries_and_never_negative(self):
        assert_balances_match_entries(self.members)

    @invariant()
    def budget_and_caps_hold(self):
        standing = defaultdict(int)
        for member_id in self.members:
            for e in entries(member_id):
                if e.campaign_id == CAMPAIGN and e.unit == "points":
                    standing[member_id] += e.standing
        assert sum(standing.values()) <= BUDGET
        assert budget_spent(CAMPAIGN) <= BUDGET
        for member_id in self.members:
            by_month = defaultdict(int)  # the cap is per member, campaign and month
            for e in entries(member_id):
                if e.campaign_id == CAMPAIGN and e.rule in reward_rules.ADVOCATE_RULES:
                    by_month[e.created_at[:7]] += e.standing
            assert all(total <= CAP for total in by_month.values()), (member_id, dict(by_month))

    @invariant()
    def one_conversion_reward_per_referee(self):
        for member_id in self.members:
            referees = [e.referee_id for e in entries(member_id) if e.rule == "conversion" and e.standing > 0]
            assert len(referees) == len(set(referees)), (member_id, referees)

    @invariant()
    def no_reward_stands_for_refunded_money(self):
        if not self.drained:
            return  # rewards follow the stream: checked once everything is delivered
        for order_id in self.orders:
            order = Order.get(*Order.key(order_id), consistent_read=True)
            buyer = Member.get(*Member.key(order.member_id), consistent_read=True)
            for beneficiary, rule_name in ((buyer.referrer_id, "commission"), (buyer.grandparent_id, "second_level")):
                entry = ledger.find(beneficiary, f"{rule_name}.{order_id}") if beneficiary else None
                if entry is not None:
                    owed_back = reward_rules.reversal_target(int(entry.amount), int(order.refunded_fen),
                                                             int(order.amount_fen))
                    assert int(entry.reversed_amount) >= owed_back, (order_id, rule_name)
            if buyer.referrer_id:
                conversion = ledger.find(buyer.referrer_id, f"conversion.{order_id}")
                if conversion is not None and buyer.converting_order_id != order_id:
                    assert conversion.standing == 0 or int(conversion.shortfall) > 0, order_id

    def teardown(self):
        # Finally everything is delivered, so every refund's reversal must stand.
        try:
            self.deliver_everything()
            self.no_reward_stands_for_refunded_money()
            self.balances_are_the_sum_of_entries_and_never_negative()
        finally:
            clock.reset()


def test_ledger_invariants_hold_under_random_campaigns(backend):
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(LedgerMachine, settings=settings(
        max_examples=15 if BACKEND == "moto" else 4, stateful_step_count=30, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
