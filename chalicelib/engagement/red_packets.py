"""Red packets (拼手气红包): a sum split at random among the first `count` friends who claim.

Access patterns (main table):
- a packet: GetItem pk=PACKET#<packet_id>, sk=PACKET
- its claims (at most `count`, ≤ 100): Query pk=PACKET#<packet_id>, sk begins_with CLAIM#
- one claim per member: the claim item pk=PACKET#<packet_id>, sk=CLAIM#<member> is written only if absent
- a member's packets on a local day (the campaign rule's daily allowance): GetItem
  pk=M#<member>, sk=PACKETS#<campaign>#<yyyy-mm-dd>
- packets due for settlement: Query gsi2 gsi2pk=PACKETS_DUE, gsi2sk <= <now> (sparse: open packets only)

Money: creating a packet reserves its whole total against the campaign's money budget (409
`budget_exhausted` when it does not fit); a claim writes the claimer's coupon entry (unit
`coupon_fen`, rule `red_packet`) in the same transaction as the packet's count, so the budget is
never counted twice; at expiry the sweep returns the unclaimed rest to the budget, exactly once.

The split is "double mean" on what is left: the k-th claim gets a uniform share in
[1, 2 × left_fen / left_count − 1] (the last claim takes the rest), drawn from a generator seeded
by the packet's seed and k. So the packet item holds counters only, every share is ≥ 1 fen, the
shares sum to the total, and a claim is one transaction guarded by `claimed == k` (a concurrent
claim that took k first makes this one draw k + 1 instead).
"""
from __future__ import annotations

import random
import secrets
from datetime import timedelta
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import TransactWriteError

from ..campaigns import service as campaigns
from ..core import clock
from ..core.errors import Conflict, NotFound, RateLimited, Unprocessable
from ..core.masking import mask_name
from ..i18n import t
from ..members.models import member_pk
from ..referrals import codes
from ..referrals.links import landing
from ..rewards import budget
from ..rewards.models import LedgerEntry
from ..store.base import MainItem, cancelled_by_condition, transaction
from .rules import local_day
from .running import member_or_401, running_campaign

DUE_PK = "PACKETS_DUE"
CLAIM_RETRIES = 64  # concurrent claims race on the count; each loser draws the next share
SWEEP_PAGE = 100


class RedPacket(MainItem, discriminator="red_packet"):
    packet_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    sender_id = UnicodeAttribute(null=True)  # None: an ops packet
    sender_code = UnicodeAttribute(null=True)  # the share URL carries it: a first-time friend binds to the sender
    landing_url = UnicodeAttribute()
    total_fen = NumberAttribute()
    count = NumberAttribute()
    claimed = NumberAttribute(default=0)
    claimed_fen = NumberAttribute(default=0)
    seed = UnicodeAttribute()
    status = UnicodeAttribute(default="open")  # open | settled
    returned_fen = NumberAttribute(null=True)
    expires_at = UnicodeAttribute()
    created_at = UnicodeAttribute()

    @classmethod
    def key(cls, packet_id: str) -> tuple[str, str]:
        return f"PACKET#{packet_id}", "PACKET"


class PacketClaim(MainItem, discriminator="red_packet_claim"):
    packet_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    display_name = UnicodeAttribute(default="")
    amount_fen = NumberAttribute()
    index = NumberAttribute()
    at = UnicodeAttribute()

    @classmethod
    def key(cls, packet_id: str, member_id: str) -> tuple[str, str]:
        return f"PACKET#{packet_id}", f"CLAIM#{member_id}"


class PacketAllowance(MainItem, discriminator="red_packet_allowance"):
    sent = NumberAttribute(default=0)

    @classmethod
    def key(cls, member_id: str, campaign_id: str, day: str) -> tuple[str, str]:
        return member_pk(member_id), f"PACKETS#{campaign_id}#{day}"


