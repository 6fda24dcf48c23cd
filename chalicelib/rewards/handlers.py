"""Stream handlers that turn facts into ledger entries.

Commission rates come from the conversion's rank in time (ranks.py), and which orders earn one
from the facts alone (`rules.earns_commission`); fraud flags hold, release or void every entry
of their referral. Each handler reads the current state it needs (not only the record's image: items of one
transaction arrive as separate records, in any order across keys) and pays through
`ledger.award`, whose deterministic entry ids make every replay a no-op.
"""
from __future__ import annotations

from ..campaigns import service as campaigns
from ..facts.models import Order
from ..fraud.models import FraudFlag
from ..members.models import Member, member_pk
from ..referrals.models import Conversion
from ..streams import Change, on_change
from . import ledger, ranks, rules
from .models import LedgerEntry


def _referral_rules(member: Member):
    return campaigns.rules_at(member.referral_campaign_id, member.referral_campaign_version)


def _held(member: Member) -> bool:
    return member.referral_hold == "fraud_review"


@on_change("main", "member")
def on_member(change: Change) -> None:
    new, old = change.new, change.old
    if new is None:
        return
    if change.event == "INSERT" and new.referrer_id and not new.quiet_import:
        if _held(new) and _voided(new.member_id):  # flagged at sign-up and already rejected
            return
        for grant in rules.signup_awards(_referral_rules(new), new.member_id):
            ledger.award(grant, new.referral_campaign_id, _referral_rules(new), held=_held(new), at=new.bound_at)
    if change.event != "MODIFY" or old is None:
        return
    if old.converting_order_id != new.converting_order_id:
        _conversion_changed(new.member_id, old.converting_order_id, new.converting_order_id)


def _voided(member_id: str) -> bool:
    return Member.get(*Member.key(member_id), consistent_read=True).referral_status == "void"


def _converts_no_more(referee_id: str) -> bool:
    return Member.get(*Member.key(referee_id), consistent_read=True).referral_status != "converted"


@on_change("main", "conversion")
def on_conversion(change: Change) -> None:
    """A conversion appeared, moved, was undone, or got a new rate: settle its own rate and
    commission, re-rank the ones after it, and the advocate's milestones."""
    mark = change.item
    if change.new is not None:
        settled = ranks.settle(Conversion.key(mark.referrer_id, mark.converted_at, mark.referee_id))
        if settled is not None:
            ranks.restate_commissions(settled)
    elif _converts_no_more(mark.referee_id):  # undone, not moved (a move writes the new one)
        ranks.restate_commissions(mark, undone=True)
    if change.event in ("INSERT", "REMOVE"):
        ranks.settle_milestones(mark.referrer_id, ranks.rerank_after(mark))


def _conversion_changed(referee_id: str, old_order: str | None, new_order: str | None) -> None:
    """The conversion reward follows the converting order as it stands now (a redelivered older
    record changes nothing): the order that lost it is reversed, the one holding it stands — paid,
    or restated when it held the conversion before (moved away and back by a refund)."""
    referee = Member.get(*Member.key(referee_id), consistent_read=True)
    if not referee.referrer_id:
        return
    current = referee.converting_order_id if referee.referral_status == "converted" else None
    if old_order and old_order != current:
        entry = ledger.find(referee.referrer_id, f"conversion.{old_order}")
        if entry is not None:
            ledger.reverse_to(entry.member_id, entry.entry_id, int(entry.amount))
    if new_order and new_order == current:
        rule_set = _referral_rules(referee)
        for grant in rules.conversion_awards(rule_set, referee.referrer_id, referee_id, new_order):
            entry = ledger.award(grant, referee.referral_campaign_id, rule_set, held=_held(referee))
            if entry.reversed_amount:  # written before, when this order held the conversion
                ledger.restate(grant.member_id, grant.entry_id, grant.amount, 0, rule_set, held=_held(referee),
                               entry=entry)


@on_change("main", "order")
def on_order_counted(change: Change) -> None:
    """Commission once the purchase is attributed (`counted` set by the attribution step), if it
    earns one (`rules.earns_commission`: at or after the converting order in fact order, in the
    window), at the rate of the referee's conversion rank; written only while the conversion it
    was decided on (its order and rate) still stands."""
    if change.event != "MODIFY" or not change.new.counted or (change.old and change.old.counted):
        return
    order = Order.get(*Order.key(change.new.order_id), consistent_read=True)
    if order.history:
        return  # imported history earns nothing (unless imported with apply_rewards)
    for _ in range(ledger.MAX_RETRIES):
        referee = Member.get(*Member.key(order.member_id), consistent_read=True)
        if not referee.referrer_id or referee.referral_status != "converted":
            return
        mark = ranks.settle(Conversion.key(referee.referrer_id, referee.converted_at, referee.member_id))
        if mark is None:
            continue  # the conversion moved or was undone after the read: read the referral again
        if not rules.earns_commission(order.occurred_at, order.order_id, ranks.converting(mark), referee.bound_at,
                                      referee.window_ends_at):
            return  # dated before the conversion (or outside the window): a later move restates it
        rule_set = _referral_rules(referee)
        level = (mark.level, int(mark.commission_bps or 0))
        grants = rules.purchase_awards(rule_set, order.order_id, int(order.amount_fen), referee.member_id,
                                       referee.referrer_id, level, referee.grandparent_id)
        # The conversion's restatement (ranks.restate_commissions) often paid them first: one
        # consistent read of both entries is cheaper than a blind award transaction that the
        # entry's condition refuses (billed in full, every item doubled).
        paid = ledger.find_many([(grant.member_id, grant.entry_id) for grant in grants])
        try:
            for grant in grants:
                entry = paid.get((grant.member_id, grant.entry_id))
                if entry is None:
                    entry = ledger.award(grant, referee.referral_campaign_id, rule_set, held=_held(referee),
                                         guard=ranks.guard_of(mark))
                else:
                    ledger.follow_referral_hold(entry)  # as award does for an entry found written
                _catch_up_reversal(entry, order)
            return
        except ledger.Stale:
            continue  # re-ranked or moved while paying: decide again
    raise RuntimeError(f"commission on {order.order_id} kept being re-ranked; the stream will redeliver")


