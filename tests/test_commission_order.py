"""Which orders earn commission is a function of the facts: from the referral's converting order
on, in fact order (occurred_at, then order id), whatever order the stream hands records to the
handlers in — one batch or several, the small earlier order's record first or last."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chalicelib.core import clock
from tests.conftest import BACKEND
from tests.flows import code_of, purchase, refund, signup
from tests.ledger_checks import assert_balances_match_entries, entries

BASE: list = []  # a few hours before the test: every fact is dated in the past, in a fixed order


@pytest.fixture(autouse=True)
def base_time():
    BASE[:] = [clock.now() - timedelta(hours=3)]


def at(minutes: int) -> str:
    return clock.iso(BASE[0] + timedelta(minutes=minutes))


def standing(member_id: str) -> dict[str, int]:
    """What stands on the member's referral entries (an entry standing at 0 is as good as none)."""
    return {e.entry_id: e.standing for e in entries(member_id)
            if e.rule in ("conversion", "commission", "second_level") and e.standing}


def referral(client, streams) -> None:
    signup(client, "gp", occurred_at=at(0))
    signup(client, "koc", code_of("gp"), occurred_at=at(0))
    signup(client, "f1", code_of("koc"), occurred_at=at(0))
    streams.drain()


def buy(client, order_id: str, amount_fen: int, minutes: int) -> None:
    assert purchase(client, order_id, "f1", amount_fen, occurred_at=at(minutes)).status_code == 200


@pytest.mark.parametrize("arrival", [("small", "o1"), ("o1", "small")])
def test_an_order_before_the_conversion_earns_nothing_in_one_batch(client, streams, arrival):
    """¥10 (under the ¥50 minimum) then ¥150 that converts: only the ¥150 earns commission and the
    second-level share, whichever record arrives first, both handled in one drain."""
    referral(client, streams)
    facts = {"small": (10_00, 1), "o1": (150_00, 2)}
    for order_id in arrival:
        buy(client, order_id, *facts[order_id])
    streams.drain()
    assert standing("koc") == {"conversion.o1": 500, "commission.o1": 450}
    assert standing("gp") == {"second_level.o1": 150}
    assert_balances_match_entries(["koc", "gp", "f1"])


def test_a_qualifying_order_reported_late_with_an_earlier_date_pays_the_orders_after_it(client, streams):
    """o1 converted first; a ¥60 order dated before the small one arrives later and takes the
    conversion: the small order is now after the conversion and earns its commission."""
    referral(client, streams)
    buy(client, "small", 10_00, 2)
    buy(client, "o1", 150_00, 3)
    streams.drain()
    assert standing("koc") == {"conversion.o1": 500, "commission.o1": 450}
    buy(client, "early", 60_00, 1)
    streams.drain()
    assert standing("koc") == {"conversion.early": 500, "commission.early": 180, "commission.small": 30,
                               "commission.o1": 450}
    assert standing("gp") == {"second_level.early": 60, "second_level.small": 10, "second_level.o1": 150}
    assert_balances_match_entries(["koc", "gp", "f1"])


def test_a_refund_that_moves_the_conversion_later_takes_back_the_orders_it_passes(client, streams):
    """o1 converts, a small order follows, then o2 qualifies; o1 is refunded to ¥30 (under the
    minimum): o2 converts now, and neither o1's remaining ¥30 nor the small order before o2 earn."""
    referral(client, streams)
    buy(client, "o1", 150_00, 1)
    buy(client, "small", 30_00, 2)
    buy(client, "o2", 80_00, 3)
    streams.drain()
    assert standing("koc") == {"conversion.o1": 500, "commission.o1": 450, "commission.small": 90,
                               "commission.o2": 240}
    clock.advance(timedelta(days=3))  # past the quick-refund window: no fraud flag, nothing held
    from tests.helpers import token

    back = client.post("/v1/events/refunds", {"order_id": "o1", "refund_id": "r1", "amount_fen": 120_00},
                       token=token("brand-backend", "service"))
    assert back.status_code == 200, back.body
    streams.drain()
    assert standing("koc") == {"conversion.o2": 500, "commission.o2": 240}
    assert standing("gp") == {"second_level.o2": 80}
    assert_balances_match_entries(["koc", "gp", "f1"])


