"""Second-level downline counts: how many of a member's referees' referees signed up and
converted (the first level is counted at binding: `members.models.signed_up`, and the member's
`referrals_converted`).

Kept from the stream, exactly, with the leaderboards' pattern: each grandchild remembers what
it contributes to its grandparent (`SecondLevelFact`, in the grandchild's partition), and a
handler writes only the difference between that and what the grandchild's current state says,
with the record, in one transaction conditioned on the record's revision. A redelivered or
replayed record finds nothing to change; records in any order end at the same counts, because
the state is read (consistently), not taken from the record's image.

The counts are sharded (`SecondLevelCount`, SHARDS items per grandparent, by grandchild) in
their own partitions, not under the grandparent's `M#` partition: a KOL's grandchildren sign up
faster than one partition takes writes, and an item collection of a table with a local index
never splits.

Access patterns:
- what a grandchild contributes: GetItem pk=M#<grandchild>, sk=DL2 (read with the member, one
  BatchGetItem)
- a member's second-level counts: BatchGetItem pk=DL2#<member>#<shard>, sk=COUNTS, every shard
"""
from __future__ import annotations

import zlib
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError

from ..members.models import Member, member_pk
from ..store.base import MainItem, cancelled_by_condition, cancelled_by_conflict, transaction
from ..streams import Change, on_change

SHARDS = 4
MAX_CONFLICTS = 8
COUNTED = ("signed_up", "converted")  # a voided referral (fraud rejected) counts at neither level


class SecondLevelCount(MainItem, discriminator="downline2"):
    member_id = UnicodeAttribute()
    signed_up = NumberAttribute(default=0)
    converted = NumberAttribute(default=0)

    @classmethod
    def key(cls, member_id: str, shard: int) -> tuple[str, str]:
        return f"DL2#{member_id}#{shard}", "COUNTS"


class SecondLevelFact(MainItem, discriminator="downline2_fact"):
    grandparent_id = UnicodeAttribute()
    signed_up = NumberAttribute(default=0)
    converted = NumberAttribute(default=0)
    rev = NumberAttribute(default=0)

    @classmethod
    def key(cls, member_id: str) -> tuple[str, str]:
        return member_pk(member_id), "DL2"


def shard(member_id: str) -> int:
    return zlib.crc32(member_id.encode()) % SHARDS


def contribution(member: Member | None) -> tuple[int, int]:
    """(signed_up, converted) the member adds to their grandparent's counts (pure).

    >>> contribution(Member(grandparent_id="g", referral_status="converted"))
    (1, 1)
    >>> contribution(Member(grandparent_id="g", referral_status="void")), contribution(Member())
    ((0, 0), (0, 0))
    """
    if member is None or not member.grandparent_id or member.referral_status not in COUNTED:
        return 0, 0
    return 1, int(member.referral_status == "converted")


@on_change("main", "member")
def count_second_level(change: Change) -> None:
    new, old = change.new, change.old
    if new is None or not new.grandparent_id:
        return  # no grandparent; and an erased or deleted member keeps the counts it made
    if old is not None and old.referral_status == new.referral_status:
        return  # nothing that counts changed: no read
    apply(new.member_id)


def apply(member_id: str) -> bool:
    """Make the member's contribution what their state says now; True when anything changed."""
    for _ in range(MAX_CONFLICTS):
        found = {type(i): i for i in MainItem.batch_get([Member.key(member_id), SecondLevelFact.key(member_id)],
                                                         consistent_read=True)}
        member, record = found.get(Member), found.get(SecondLevelFact)
        if member is None:
            return False
        wanted = contribution(member)
        had = (int(record.signed_up), int(record.converted)) if record else (0, 0)
        if wanted == had:
            return False
        try:
            _write(member, record, wanted, had)
            return True
        except TransactWriteError as exc:
            if not (cancelled_by_condition(exc) or cancelled_by_conflict(exc)):  # conflict: shared tallies
                raise
    raise RuntimeError(f"could not count {member_id} at the second level: kept conflicting")


def _write(member: Member, record: SecondLevelFact | None, wanted: tuple[int, int], had: tuple[int, int]) -> None:
    rev = int(record.rev) if record else 0
    counts = SecondLevelCount(*SecondLevelCount.key(member.grandparent_id, shard(member.member_id)))
    with transaction() as tx:
        tx.save(SecondLevelFact(*SecondLevelFact.key(member.member_id), grandparent_id=member.grandparent_id,
                                signed_up=wanted[0], converted=wanted[1], rev=rev + 1),
                condition=(SecondLevelFact.rev == rev) if record else SecondLevelFact.pk.does_not_exist())
        tx.update(counts, actions=[SecondLevelCount.signed_up.add(wanted[0] - had[0]),
                                   SecondLevelCount.converted.add(wanted[1] - had[1]),
                                   SecondLevelCount.member_id.set(member.grandparent_id),
                                   SecondLevelCount.type.set(SecondLevelCount)])


def count_keys(member_id: str) -> list[tuple[str, str]]:
    """The keys of a member's second-level counts: read them with other items, in one batch."""
    return [SecondLevelCount.key(member_id, s) for s in range(SHARDS)]


def second_level(items: Any) -> dict[str, int]:
    """The counts from the shard items read (absent shards count zero)."""
    shards = [i for i in items if isinstance(i, SecondLevelCount)]
    return {"signed_up": sum(int(s.signed_up) for s in shards), "converted": sum(int(s.converted) for s in shards)}