def _catch_up_reversal(entry: LedgerEntry, order: Order) -> None:
    """A refund may have been applied before this award existed: reverse its share now."""
    if int(order.refunded_fen or 0):
        ledger.reverse_to(entry.member_id, entry.entry_id,
                          rules.reversal_target(int(entry.amount), int(order.refunded_fen), int(order.amount_fen)),
                          entry=entry)


@on_change("main", "refund")
def on_refund_counted(change: Change) -> None:
    """Reverse order-based awards in proportion to what has been refunded so far."""
    if change.event != "MODIFY" or not change.new.counted or (change.old and change.old.counted):
        return
    order = Order.get(*Order.key(change.new.order_id), consistent_read=True)
    referee = Member.get(*Member.key(order.member_id), consistent_read=True)
    for member_id, rule in ((referee.referrer_id, "commission"), (referee.grandparent_id, "second_level")):
        if member_id:
            entry = ledger.find(member_id, f"{rule}.{order.order_id}")
            if entry is not None:
                _catch_up_reversal(entry, order)


@on_change("main", "fraud_flag")
def on_flag(change: Change) -> None:
    """While a referral's flag is open every entry tied to it is held (pending ones stay pending
    past the release sweep); approving releases them, rejecting reverses them all, available
    ones too. Milestones follow the conversion count (see ranks.py), so a rejection that takes
    the count below one takes it back there."""
    flag: FraudFlag = change.new
    if flag is None:
        return
    if flag.status == "open":
        for entry in _referral_entries(flag.referee_id):
            ledger.set_hold(entry, held=True)
        return
    if change.old is not None and change.old.status != "open":
        return
    for entry in _referral_entries(flag.referee_id):
        if flag.status == "rejected" and entry.rule != "milestone":
            ledger.reverse_to(entry.member_id, entry.entry_id, int(entry.amount), entry=entry, voided="fraud_rejected")
            entry = ledger.find(entry.member_id, entry.entry_id)
        ledger.set_hold(entry, held=False)


class OrdersIndexLag(Exception):
    """The referee's orders index does not yet show every order the member has counted: the
    stream delivers the record again, by when it does."""


def _referral_entries(referee_id: str) -> list[LedgerEntry]:
    """Every ledger entry tied to a referral, by its key (entry ids follow from the facts), read
    strongly consistent: the referee's welcome points and coupon; on each of the referee's
    orders the referrer's conversion and commission and the grandparent's share; the referrer's
    milestones tied to this friend (a milestone moves between friends: those with its tie). No
    index of entries by referral: one written just before its flag resolves is found all the same."""
    referee = Member.find(referee_id, consistent=True)
    if referee is None:
        return []
    keys = [LedgerEntry.key(referee_id, f"{rule}.{referee_id}") for rule in ("welcome", "coupon")]
    milestones: list[LedgerEntry] = []
    if referee.referrer_id:
        indexed = list(Order.by_gsi1.query(f"ORDERS#{referee_id}", attributes_to_get=["order_id", "counted"]))
        # Counted copies against the member's count (as lifecycle.facts_of): an uncounted order's
        # copy must not stand in for a counted one whose copy is late
        if sum(1 for hit in indexed if hit.counted) < int(referee.orders or 0):
            raise OrdersIndexLag(referee_id)
        for order_id in (hit.order_id for hit in indexed):
            keys += [LedgerEntry.key(referee.referrer_id, f"{rule}.{order_id}") for rule in ("conversion", "commission")]
            if referee.grandparent_id:
                keys.append(LedgerEntry.key(referee.grandparent_id, f"second_level.{order_id}"))
        milestones = list(LedgerEntry.query(member_pk(referee.referrer_id), LedgerEntry.sk.startswith("LEDGER#milestone."),
                                            consistent_read=True))
    found = list(LedgerEntry.batch_get(keys, consistent_read=True)) + milestones
    return sorted((e for e in found if e.referee_id == referee_id), key=lambda e: (e.member_id, e.entry_id))