def test_a_refund_that_moves_the_conversion_back_restores_its_reward(client, streams):
    """¥80 converts; ¥150 dated before it arrives late and takes the conversion; a refund brings
    the ¥150 under the minimum: the conversion, and its 500 points, are the ¥80's again."""
    referral(client, streams)
    buy(client, "small", 10_00, 2)
    buy(client, "later", 80_00, 4)
    streams.drain()
    assert standing("koc") == {"conversion.later": 500, "commission.later": 240}
    buy(client, "o1", 150_00, 3)
    streams.drain()
    assert standing("koc") == {"conversion.o1": 500, "commission.o1": 450, "commission.later": 240}
    assert refund(client, "o1", "r1", 120_00, occurred_at=at(5)).status_code == 200
    streams.drain()
    assert standing("koc") == {"conversion.later": 500, "commission.later": 240}
    assert standing("gp") == {"second_level.later": 80}
    assert_balances_match_entries(["koc", "gp", "f1"])


# -- property: any arrival order, any batching, the ledger of the facts handled one by one ------

EXAMPLES = 8 if BACKEND == "moto" else 3
_worlds = itertools.count()
_reference: dict[tuple, tuple] = {}


def _world(backend: str):
    """Fresh tables (moto answers index queries by scanning: keep them small) and a poller on them."""
    from app import app
    from chalicelib.core import aws
    from chalicelib.store.base import table_name
    from infra.local.stream_poller import StreamPoller
    from tests.conftest import _prepare

    _prepare(f"{backend}w{next(_worlds)}-")
    return StreamPoller(app, aws.dynamodb(), aws.streams(), table_name)


def _play(client, backend: str, facts: list[tuple], drains: list[bool]) -> tuple:
    poller = _world(backend)
    referral(client, poller)
    for fact, drain in zip(facts, drains):
        if fact[0] == "refund":
            assert refund(client, "o1", "r1", fact[1], occurred_at=at(5)).status_code == 200
        else:
            buy(client, *fact)
        if drain:
            poller.drain()
    poller.drain()
    assert_balances_match_entries(["koc", "gp", "f1"])
    return standing("koc"), standing("gp")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(early=st.booleans(), later_fen=st.sampled_from([30_00, 80_00]),
       refunded=st.sampled_from([0, 20_00, 120_00, 150_00]), data=st.data())
def test_any_arrival_order_pays_what_the_facts_in_fact_order_pay(client, backend, early, later_fen, refunded, data):
    """A small order before the conversion, the converting ¥150, a later order, maybe a
    qualifying order dated first and a refund of the ¥150: reported in any order, handled in any
    batches, the advocate and the grandparent end with what handling each fact alone, in the order
    the facts happened, gives them."""
    facts = ([("early", 60_00, 1)] if early else []) + [("small", 10_00, 2), ("o1", 150_00, 3),
                                                         ("later", later_fen, 4)]
    facts += [("refund", refunded)] if refunded else []
    key = tuple(facts)
    if key not in _reference:
        _reference[key] = _play(client, backend, facts, [True] * len(facts))
    arrival = data.draw(st.permutations(facts))
    if refunded and arrival.index(("refund", refunded)) < arrival.index(("o1", 150_00, 3)):
        arrival.remove(("refund", refunded))  # a refund is reported after its order
        arrival.append(("refund", refunded))
    drains = data.draw(st.lists(st.booleans(), min_size=len(arrival), max_size=len(arrival)))
    assert _play(client, backend, arrival, drains) == _reference[key], (arrival, drains)
