"""Member and identity items (main table).

Access patterns:
- member by id: GetItem pk=M#<id>, sk=PROFILE; with the shards of its sign-up counter: Query
  pk=M#<id>, sk begins_with PROFILE (`SignupCount`, sk PROFILE#SIGNUPS#<n>, sorts right after it)
- member by login identity: GetItem pk=ID#<provider>#<subject>, sk=ID → member_id
- a member's identities (ops' member 360): Query gsi1 gsi1pk=IDS#<member> (an index entry per
  identity, written with it: the member item itself never carries the subjects)
- a referrer's downline, newest first: Query gsi1 gsi1pk=REF#<referrer>; the hits are
  `DownlineEntry` items (pk=M#<referee>, sk=REF), whose members the reader BatchGets (members
  bound before these existed carry the gsi1 keys on the member item itself: both answer)
- members whose lifecycle changes with the clock, by when: Query gsi2 gsi2pk=LIFECYCLE#<shard>,
  gsi2sk <= <now> (sparse: only members with a next change; lifecycle/sweep.py): the hits are
  `LifecycleDue` items (pk=M#<member>, sk=DUE), or older members' own gsi2 keys

Why separate items: every index projects ALL, so a member item carrying index keys had each of
its updates (balances, counters, lifecycle) copy ~1 KB into the index as well, twice inside a
transaction. A small item carries the keys instead and is written only when what the index
serves changes: the downline entry once, at binding; the due entry when the due time moves.
"""
from __future__ import annotations

import zlib
from typing import Iterable

from pynamodb.attributes import BooleanAttribute, ListAttribute, NumberAttribute, UnicodeAttribute

from ..store.base import MainItem

PROFILE = "PROFILE"


def member_pk(member_id: str) -> str:
    return f"M#{member_id}"


class Member(MainItem, discriminator="member"):
    member_id = UnicodeAttribute()
    display_name = UnicodeAttribute(default="")
    created_at = UnicodeAttribute()
    source = UnicodeAttribute(default="login")  # login | backend | import
    # bulk import (imports/members.py): the row's digest (a re-sent row is compared with it) and
    # whether its history may earn rewards (`apply_rewards`); unset on members who signed up here
    import_hash = UnicodeAttribute(null=True)
    import_rewards = BooleanAttribute(null=True)
    # lifecycle (lifecycle/service.py: derived from the facts, written with the moments they cause)
    stage = UnicodeAttribute(default="new")
    stage_since = UnicodeAttribute(null=True)
    tier = UnicodeAttribute(default="bronze")
    tier_since = UnicodeAttribute(null=True)
    tier_warning = UnicodeAttribute(null=True)  # the review that announced a downgrade
    lifecycle_due_at = UnicodeAttribute(null=True)  # the sweep's next look: at or before the clock's next change
    lifecycle_rev = NumberAttribute(default=0)  # optimistic lock of the derived state
    nudged_for = UnicodeAttribute(null=True)  # the first order a second-purchase nudge was sent for
    birthday_year = NumberAttribute(null=True)  # last year the birthday gift was given
    # preferences (PUT /v1/members/me/preferences)
    locale = UnicodeAttribute(default="zh-CN")
    channels = ListAttribute(of=UnicodeAttribute, null=True)
    marketing_opt_in = BooleanAttribute(default=False)
    birthday = UnicodeAttribute(null=True)  # MM-DD, set once
    device_id = UnicodeAttribute(null=True)
    phone_hash = UnicodeAttribute(null=True)
    # referral binding (written once, conditionally)
    referrer_id = UnicodeAttribute(null=True)
    grandparent_id = UnicodeAttribute(null=True)
    referral_campaign_id = UnicodeAttribute(null=True)
    referral_campaign_version = NumberAttribute(null=True)
    referral_code = UnicodeAttribute(null=True)
    referral_click_id = UnicodeAttribute(null=True)
    referral_channel = UnicodeAttribute(null=True)  # the linked click's channel, "code" without one (insight)
    bound_at = UnicodeAttribute(null=True)
    window_ends_at = UnicodeAttribute(null=True)
    referral_status = UnicodeAttribute(null=True)  # signed_up | converted | void (fraud rejected)
    referral_hold = UnicodeAttribute(null=True)  # "fraud_review" while a fraud flag is open
    converted_at = UnicodeAttribute(null=True)
    converting_order_id = UnicodeAttribute(null=True)
    # purchase counters (stream-maintained)
    orders = NumberAttribute(default=0)
    gmv_fen = NumberAttribute(default=0)
    first_purchase_at = UnicodeAttribute(null=True)
    last_purchase_at = UnicodeAttribute(null=True)
    # balances (changed only together with a ledger entry, in one transaction)
    points_available = NumberAttribute(default=0)
    points_pending = NumberAttribute(default=0)
    points_redeemed = NumberAttribute(default=0)
    lot_debt = NumberAttribute(default=0)  # points debited but not yet taken from lots (points/lots.py)
    # advocate counters
    referrals_signed_up = NumberAttribute(default=0)
    referrals_converted = NumberAttribute(default=0)
    # personal data erased (privacy/erase.py): the id, amounts and counts stay; nothing logs in as it
    erased_at = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, member_id: str) -> tuple[str, str]:
        return member_pk(member_id), PROFILE

    @property
    def quiet_import(self) -> bool:
        """Imported without `apply_rewards`: the sign-up pays no welcome rewards, sends no welcome."""
        return self.source == "import" and not self.import_rewards

    @classmethod
    def new(cls, member_id: str, created_at: str, **fields) -> "Member":
        return cls(member_pk(member_id), PROFILE, member_id=member_id, created_at=created_at, **fields)

    @classmethod
    def find(cls, member_id: str, consistent: bool = False) -> "Member | None":
        try:
            return cls.get(*cls.key(member_id), consistent_read=consistent)
        except cls.DoesNotExist:
            return None