def share_of(seed: str, index: int, left_fen: int, left_count: int) -> int:
    """The `index`-th claim's share of what is left (pure: the same inputs, the same share).

    >>> shares, left = [], 1000
    >>> for k in range(10):
    ...     shares.append(share_of("s", k, left, 10 - k)); left -= shares[-1]
    >>> sum(shares), min(shares) >= 1
    (1000, True)
    """
    if left_count <= 1:
        return left_fen
    ceiling = min(left_fen - (left_count - 1), max(1, 2 * left_fen // left_count - 1))
    return random.Random(f"{seed}:{index}").randint(1, ceiling)


def render(packet: RedPacket, claims: list[PacketClaim] | None = None) -> dict[str, Any]:
    answer = {"packet_id": packet.packet_id, "campaign_id": packet.campaign_id, "total_fen": int(packet.total_fen),
              "count": int(packet.count), "claimed": int(packet.claimed), "claimed_fen": int(packet.claimed_fen),
              "expires_at": packet.expires_at, "status": packet.status,
              "share_url": landing(packet.landing_url, None, ref=packet.sender_code, packet=packet.packet_id)}
    if claims is not None:
        answer["claims"] = [{"display_name": mask_name(c.display_name), "amount_fen": int(c.amount_fen)}
                            for c in sorted(claims, key=lambda c: int(c.index))]
    return answer


def _reserve(tx: Any, campaign_id: str, packet_id: str, budget_fen: int | None, total: int) -> None:
    """Take the packet's whole total from the campaign's money budget (sharded, rewards/budget.py):
    read the shards, place it, each shard conditioned on its slice. Raises Conflict when it does
    not fit; a shard taken meanwhile cancels the transaction instead (also `budget_exhausted`)."""
    limit, spent = budget.ready(campaign_id, budget.FEN, budget.in_force(campaign_id, budget.FEN, budget_fen))
    if limit is None or spent is None:
        budget.adjust(tx, campaign_id, packet_id, total, budget.FEN)
        return
    if total > limit.amount - spent.total or not budget.charge(tx, campaign_id, packet_id, total, budget.FEN,
                                                               limit, spent):
        raise Conflict(t("the campaign's budget cannot fund this packet"), code="budget_exhausted")


def create(campaign_id: str | None, total_fen: int, count: int, expires_at: str, sender_id: str | None,
           allowance: PacketAllowance | None = None, per_day: int | None = None) -> dict[str, Any]:
    campaign = running_campaign(campaign_id)
    if total_fen < count:
        raise Unprocessable(t("every share is at least 1 fen: total_fen must be at least count"),
                            code="total_below_count")
    if expires_at <= clock.now_iso():
        raise Unprocessable(t("expires_at must lie in the future"), code="expires_in_past")
    rule_set = campaigns.rules_of(campaign)
    packet_id = secrets.token_hex(10)
    sender_code = codes.code_for(sender_id, campaign.campaign_id).code if sender_id else None
    packet = RedPacket(*RedPacket.key(packet_id), packet_id=packet_id, campaign_id=campaign.campaign_id,
                       sender_id=sender_id, sender_code=sender_code, landing_url=campaign.landing_url, total_fen=total_fen, count=count, claimed=0, claimed_fen=0,
                       seed=secrets.token_hex(8), status="open", expires_at=expires_at, created_at=clock.now_iso(),
                       gsi2pk=DUE_PK, gsi2sk=f"{expires_at}#{packet_id}")
    if rule_set.money_budget_fen is not None and total_fen > rule_set.money_budget_fen:
        raise Conflict(t("the campaign's budget cannot fund this packet"), code="budget_exhausted")
    try:
        with transaction() as tx:
            tx.save(packet, condition=RedPacket.pk.does_not_exist())
            if allowance is not None:  # before the budget's shards: its reason is the second
                tx.update(allowance, actions=[PacketAllowance.sent.add(1), PacketAllowance.type.set(PacketAllowance),
                                              PacketAllowance.expires_at.set(clock.epoch() + 3 * 86400)],
                          condition=PacketAllowance.sent.does_not_exist() | (PacketAllowance.sent < per_day))
            _reserve(tx, campaign.campaign_id, packet_id, rule_set.money_budget_fen, total_fen)
    except TransactWriteError as exc:
        if not cancelled_by_condition(exc):
            raise
        reasons = getattr(exc, "cancellation_reasons", None) or []
        if allowance is not None and len(reasons) > 1 and getattr(reasons[1], "code", None) == "ConditionalCheckFailed":
            raise RateLimited(t("{per_day} red packet(s) a day", per_day=per_day),
                              code="red_packet_limit_reached") from None
        raise Conflict(t("the campaign's budget cannot fund this packet"), code="budget_exhausted") from None
    return render(packet, [])


def create_for_member(member_id: str, campaign_id: str | None) -> dict[str, Any]:
    """A packet funded by the campaign's red-packet rule, a few a day per member."""
    member_or_401(member_id)
    campaign = running_campaign(campaign_id)
    rule_set = campaigns.rules_of(campaign)
    if not rule_set.red_packet_total_fen:
        raise Conflict(t("this campaign offers no member red packets"), code="red_packets_not_offered")
    now = clock.now()
    allowance = PacketAllowance(*PacketAllowance.key(member_id, campaign.campaign_id,
                                                     local_day(now, rule_set.time_zone)))
    expires_at = clock.iso(now + timedelta(hours=rule_set.red_packet_hours))
    return create(campaign.campaign_id, rule_set.red_packet_total_fen, rule_set.red_packet_count, expires_at,
                  member_id, allowance=allowance, per_day=rule_set.red_packets_per_member_per_day)


def _packet(packet_id: str) -> RedPacket:
    try:
        return RedPacket.get(*RedPacket.key(packet_id), consistent_read=True)
    except RedPacket.DoesNotExist:
        raise NotFound(t("no such red packet"), code="packet_not_found") from None


def _claim_of(packet_id: str, member_id: str) -> PacketClaim | None:
    try:
        return PacketClaim.get(*PacketClaim.key(packet_id, member_id), consistent_read=True)
    except PacketClaim.DoesNotExist:
        return None


def public_view(packet_id: str) -> dict[str, Any]:
    packet = _packet(packet_id)
    claims = list(PacketClaim.query(packet.pk, PacketClaim.sk.startswith("CLAIM#"), consistent_read=True))
    return render(packet, claims)


def claim(packet_id: str, member_id: str) -> dict[str, Any]:
    """One claim per member per packet, never the sender's; 409 once all are claimed or expired."""
    claimer = member_or_401(member_id)
    for _ in range(CLAIM_RETRIES):
        packet = _packet(packet_id)
        earlier = _claim_of(packet_id, member_id)
        if earlier is not None:
            return {"packet_id": packet_id, "amount_fen": int(earlier.amount_fen), "already_claimed": True}
        if packet.sender_id == member_id:
            raise Conflict(t("a sender cannot claim their own packet"), code="own_packet")
        now = clock.now_iso()
        if packet.status != "open" or packet.expires_at <= now:
            raise Conflict(t("this red packet has expired"), code="packet_expired")
        index = int(packet.claimed)
        if index >= int(packet.count):
            raise Conflict(t("every share of this red packet is claimed"), code="packet_empty")
        left_fen = int(packet.total_fen) - int(packet.claimed_fen)
        amount = share_of(packet.seed, index, left_fen, int(packet.count) - index)
        claim_item = PacketClaim(*PacketClaim.key(packet_id, member_id), packet_id=packet_id, member_id=member_id,
                                 display_name=claimer.display_name or "", amount_fen=amount, index=index, at=now)
        entry_id = f"red_packet.{packet_id}"
        coupon = LedgerEntry(*LedgerEntry.key(member_id, entry_id), entry_id=entry_id, member_id=member_id,
                             rule="red_packet", unit="coupon_fen", amount=amount, status="available", bucket=None,
                             reason="red packet", source_id=packet_id, campaign_id=packet.campaign_id,
                             created_at=now, available_at=now, lsi1sk=f"LEDGER#{now}#{entry_id}")
        try:
            with transaction() as tx:
                tx.save(claim_item, condition=PacketClaim.pk.does_not_exist())
                tx.save(coupon, condition=LedgerEntry.pk.does_not_exist())
                tx.update(packet, actions=[RedPacket.claimed.add(1), RedPacket.claimed_fen.add(amount)],
                          condition=(RedPacket.claimed == index) & (RedPacket.status == "open")
                          & (RedPacket.expires_at > now))
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
            continue  # another claim took this share (or this member's claim landed): judge again
        return {"packet_id": packet_id, "amount_fen": amount, "already_claimed": False}
    raise Conflict(t("too many friends are claiming at once; try again"), code="packet_busy")


def settle_due(limit: int = SWEEP_PAGE) -> int:
    """Return the unclaimed rest of every expired open packet to its campaign's budget, once:
    the packet's status flips to `settled` in the same transaction (a duplicated sweep finds it
    settled, or no longer in the sparse due index)."""
    settled = 0
    now = clock.now_iso()
    for hit in RedPacket.by_gsi2.query(DUE_PK, RedPacket.gsi2sk <= f"{now}#~", limit=limit):
        packet = RedPacket.get(hit.pk, hit.sk, consistent_read=True)
        if packet.status != "open" or packet.expires_at > now:
            continue
        rest = int(packet.total_fen) - int(packet.claimed_fen)
        try:
            with transaction() as tx:
                tx.update(packet, actions=[RedPacket.status.set("settled"), RedPacket.returned_fen.set(rest),
                                           RedPacket.gsi2pk.remove(), RedPacket.gsi2sk.remove()],
                          condition=(RedPacket.status == "open") & (RedPacket.claimed_fen == int(packet.claimed_fen)))
                budget.adjust(tx, packet.campaign_id, packet.packet_id, -rest, budget.FEN)
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
            continue  # settled meanwhile, or a last claim landed: the next sweep sees it as it is
        settled += 1
    return settled
