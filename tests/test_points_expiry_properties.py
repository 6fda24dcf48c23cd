"""Stateful property test of expiring points: random awards, releases, spends, refunds,
program changes, clock moves and sweeps (some duplicated from stale index copies). Checked
after every step against a plain FIFO model of lots: the balance never goes negative, a lot
never expires twice, spends take the soonest-expiring points first, and balances equal the
sum of entries."""
from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta

from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib import bootstrap
from chalicelib.campaigns.rules import Rules
from chalicelib.core import aws, clock
from chalicelib.core.errors import Conflict
from chalicelib.members import service as members
from chalicelib.members.models import Member
from chalicelib.points import expiry
from chalicelib.points.models import EXPIRE_SHARDS, PointsLot
from chalicelib.points.rules import lot_dates, spread_debt
from chalicelib.program import service as program
from chalicelib.program.rules import default_program
from chalicelib.rewards import ledger, sweeps
from chalicelib.rewards.rules import Award
from tests.conftest import BACKEND
from tests.ledger_checks import assert_balances_match_entries, entries, lots

MEMBERS = ("p0", "p1")
HOLD_DAYS = 3
_runs = itertools.count()


class Model:
    """One member's points as plain oldest-first lots: pending entries, and available points by
    expiry day, a spend charged at once to the soonest-expiring points held then.

    The service owes a spend to the lots and assigns it when it settles (at the latest before a
    lot of the member expires), to the soonest-expiring points held then. That is this model
    whenever no later credit expires before an earlier one: always under one expiry period, and
    while periods only grow. A version with a shorter period can put newer points ahead of older
    ones; from then on a run checks only the invariants that hold for any order."""

    def __init__(self):
        self.entries: dict[str, dict] = {}  # entry id → {amount, reversed, bucket, available_at}
        self.lots: dict[str, int] = {}
        self.expiry_at: dict[str, str] = {}
        self.credited: dict[str, int] = {}  # by expiry day
        self.expired: dict[str, int] = {}

    @property
    def available(self) -> int:
        return sum(self.lots.values())

    def credit(self, points: int, at: str) -> None:
        dates = lot_dates(at, program.rules_at(at))
        self.lots[dates.day] = self.lots.get(dates.day, 0) + points
        self.credited[dates.day] = self.credited.get(dates.day, 0) + points
        self.expiry_at[dates.day] = dates.expiry_at

    def debit(self, points: int) -> None:
        for day in sorted(self.lots):
            taken = min(points, self.lots[day])
            self.lots[day] -= taken
            points -= taken
            if not self.lots[day]:
                del self.lots[day]

    def expire(self, now: str) -> None:
        for day in sorted(self.lots):
            if self.expiry_at[day] <= now:
                self.expired[day] = self.lots.pop(day)


class ExpiryMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.prefix = f"x{next(_runs)}-"
        bootstrap.prepare(aws.dynamodb(), self.prefix)
        program.clear_caches()
        self.models = {member_id: Model() for member_id in MEMBERS}
        self.sources = itertools.count()
        self.stale: list[PointsLot] = []
        self.longest = 0  # while periods only grow, no credit expires before an earlier one
        self.fifo_exact = True

    @initialize()
    def members_at_noon(self):
        self.change_program(20, 5)  # short periods: lots expire within a run
        # Whole-day clock moves from local noon: a credit's day never depends on test run time.
        local = default_program().local(clock.now())
        noon = datetime.combine(local.date() + timedelta(days=1), time(12), tzinfo=local.tzinfo)
        clock.advance(noon - clock.now())
        for member_id in MEMBERS:
            members.find_or_create("backend", member_id, member_id=member_id, source="backend")
            self.adjust_up(member_id, 100)

    @rule(member_id=st.sampled_from(MEMBERS), points=st.integers(1, 300))
    def award(self, member_id, points):
        source = f"s{next(self.sources)}"
        entry = ledger.award(Award(member_id, "quiz", source, points, "test"), "prop", Rules(hold_days=HOLD_DAYS))
        self.models[member_id].entries[entry.entry_id] = {"amount": points, "reversed": 0, "bucket": "pending",
                                                          "available_at": entry.available_at}

    @rule(member_id=st.sampled_from(MEMBERS), points=st.integers(1, 200))
    def adjust_up(self, member_id, points):
        now = clock.now_iso()
        ledger.spend(member_id, f"adjustment.{next(self.sources)}", points, "goodwill", "adjustment", status="available")
        self.models[member_id].credit(points, now)

    @rule(member_id=st.sampled_from(MEMBERS), points=st.integers(1, 400))
    def spend(self, member_id, points):
        model = self.models[member_id]
        try:
            ledger.spend(member_id, f"redemption.{next(self.sources)}", -points, "mug", "redemption")
        except Conflict:
            assert points > model.available or not self.fifo_exact
            return
        assert points <= model.available or not self.fifo_exact
        model.debit(points)

    @rule(days=st.sampled_from([1, 2, 5, 12, 30]))
    def release(self, days):
        clock.advance(timedelta(days=days))
        now = clock.now_iso()
        sweeps.release_due()
        for member_id, model in self.models.items():
            for entry in model.entries.values():
                if entry["bucket"] == "pending" and entry["available_at"] <= now:
                    entry["bucket"] = "available"
                    if entry["amount"] > entry["reversed"]:
                        model.credit(entry["amount"] - entry["reversed"], now)

    @rule(data=st.data(), share=st.sampled_from([10, 50, 100]))
    def refund(self, data, share):
        member_id = data.draw(st.sampled_from(MEMBERS))
        model = self.models[member_id]
        if not model.entries:
            return
        entry_id = data.draw(st.sampled_from(sorted(model.entries)))
        entry = model.entries[entry_id]
        target = min(entry["amount"], max(entry["reversed"], -(-entry["amount"] * share // 100)))
        ledger.reverse_to(member_id, entry_id, target)
        delta = target - entry["reversed"]
        entry["reversed"] = target
        if delta and entry["bucket"] == "available":
            model.debit(min(delta, model.available))  # what was spent already is a shortfall

    @rule(days=st.sampled_from([1, 3, 10, 25, 60]), then_sweep=st.booleans())
    def clock_moves(self, days, then_sweep):
        clock.advance(timedelta(days=days))
        if then_sweep:
            self.sweep()

    @rule(expire_days=st.sampled_from([10, 20, 45]), notice_days=st.sampled_from([0, 7]))
    def change_program(self, expire_days, notice_days):
        rules = default_program().model_copy(update={"points_expire_days": expire_days,
                                                     "points_expiring_notice_days": notice_days})
        program.put(rules, "prop")
        self.fifo_exact &= expire_days >= self.longest
        self.longest = max(self.longest, expire_days)
        clock.advance(timedelta(minutes=2))  # in force a minute after the put

    @rule()
    def sweep(self):
        now = clock.now_iso()
        self.stale_now = now
        self.stale = [hit for shard in range(EXPIRE_SHARDS)
                      for hit in PointsLot.by_gsi2.query(f"EXPIRE#{shard}", PointsLot.gsi2sk <= f"{now}#~")]
        expiry.run_due(now)
        for model in self.models.values():
            model.expire(now)

    @precondition(lambda self: self.stale)
    @rule()
    def duplicated_sweep(self):
        """At least once: the same tick again, from the index copies the first run read."""
        now = self.stale_now
        before = {m: self._expired(m) for m in MEMBERS}
        for hit in self.stale:
            assert expiry.handle(hit, now) in (None, "noticed")
        assert {m: self._expired(m) for m in MEMBERS} == before

    # -- invariants ----------------------------------------------------------------------
    def _expired(self, member_id: str) -> dict[str, int]:
        found = [e for e in entries(member_id) if e.rule == "expiry"]
        return {e.source_id: -int(e.amount) for e in found}

    @invariant()
    def balances_are_the_sum_of_entries_and_never_negative(self):
        assert_balances_match_entries(MEMBERS)

    @invariant()
    def no_lot_expires_twice_or_more_than_it_got(self):
        for member_id, model in self.models.items():
            expired = self._expired(member_id)  # one entry per day at most: the id is expiry.<day>
            assert all(points <= model.credited.get(day, 0) for day, points in expired.items()), (expired, model.credited)

    @invariant()
    def spends_take_the_oldest_points_first(self):
        if not self.fifo_exact:
            return
        for member_id, model in self.models.items():
            member = Member.get(*Member.key(member_id), consistent_read=True)
            stored = lots(member_id)
            kept, owed = spread_debt([int(lot.remaining) for lot in stored], int(member.lot_debt))
            effective = {lot.day: points for lot, points in zip(stored, kept) if points}
            assert (effective, owed) == (model.lots, 0), (member_id, effective, model.lots)
            assert int(member.points_available) == model.available
            assert self._expired(member_id) == {day: n for day, n in model.expired.items() if n}, (member_id,
                                                                                                   model.expired)

    def teardown(self):
        clock.reset()
        program.clear_caches()


def test_expiry_invariants_hold_under_random_histories(backend):
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(ExpiryMachine, settings=settings(
        max_examples=12 if BACKEND == "moto" else 4, stateful_step_count=40, deadline=None, derandomize=True,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
