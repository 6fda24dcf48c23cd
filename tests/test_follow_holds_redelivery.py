"""A sign-up whose coupon award fails after its welcome points were written: the stream
redelivers the record. The referral was flagged at sign-up and rejected between the handler's
read of it and the welcome's write (the flag's handler found no entry then)."""
from __future__ import annotations

from chalicelib import streams as stream_registry
from chalicelib.rewards import handlers, ledger
from chalicelib.streams import Change
from tests.flows import code_of, member, signup, spring_campaign
from tests.helpers import token
from tests.ledger_checks import entries, points


def test_a_welcome_written_before_a_failed_coupon_follows_a_rejection(client, streams, monkeypatch):
    spring_campaign(client, referee_signup_points=100, referee_coupon_fen=500)
    signup(client, "koc", device_id="shared")
    streams.drain()
    kept: list[Change] = []

    def keep(change):
        if change.event == "INSERT" and change.new.member_id == "f0":
            kept.append(change)
            return
        handlers.on_member(change)

    original = stream_registry._handlers[("main", "member")]
    monkeypatch.setitem(stream_registry._handlers, ("main", "member"),
                        [keep if h is handlers.on_member else h for h in original])
    signup(client, "f0", code_of("koc"), device_id="shared")  # flagged at sign-up
    streams.drain()
    (insert,) = kept
    assert insert.new.referral_hold == "fraud_review"

    real_voided, real_award = handlers._voided, ledger._award
    calls = {"voided": 0, "coupon": 0}

    def voided(member_id):
        seen = real_voided(member_id)  # not void yet: the handler goes on to pay
        calls["voided"] += 1
        if calls["voided"] == 1:  # the flag is rejected right after that read; its handler finds nothing
            answer = client.post("/v1/ops/fraud-flags/f0/resolve", {"action": "reject"},
                                 token=token("olivia", "ops"))
            assert answer.status_code == 200, answer.body
            streams.drain()
            assert [e.entry_id for e in entries("f0")] == []
        return seen

    def award(grant, *args, **kwargs):
        if grant.rule == "coupon" and calls["coupon"] == 0:
            calls["coupon"] += 1
            raise RuntimeError("throttled")  # any failure: the stream redelivers the record
        return real_award(grant, *args, **kwargs)

    monkeypatch.setattr(handlers, "_voided", voided)
    monkeypatch.setattr(ledger, "_award", award)
    try:
        handlers.on_member(insert)
    except RuntimeError:
        handlers.on_member(insert)  # the redelivery
    assert member("f0").referral_status == "void"
    welcome = [e for e in entries("f0") if e.rule == "welcome"]
    assert [(int(e.amount), int(e.reversed_amount or 0), e.voided) for e in welcome] == [(100, 100, "fraud_rejected")]
    assert points("f0") == {"available": 0, "pending": 0}
