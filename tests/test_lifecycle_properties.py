"""Properties of the lifecycle: whatever purchases, refunds and clock moves happen, with every
fact and every reconcile delivered duplicated and in any order, the member ends in the stage and
tier the pure functions say, own-purchase points equal what the fold earns, and the timeline
records each change once."""
from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings, strategies as st

from chalicelib.core import clock
from chalicelib.facts import service as facts_service
from chalicelib.facts.models import Order
from chalicelib.facts.schemas import PurchaseIn, RefundIn
from chalicelib.lifecycle import service, stages, sweep, tiers
from chalicelib.lifecycle.facts import MemberFacts, Purchase, Refund
from chalicelib.lifecycle.models import timeline_of
from chalicelib.members import service as members
from chalicelib.program import service as program
from chalicelib.referrals import attribution
from chalicelib.rewards.rules import reversal_target
from tests.conftest import BACKEND
from tests.ledger_checks import assert_balances_match_entries, entries
from tests.flows import member

EXAMPLES = 8 if BACKEND == "moto" else 4
_runs = itertools.count()

steps = st.lists(st.one_of(
    st.tuples(st.just("buy"), st.sampled_from([30_00, 300_00, 900_00, 1500_00]), st.sampled_from([0, 0, 2, 20])),
    st.tuples(st.just("refund"), st.integers(0, 9), st.integers(10, 100)),
    st.tuples(st.just("wait"), st.sampled_from([1, 10, 40, 70, 130]), st.just(0)),
), min_size=1, max_size=9)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=steps, data=st.data())
def test_stage_tier_and_points_are_a_function_of_the_facts(backend, steps, data):
    run = f"l{next(_runs)}"
    if BACKEND == "moto":  # moto answers index queries by scanning: keep its tables small
        from chalicelib import bootstrap
        from chalicelib.core import aws

        bootstrap.prepare(aws.dynamodb(), f"{backend}{run}-")
    who = f"{run}lily"
    members.find_or_create("backend", who, member_id=who, source="backend")
    deliveries: list[tuple[str, object]] = []
    recorded: dict[str, dict] = {}
    for n, (kind, a, b) in enumerate(steps):
        if kind == "buy":  # reported now, dated up to 20 days back: facts arrive out of order
            order_id = f"{run}o{n}"
            at = clock.iso(clock.now() - timedelta(days=b))
            facts_service.record_purchase(PurchaseIn(order_id=order_id, member_id=who, amount_fen=a, occurred_at=at))
            recorded[order_id] = {"at": at, "amount": a, "refunds": []}
            deliveries += [("purchase", order_id), ("reconcile", None)]
        elif kind == "refund" and recorded:
            order_id = list(recorded)[a % len(recorded)]
            order = Order.get(*Order.key(order_id), consistent_read=True)
            amount = min(int(order.amount_fen) - int(order.refunded_fen), int(order.amount_fen) * b // 100)
            if amount > 0:
                facts_service.record_refund(RefundIn(order_id=order_id, refund_id=f"r{n}", amount_fen=amount))
                recorded[order_id]["refunds"].append((clock.now_iso(), amount))
                deliveries += [("refund", (order_id, f"r{n}")), ("reconcile", None)]
        elif kind == "wait":
            clock.advance(timedelta(days=a))
            deliveries.append(("sweep", clock.now_iso()))

    # at least once, in any order: every delivery once or more, shuffled
    repeats = data.draw(st.lists(st.sampled_from(deliveries), max_size=6) if deliveries else st.just([]))
    for kind, key in data.draw(st.permutations(deliveries + repeats)):
        _deliver(kind, key, who)
    for kind, key in deliveries:  # what the stream still carries: the facts, then their reconciles
        if kind in ("purchase", "refund"):
            _deliver(kind, key, who)
    service.reconcile(who)
    sweep.run_due()
    service.reconcile(who)  # a duplicate changes nothing

    now = clock.now_iso()
    truth = MemberFacts(who, member(who).created_at, tuple(
        Purchase(order_id, o["at"], o["amount"], tuple(Refund(at, fen) for at, fen in o["refunds"]))
        for order_id, o in recorded.items()))
    stored = member(who)
    assert stored.stage == stages.stage_at(truth, now, program.rules_at(now))
    state = tiers.tier_state(truth, now, program.rules_at)
    assert (stored.tier, stored.tier_warning) == (state.tier, state.warning)
    earned = {e.order_id: (int(e.amount), int(e.reversed_amount or 0)) for e in entries(who) if e.rule == "purchase"}
    expected = {order_id: (points, reversal_target(points, sum(f for _, f in recorded[order_id]["refunds"]),
                                                   recorded[order_id]["amount"]))
                for order_id, points in state.points.items() if points}
    assert earned == expected
    changes = [(e["kind"], e["from"], e["to"]) for e in timeline_of(who)]
    for kind in ("stage", "tier"):
        chain = [(f, t) for k, f, t in changes if k == kind]
        assert all(f != t for f, t in chain)
        assert all(chain[i][1] == chain[i + 1][0] for i in range(len(chain) - 1)), chain
        if chain:
            assert chain[-1][1] == (stored.stage if kind == "stage" else stored.tier)
    assert_balances_match_entries([who])


def _deliver(kind: str, key, who: str) -> None:
    if kind == "purchase":
        attribution.apply_purchase(key)
    elif kind == "refund":
        attribution.apply_refund(*key)
    elif kind == "reconcile":
        service.reconcile(who)
    else:
        sweep.run_due(key)
