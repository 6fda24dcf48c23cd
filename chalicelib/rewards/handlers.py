"""Stream handlers that turn facts into ledger entries.

Each handler reads the current state it needs (not only the record's image: items of one
transaction arrive as separate records, in any order across keys) and pays through
`ledger.award`, whose deterministic entry ids make every replay a no-op.
"""
from __future__ import annotations

from ..campaigns import service as campaigns
from ..facts.models import Order
from ..fraud.models import FraudFlag
from ..members.models import Member
from ..referrals import graph
from ..streams import Change, on_change
from . import ledger, rules
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
    if change.event == "INSERT" and new.referrer_id:
        for grant in rules.signup_awards(_referral_rules(new), new.member_id):
            ledger.award(grant, new.referral_campaign_id, _referral_rules(new), held=_held(new), at=new.bound_at)
    if change.event != "MODIFY" or old is None:
        return
    if old.converting_order_id != new.converting_order_id:
        _conversion_changed(new.member_id, old.converting_order_id, new.converting_order_id)
    before, after = int(old.referrals_converted or 0), int(new.referrals_converted or 0)
    if after > before:
        default_rules = campaigns.rules_of(campaigns.current_or_404(None))  # levels and milestones: the default campaign's
        for grant in rules.milestone_awards(default_rules, new.member_id, before, after):
            ledger.award(grant, campaigns.DEFAULT_ID, default_rules)


def _conversion_changed(referee_id: str, old_order: str | None, new_order: str | None) -> None:
    referee = Member.get(*Member.key(referee_id), consistent_read=True)
    if not referee.referrer_id:
        return
    if old_order:  # the conversion moved or was undone: its reward goes with it
        entry = ledger.find(referee.referrer_id, f"conversion.{old_order}")
        if entry is not None:
            ledger.reverse_to(entry.member_id, entry.entry_id, int(entry.amount))
    if new_order and referee.converting_order_id == new_order and referee.referral_status == "converted":
        rule_set = _referral_rules(referee)
        for grant in rules.conversion_awards(rule_set, referee.referrer_id, referee_id, new_order):
            ledger.award(grant, referee.referral_campaign_id, rule_set, held=_held(referee))


@on_change("main", "order")
def on_order_counted(change: Change) -> None:
    """Commission once the purchase is attributed (`counted` set by the attribution step)."""
    if change.event != "MODIFY" or not change.new.counted or (change.old and change.old.counted):
        return
    order = Order.get(*Order.key(change.new.order_id), consistent_read=True)
    referee = Member.get(*Member.key(order.member_id), consistent_read=True)
    if not referee.referrer_id or referee.referral_status != "converted":
        return
    if not graph.in_window(order.occurred_at, referee.bound_at, referee.window_ends_at):
        return
    referrer = Member.get(*Member.key(referee.referrer_id), consistent_read=True)
    rule_set = _referral_rules(referee)
    level_rules = campaigns.rules_of(campaigns.current_or_404(None))
    grants = rules.purchase_awards(rule_set if rule_set.advocate_levels else level_rules, order.order_id,
                                   int(order.amount_fen), referee.member_id, referrer.member_id,
                                   int(referrer.referrals_converted or 0), referee.grandparent_id)
    for grant in grants:
        entry = ledger.award(grant, referee.referral_campaign_id, rule_set, held=_held(referee))
        _catch_up_reversal(entry, order)


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
def on_flag_resolved(change: Change) -> None:
    """Approve releases the referral's held entries; reject voids them."""
    if change.event != "MODIFY" or change.new.status == "open" or (change.old and change.old.status != "open"):
        return
    flag: FraudFlag = change.new
    for hit in LedgerEntry.by_gsi1.query(f"HOLD#{flag.referee_id}"):
        entry = ledger.find(hit.member_id, hit.entry_id)
        if entry is None or not entry.hold:
            continue
        if flag.status == "rejected":
            ledger.reverse_to(entry.member_id, entry.entry_id, int(entry.amount))
            entry = ledger.find(entry.member_id, entry.entry_id)
        ledger.set_hold(entry, held=False)
