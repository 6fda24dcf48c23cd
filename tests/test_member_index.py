"""The member's index entries live on small items (members/models.py: DownlineEntry,
LifecycleDue): the downline listing and the lifecycle sweep answer as before, for members bound
or scheduled since and for those stored before (their keys on the member item itself)."""
from __future__ import annotations

import json

from chalicelib.lifecycle import service as lifecycle
from chalicelib.members.models import DownlineEntry, LifecycleDue, Member
from tests.flows import code_of, login, member, purchase
from tests.helpers import token
from tests.test_lifecycle import Watcher, days, put_program, settle

ADMIN = token("ada", "admin")


def referrals(client, referrer_token: str, **query) -> list[tuple[str, str]]:
    """Every page of the referrer's downline, newest first: (masked name, status)."""
    seen, cursor = [], None
    while True:
        params = "&".join(f"{k}={v}" for k, v in {**query, **({"cursor": cursor} if cursor else {})}.items())
        answer = client.get(f"/v1/members/me/referrals?{params}", token=referrer_token)
        assert answer.status_code == 200, answer.body
        seen += [(r["display_name"], r["status"]) for r in answer.json_body["items"]]
        cursor = answer.json_body["next_cursor"]
        if not cursor:
            return seen


def as_stored_before(member_id: str) -> None:
    """Turn a binding into its older shape: the downline keys on the member item, no entry."""
    entry = DownlineEntry.get(*DownlineEntry.key(member_id), consistent_read=True)
    Member(*Member.key(member_id)).update(actions=[Member.gsi1pk.set(entry.gsi1pk), Member.gsi1sk.set(entry.gsi1sk)])
    entry.delete()


def test_downline_lists_referees_bound_before_and_after_with_their_current_status(client, streams):
    alice_token, alice, _ = login(client, "alice", "Alice")
    _, bob, _ = login(client, "bob", "Bobby", referral={"code": code_of(alice)})
    as_stored_before(bob)
    _, carol, _ = login(client, "carol", "Carol", referral={"code": code_of(alice)})
    _, dave, _ = login(client, "dave", "David", referral={"code": code_of(alice)})
    expected = [("D***d", "signed_up"), ("C***l", "signed_up"), ("B***y", "signed_up")]
    assert referrals(client, alice_token) == expected
    assert referrals(client, alice_token, limit=1) == expected  # a cursor crosses both kinds

    # the listing shows the member's status as it is now, though the entry was written once
    assert purchase(client, "o-carol", carol, 100_00).status_code == 200
    assert purchase(client, "o-bob", bob, 100_00).status_code == 200
    streams.drain()
    assert referrals(client, alice_token) == [("D***d", "signed_up"), ("C***l", "converted"), ("B***y", "converted")]

    # bob's purchase moved his lifecycle, and with it his downline keys onto an entry
    assert member(bob).gsi1pk is None and DownlineEntry.get(*DownlineEntry.key(bob)).gsi1pk == f"REF#{alice}"
    assert referrals(client, alice_token, limit=2) == [("D***d", "signed_up"), ("C***l", "converted"),
                                                       ("B***y", "converted")]
    # the member's own updates (balances, counters, lifecycle) carry no downline keys
    stored = member(carol)
    assert (stored.gsi1pk, stored.gsi2pk, stored.referrer_id) == (None, None, alice)
    assert DownlineEntry.get(*DownlineEntry.key(carol)).gsi1pk == f"REF#{alice}"


def test_an_erased_referee_stays_in_the_downline_without_a_name(client, streams):
    alice_token, alice, _ = login(client, "alice", "Alice")
    bob_token, bob, _ = login(client, "bob", "Bobby", referral={"code": code_of(alice)})
    exported = client.get("/v1/members/me/export", token=bob_token)
    assert exported.status_code == 200, exported.body
    assert "downline_entry" not in json.dumps(exported.json_body)  # bookkeeping: the member's own fields are exported
    assert client.post(f"/v1/ops/members/{bob}/erase", token=ADMIN).status_code == 200
    assert referrals(client, alice_token) == [("*", "signed_up")]  # counted, as the referrer's counter is


def test_sweep_finds_due_members_stored_before_and_after(client, streams):
    put_program(client)
    _, lily, _ = login(client, "lily", "Lily")
    _, mia, _ = login(client, "mia", "Mia")
    for who in (lily, mia):
        answer = client.put("/v1/members/me/preferences", {"marketing_opt_in": True}, token=token(who))
        assert answer.status_code == 200, answer.body
    for order, who in (("o-lily", lily), ("o-mia", mia)):
        assert purchase(client, order, who, 100_00).status_code == 200
    settle(streams)
    due = {m: LifecycleDue.get(*LifecycleDue.key(m), consistent_read=True) for m in (lily, mia)}
    assert all(d.gsi2sk.startswith(member(m).lifecycle_due_at) for m, d in due.items())
    # mia as stored before: the due keys on her member item
    keys = lifecycle.due_keys(mia, member(mia).lifecycle_due_at)
    Member(*Member.key(mia)).update(actions=[Member.gsi2pk.set(keys["gsi2pk"]), Member.gsi2sk.set(keys["gsi2sk"])])
    due[mia].delete()

    watchers = {m: Watcher(client, m) for m in (lily, mia)}
    for w in watchers.values():
        w.new_notes()
    days(14.1)  # the second-purchase nudge is due for both
    settle(streams)
    settle(streams)  # a second run finds nothing left
    assert {m: w.new_notes() for m, w in watchers.items()} == {
        lily: [("second_purchase_nudge", "o-lily")], mia: [("second_purchase_nudge", "o-mia")]}
    # mia's keys moved to her due item with the reconcile
    assert member(mia).gsi2pk is None
    assert LifecycleDue.get(*LifecycleDue.key(mia), consistent_read=True).gsi2sk.startswith(member(mia).lifecycle_due_at)
