"""The steady-traffic benchmark's open-loop sender keeps its schedule (bench/steady.py), and its
plan is one the oracle can judge exactly."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bench import model
from bench.steady import due_offsets, plan, send_open_loop


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


def test_requests_are_due_at_start_plus_i_over_rate():
    assert due_offsets(4, 1.5) == [0.0, 0.25, 0.5, 0.75, 1.0, 1.25]


def test_a_stalled_hand_over_is_followed_by_every_request_already_due_not_by_a_drift():
    clock, order = FakeClock(), []

    def submit(task):
        task()

    def stalls(i):
        def task():
            order.append(i)
            if i == 0:
                clock.t += 1.0  # the sender was held up for a second after the first request
        return task

    handed = send_open_loop([stalls(i) for i in range(14)], 10, submit, clock.now, clock.sleep)
    assert order == list(range(14))
    # Requests 1-10 were due by then: handed over at once; 11-13 on their own schedule again.
    assert [round(h, 6) for h in handed] == [0.0] + [1.0] * 10 + [1.1, 1.2, 1.3]


def test_a_sender_that_is_never_held_up_hands_each_request_over_when_it_is_due():
    clock = FakeClock()
    handed = send_open_loop([lambda: None] * 5, 2, lambda task: task(), clock.now, clock.sleep)
    assert [round(h, 6) for h in handed] == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_the_plan_converts_each_waiting_referee_once_and_repeats_only_after_a_conversion():
    world, setup, timed = plan(400, 3)
    assert len(timed) == 400
    orders = world.orders
    first_of = {o.member: o for o in setup}
    for o in timed:
        buyer = world.members[o.member]
        if buyer.referrer is None:
            continue
        if o.kind == "first":  # a waiting referee: this is its only order
            assert [x for x in orders if x.member == o.member] == [o]
        else:  # a converted referee: its conversion was dated (and sent) before
            assert first_of[o.member].offset_minutes < o.offset_minutes
    assert any(world.members[m.referrer].referrer is not None for m in world.members if m.referrer is not None)
    # The oracle accepts it (no member reaches the program's silver tier, every order in its window).
    ids = {m.idx: f"m{m.idx}" for m in world.members}
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rules = {"steady-1": model.sim_campaign_rules()}
    outcome = model.expected_outcome(world, ids, {m.idx: (now, now) for m in world.members},
                                     now + timedelta(minutes=1), rules, {"milestones": []})
    assert outcome.conversions == len(setup) + sum(1 for o in timed if o.kind == "first")
