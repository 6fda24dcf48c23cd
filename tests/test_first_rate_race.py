"""A mark re-put with the same key (a refund hands the conversion to the referee's other order
at the same time) gets its first rate from its own record's handler, whose rank was counted
just before an earlier-dated conversion of the same advocate appeared; that conversion's
re-rank read the mark before the rate was written and was refused after. The first-rate
record is then the only record left that would settle the mark at its real rank."""
from __future__ import annotations

import threading
from datetime import timedelta

from chalicelib import streams as stream_registry
from chalicelib.core import clock
from chalicelib.referrals import attribution
from chalicelib.referrals.models import Conversion
from chalicelib.rewards import handlers, ranks
from chalicelib.streams import Change
from tests.flows import code_of, signup, spring_campaign
from tests.helpers import token
from tests.ledger_checks import entries


def test_first_rate_written_with_a_stale_rank_is_settled_again(client, streams, monkeypatch):
    base = clock.now() - timedelta(hours=3)

    def at(minutes: int) -> str:
        return clock.iso(base + timedelta(minutes=minutes))

    def post(path, body):
        answer = client.post(path, body, token=token("brand-backend", "service"))
        assert answer.status_code == 200, answer.body

    spring_campaign(client, advocate_levels=[{"name": "friend", "min_conversions": 0, "commission_bps": 300},
                                             {"name": "star", "min_conversions": 2, "commission_bps": 500}])
    signup(client, "koc", occurred_at=at(0))
    signup(client, "f1", code_of("koc", "spring"), occurred_at=at(0))
    signup(client, "f2", code_of("koc", "spring"), occurred_at=at(0))
    streams.drain()
    # f2: two qualifying orders at the same moment; o2a converts (rank 1: 3 %), o2b earns 3 % too
    post("/v1/events/purchases", {"order_id": "o2a", "member_id": "f2", "amount_fen": 100_00, "occurred_at": at(20)})
    post("/v1/events/purchases", {"order_id": "o2b", "member_id": "f2", "amount_fen": 100_00, "occurred_at": at(20)})
    streams.drain()
    m2_key = Conversion.key("koc", at(20), "f2")
    assert int(Conversion.get(*m2_key, consistent_read=True).commission_bps) == 300

    # o2a refunded in full (past the quick-refund window): the conversion is handed to o2b, same
    # time, same referee: the mark is re-put under its key, without a rate. Its record is kept
    # back here to be handled side by side with f1's conversion below.
    clock.advance(timedelta(days=3))
    kept: list[Change] = []
    monkeypatch.setitem(stream_registry._handlers, ("main", "conversion"), [kept.append])
    post("/v1/events/refunds", {"order_id": "o2a", "refund_id": "r1", "amount_fen": 100_00})
    streams.drain()
    (replaced,) = kept
    assert replaced.event == "MODIFY" and replaced.new.order_id == "o2b" and replaced.new.commission_bps is None

    real_rank, real_store = ranks.rank, ranks._store_rate
    a_counted, b_read, a_stored = threading.Event(), threading.Event(), threading.Event()

    def rank(mark):
        n = real_rank(mark)
        if threading.current_thread().name == "A" and mark.referee_id == "f2" and not a_counted.is_set():
            a_counted.set()  # counted before f1's conversion exists: rank 1
            assert b_read.wait(60)
        return n

    def store(mark, level):
        lane = threading.current_thread().name
        if lane == "B" and mark.referee_id == "f2":  # the re-rank read the mark without a rate
            b_read.set()
            assert a_stored.wait(60)
            return real_store(mark, level)
        done = real_store(mark, level)
        if lane == "A" and mark.referee_id == "f2":
            a_stored.set()
        return done

    monkeypatch.setattr(ranks, "rank", rank)
    monkeypatch.setattr(ranks, "_store_rate", store)
    errors: list[BaseException] = []

    def run(change):
        try:
            handlers.on_conversion(change)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
            a_counted.set(), b_read.set(), a_stored.set()

    lane_a = threading.Thread(target=run, args=(replaced,), name="A")  # the re-put mark's record
    lane_b = None
    lane_a.start()
    try:
        assert a_counted.wait(60)
        # f1 converts with an order dated before f2's: f1's conversion ranks 1st, f2's 2nd
        post("/v1/events/purchases", {"order_id": "o1", "member_id": "f1", "amount_fen": 100_00,
                                      "occurred_at": at(10)})
        attribution.apply_purchase("o1")
        m1 = Conversion.get(*Conversion.key("koc", at(10), "f1"), consistent_read=True)
        inserted = Change("INSERT", "conversion", m1, None, "0", False)
        lane_b = threading.Thread(target=run, args=(inserted,), name="B")  # f1's conversion's record
        lane_b.start()
    finally:
        lane_a.join(120)
        if lane_b is not None:
            lane_b.join(120)
    assert not errors, errors
    monkeypatch.setattr(ranks, "rank", real_rank)
    monkeypatch.setattr(ranks, "_store_rate", real_store)

    # every later record as the stream delivers it (f1's INSERT was handled by lane B above)
    def conversion(change):
        if change.event == "INSERT" and change.new.referee_id == "f1":
            return
        handlers.on_conversion(change)

    monkeypatch.setitem(stream_registry._handlers, ("main", "conversion"), [conversion])
    streams.drain()

    assert Conversion.count("M#koc", Conversion.sk.between(ranks.FIRST, m2_key[1]), consistent_read=True) == 2
    assert int(Conversion.get(*m2_key, consistent_read=True).commission_bps) == 500  # f2's conversion ranks 2nd
    standing = {e.entry_id: e.standing for e in entries("koc") if e.rule == "commission" and e.standing}
    assert standing == {"commission.o1": 300, "commission.o2b": 500}
