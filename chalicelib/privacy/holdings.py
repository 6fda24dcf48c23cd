"""Everything stored on one member, found by key or index (never a Scan): the one reader that
both the export and the erasure use, so what is erased is what was exported.

Reads, for a member with M items in their partition, C codes, L links, O orders and P red-packet
claims: one paged Query of the partition (pk=M#<member>: profile, codes pointers, ledger,
notes, timeline, lots, check-ins…), Query gsi1 IDS#, CODES#, LINKS# and ORDERS#, one GetItem each
for their fraud flag and the click that brought them, one Query per order for refunds and one
GetItem per red-packet claim (its key comes from the ledger entry written with it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..facts.models import Order, Refund
from ..fraud.models import FraudFlag
from ..members.models import Identity, Member, member_pk
from ..referrals.models import Click, Code, Link
from ..store.base import MainItem
from .inventory import type_name


@dataclass
class Holdings:
    member: Member
    partition: list[MainItem] = field(default_factory=list)  # every item under pk=M#<member>, profile included
    identities: list[Identity] = field(default_factory=list)
    codes: list[Code] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    fraud_flag: FraudFlag | None = None
    click: Click | None = None
    packet_claims: list[MainItem] = field(default_factory=list)

    def of_type(self, name: str) -> list[MainItem]:
        return [item for item in self.partition if type_name(item) == name]

    def by_type(self) -> dict[str, list[Any]]:
        """Every item, grouped by its stored type (the inventory's names)."""
        groups: dict[str, list[Any]] = {}
        singles = [self.fraud_flag, self.click]
        for item in [*self.partition, *self.identities, *self.codes, *self.links, *self.orders, *self.refunds,
                     *self.packet_claims, *(i for i in singles if i is not None)]:
            groups.setdefault(type_name(item), []).append(item)
        return groups


def _get(model: type, key: tuple[str, str]) -> Any:
    try:
        return model.get(*key, consistent_read=True)
    except model.DoesNotExist:
        return None


def collect(member: Member) -> Holdings:
    from ..engagement.red_packets import PacketClaim

    member_id = member.member_id
    held = Holdings(member)
    held.partition = list(MainItem.query(member_pk(member_id), consistent_read=True))
    held.identities = list(Identity.by_gsi1.query(f"IDS#{member_id}"))
    # An index entry of a code claimed since by someone else is not theirs: the item says.
    held.codes = [c for c in Code.by_gsi1.query(f"CODES#{member_id}") if c.member_id == member_id]
    held.links = list(Link.by_gsi1.query(f"LINKS#{member_id}"))
    held.orders = list(Order.by_gsi1.query(f"ORDERS#{member_id}"))
    held.refunds = [r for order in held.orders
                    for r in Refund.query(order.pk, Refund.sk.startswith("REFUND#"), consistent_read=True)]
    held.fraud_flag = _get(FraudFlag, FraudFlag.key(member_id))
    held.click = _get(Click, Click.key(member.referral_click_id)) if member.referral_click_id else None
    packets = {entry.source_id for entry in held.of_type("ledger_entry") if entry.rule == "red_packet"}
    held.packet_claims = [claim for claim in (_get(PacketClaim, PacketClaim.key(p, member_id)) for p in sorted(packets))
                          if claim is not None]
    return held
