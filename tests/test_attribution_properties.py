"""Property: whatever sign-ups, purchases and refunds happen, delivered duplicated and in any
order, the referral graph keeps the invariants of DESIGN.md."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings, strategies as st

from chalicelib.campaigns.rules import default_campaign
from chalicelib.facts import service as facts
from chalicelib.facts.models import Order
from chalicelib.facts.schemas import PurchaseIn, RefundIn
from chalicelib.members import service as members
from chalicelib.members.models import Member
from chalicelib.members.schemas import ReferralIn
from chalicelib.referrals import attribution, codes
from tests.conftest import BACKEND
from tests.flows import signed_up

MIN_FEN = default_campaign().rules.min_purchase_fen
EXAMPLES = 25 if BACKEND == "moto" else 8
_runs = itertools.count()

signups = st.lists(st.integers(min_value=-1, max_value=7), min_size=2, max_size=8)  # referrer index, -1: none
purchases = st.lists(st.tuples(st.integers(0, 7), st.sampled_from([10_00, 49_99, 50_00, 80_00, 200_00])),
                     max_size=10)
refunds = st.lists(st.tuples(st.integers(0, 9), st.integers(1, 100)), max_size=6)  # (order index, percent)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(signups=signups, purchases=purchases, refunds=refunds, data=st.data())
def test_graph_invariants_hold_under_any_delivery(backend, signups, purchases, refunds, data):
    run = f"p{next(_runs)}"
    if BACKEND == "moto":  # moto answers index queries by scanning: keep its tables small
        from chalicelib import bootstrap
        from chalicelib.core import aws

        bootstrap.prepare(aws.dynamodb(), f"{backend}{run}-")
    ids = [f"{run}m{i}" for i in range(len(signups))]
    for i, referrer_index in enumerate(signups):
        # a member may name anyone, even a later member or themself: the rules must cope
        referral = None
        if 0 <= referrer_index < len(ids):
            referral = ReferralIn(code=_code(ids[referrer_index]))
        members.find_or_create("backend", ids[i], member_id=ids[i], source="backend", referral=referral)

    deliveries = []
    orders = []
    for n, (who, amount) in enumerate(purchases):
        order_id = f"{run}o{n}"
        facts.record_purchase(PurchaseIn(order_id=order_id, member_id=ids[who % len(ids)], amount_fen=amount))
        orders.append(order_id)
        deliveries.append(("purchase", order_id))
    for n, (which, percent) in enumerate(refunds):
        if not orders:
            break
        order = Order.get(*Order.key(orders[which % len(orders)]))
        amount = min(int(order.amount_fen) - int(order.refunded_fen), int(order.amount_fen) * percent // 100)
        if amount > 0:
            facts.record_refund(RefundIn(order_id=order.order_id, refund_id=f"r{n}", amount_fen=amount))
            deliveries.append(("refund", (order.order_id, f"r{n}")))

    # at-least-once, any order: every fact delivered once or more, shuffled
    repeats = data.draw(st.lists(st.sampled_from(deliveries), max_size=6) if deliveries else st.just([]))
    for kind, key in data.draw(st.permutations(deliveries + repeats)):
        if kind == "purchase":
            attribution.apply_purchase(key)
        else:
            attribution.apply_refund(*key)

    _check_invariants(ids)


def _code(member_id: str) -> str:
    # codes exist only for members who exist; a not-yet-created member's code is unknown
    if Member.find(member_id) is None:
        return "UNKNOWN2"
    return codes.code_for(member_id).code


def _check_invariants(ids: list[str]) -> None:
    people = {m: Member.get(*Member.key(m), consistent_read=True) for m in ids}
    for member_id, member in people.items():
        # one referrer, never oneself, and the stored chain agrees with the graph
        assert member.referrer_id != member_id
        if member.referrer_id:
            parent = people[member.referrer_id]
            assert member.grandparent_id == parent.referrer_id
        # no cycles: walking up ends
        seen, cursor = set(), member
        while cursor.referrer_id:
            assert cursor.member_id not in seen, f"cycle through {cursor.member_id}"
            seen.add(cursor.member_id)
            cursor = people[cursor.referrer_id]
        # counters match the graph
        referees = [p for p in people.values() if p.referrer_id == member_id]
        assert signed_up(member_id) == sum(p.referral_status in ("signed_up", "converted") for p in referees)
        assert member.referrals_converted == sum(p.referral_status == "converted" for p in referees)
        # conversion stands exactly when some order qualifies after refunds
        own_orders = [o for o in Order.by_gsi1.query(f"ORDERS#{member_id}")]
        own_orders = [Order.get(o.pk, o.sk, consistent_read=True) for o in own_orders]
        qualifying = [o for o in own_orders if int(o.amount_fen) - int(o.refunded_fen) >= max(MIN_FEN, 1)]
        if member.referrer_id:
            assert (member.referral_status == "converted") == bool(qualifying), (member_id, member.referral_status)
            if member.referral_status == "converted":
                assert member.converting_order_id in {o.order_id for o in qualifying}
        assert member.orders == len(own_orders)
        assert member.gmv_fen == sum(int(o.amount_fen) - int(o.refunded_fen) for o in own_orders)