class Identity(MainItem, discriminator="identity"):
    provider = UnicodeAttribute()
    subject = UnicodeAttribute()
    member_id = UnicodeAttribute()
    created_at = UnicodeAttribute()

    @classmethod
    def key(cls, provider: str, subject: str) -> tuple[str, str]:
        return f"ID#{provider}#{subject}", "ID"

    @classmethod
    def new(cls, provider: str, subject: str, member_id: str, created_at: str) -> "Identity":
        pk, sk = cls.key(provider, subject)
        return cls(pk, sk, provider=provider, subject=subject, member_id=member_id, created_at=created_at,
                   **cls.member_keys(member_id, provider, created_at))

    @staticmethod
    def member_keys(member_id: str, provider: str, created_at: str) -> dict[str, str]:
        return {"gsi1pk": f"IDS#{member_id}", "gsi1sk": f"{created_at}#{provider}"}

    @classmethod
    def of_member(cls, member_id: str) -> list["Identity"]:
        return list(cls.by_gsi1.query(f"IDS#{member_id}"))


class DownlineEntry(MainItem, discriminator="downline_entry"):
    """The referee's place in their referrer's downline (gsi1 REF#<referrer>, by bind time).
    Written once, in the transaction that creates and binds the member; it carries ids only:
    the listing reads the members themselves (status, name and times are theirs to change)."""
    member_id = UnicodeAttribute()
    referrer_id = UnicodeAttribute()

    @classmethod
    def key(cls, member_id: str) -> tuple[str, str]:
        return member_pk(member_id), "REF"

    @classmethod
    def new(cls, member_id: str, referrer_id: str, bound_at: str) -> "DownlineEntry":
        return cls(*cls.key(member_id), member_id=member_id, referrer_id=referrer_id,
                   gsi1pk=f"REF#{referrer_id}", gsi1sk=f"{bound_at}#{member_id}")


class LifecycleDue(MainItem, discriminator="lifecycle_due"):
    """When the clock alone next changes the member's lifecycle (gsi2 LIFECYCLE#<shard>; sparse).
    Written with the member's `lifecycle_due_at`, in the same transaction, only when it moves."""
    member_id = UnicodeAttribute()

    @classmethod
    def key(cls, member_id: str) -> tuple[str, str]:
        return member_pk(member_id), "DUE"


class SignupCount(MainItem, discriminator="signup_count"):
    """One shard of an advocate's count of friends signed up through them. Every sign-up through
    a viral code adds to its referrer's count inside the sign-up transaction, and DynamoDB cancels
    transactions that meet on one item (TransactionConflict): the count is split over `SHARDS`
    items, a friend's sign-up (and its rejection as fraud) adding to the shard of the friend's id.
    The member item's own `referrals_signed_up` counted before the shards, and member imports
    still add there: the count is the two together (`signed_up`)."""

    SHARDS = 8
    count = NumberAttribute(default=0)

    @classmethod
    def key(cls, member_id: str, shard: int) -> tuple[str, str]:
        return member_pk(member_id), f"{PROFILE}#SIGNUPS#{shard}"

    @classmethod
    def keys(cls, member_id: str) -> list[tuple[str, str]]:
        return [cls.key(member_id, n) for n in range(cls.SHARDS)]

    @classmethod
    def of(cls, referrer_id: str, referee_id: str) -> "SignupCount":
        """The shard a friend's sign-up counts in."""
        return cls(*cls.key(referrer_id, zlib.crc32(referee_id.encode()) % cls.SHARDS))

    @classmethod
    def actions(cls, step: int) -> list:
        """An update that may create the shard: it names its type, or a batch read could not tell it."""
        return [cls.count.add(step), cls.type.set(cls)]


def signed_up(member: Member, items: Iterable[object]) -> int:
    """Friends signed up through `member`: its own counter and its shards among `items`."""
    return int(member.referrals_signed_up or 0) + sum(
        int(i.count) for i in items if isinstance(i, SignupCount) and i.pk == member.pk)


def with_signups(member_id: str, consistent: bool = False) -> tuple[Member | None, int]:
    """The member and its friends signed up, in one Query (the shards sort after the profile)."""
    items = list(MainItem.query(member_pk(member_id), MainItem.sk.startswith(PROFILE), consistent_read=consistent))
    member = next((i for i in items if isinstance(i, Member)), None)
    return member, (signed_up(member, items) if member is not None else 0)
