"""Who gets credit for what, exactly once.

- Sign-up: `plan()` reads the code and click (with the identity, in one call), campaign,
  referrer and the code's hourly sign-up count; `Binding.contribute()` adds the binding to the
  transaction that creates the member, so a member is bound once, at creation, or never (see
  graph.py for why that rules out cycles).
- Purchase and refund facts are attributed by stream handlers (`apply_purchase`,
  `apply_refund`). Each one is tied to a conditional write on the fact itself (`counted`), so
  redelivery changes nothing, and converting checks the order's refunded amount it read, so a
  refund racing the purchase is never missed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..campaigns import service as campaigns
from ..campaigns.models import Campaign
from ..core import clock
from ..core.logs import get_logger
from ..core.masking import mask_name
from ..facts.models import Order, Refund, SignupWindow
from ..fraud.models import FraudFlag
from ..members.models import DownlineEntry, Member, SignupCount, with_signups
from ..store.base import cancelled_by_condition, get_many, transaction
from ..streams import Change, on_change
from . import codes, graph
from .models import Click, Code, Conversion
from .rules import normalize_code

log = get_logger("attribution")
MAX_RETRIES = 5


def person(member: Member | None, downline: int = 0) -> graph.Person | None:
    if member is None:
        return None
    return graph.Person(member.member_id, member.referrer_id, member.grandparent_id, downline, member.device_id,
                        member.phone_hash)


def not_bound(reason: str, **extra: Any) -> dict[str, Any]:
    return {"status": "not_bound", "reason": reason, **extra}


@dataclass
class Binding:
    referrer: Member
    code: Code
    campaign: Campaign
    click_id: str | None
    fraud: list[str]
    hour: str
    channel: str = "code"  # the linked click's channel; "code" when the code was typed or pasted

    def contribute(self, member: Member, tx: Any) -> None:
        """Bind the new `member` inside the transaction that creates it."""
        rules = campaigns.rules_of(self.campaign)
        at = member.created_at
        member.referrer_id, member.grandparent_id = graph.ancestors(person(self.referrer))
        member.referral_campaign_id = self.campaign.campaign_id
        member.referral_campaign_version = int(self.campaign.version)
        member.referral_code = self.code.code
        member.referral_click_id = self.click_id
        member.referral_channel = self.channel
        member.bound_at = at
        member.window_ends_at = graph.window_end(at, rules.attribution_window_days)
        member.referral_status = "signed_up"
        member.referral_hold = "fraud_review" if self.fraud else None
        # the downline index entry is its own small item: the member's later updates write none
        tx.save(DownlineEntry.new(member.member_id, self.referrer.member_id, at))
        # The referee condition (does not exist yet) is on the member put: counters move only
        # together with it. The referrer's count is sharded (a viral code's sign-ups would meet
        # on one item); its member item is not written (members are never deleted, only erased).
        tx.update(SignupCount.of(self.referrer.member_id, member.member_id), actions=SignupCount.actions(1))
        window = SignupWindow(*SignupWindow.key(self.code.code, self.hour, SignupWindow.shard_of(member.member_id)))
        # The update may create the item: it names its type, or a batch read could not tell it.
        tx.update(window, actions=[SignupWindow.signups.add(1), SignupWindow.type.set(SignupWindow),
                                   SignupWindow.expires_at.set(clock.epoch() + 7 * 86400)])
        if self.fraud:
            tx.save(new_flag(member.member_id, self.referrer.member_id, self.code.code, self.fraud, at),
                    condition=FraudFlag.pk.does_not_exist())

    def outcome(self) -> dict[str, Any]:
        return {"status": "bound", "campaign_id": self.campaign.campaign_id, "code": self.code.code,
                "referrer": {"display_name": mask_name(self.referrer.display_name)},
                "click_linked": self.click_id is not None, "held_for_review": bool(self.fraud)}


def new_flag(referee_id: str, referrer_id: str, code: str | None, reasons: list[str], at: str) -> FraudFlag:
    return FraudFlag(*FraudFlag.key(referee_id), flag_id=referee_id, referee_id=referee_id, referrer_id=referrer_id,
                     code=code, reasons=set(reasons), status="open", created_at=at,
                     **FraudFlag.index_keys("open", at), **FraudFlag.referrer_keys(referrer_id, referee_id, at))


def prefetch(referral: Any, extra: list[tuple[type, tuple[str, str]]] = ()) -> dict[tuple[type, tuple[str, str]], Any]:
    """The referral's code and click (and `extra` items), read in one BatchGetItem."""
    wanted = list(extra)
    canonical = normalize_code(referral.code)
    if canonical is not None:
        wanted.append((Code, Code.key(canonical)))
    if referral.click_id:
        wanted.append((Click, Click.key(referral.click_id)))
    return get_many(wanted) if wanted else {}


def plan(referee_id: str, referral: Any, at: str, device_id: str | None = None,
         phone_hash: str | None = None, prefetched: dict | None = None) -> Binding | dict[str, Any]:
    """Everything a binding needs, read up front; or the refusal to show the caller.
    Reads: the code and the click (`prefetch`, one BatchGetItem, unless the caller read them
    already); the referrer (GetItem) and this hour's sign-up window (one Query over its shards).
    The campaign comes from the short cache."""
    if prefetched is None:
        prefetched = prefetch(referral)
    canonical = normalize_code(referral.code)
    code = prefetched.get((Code, Code.key(canonical))) if canonical is not None else None
    if code is None or code.status != "active":
        return not_bound("unknown_code")
    campaign = campaigns.current(code.campaign_id)
    if campaign is None or not campaigns.is_running(campaign, at):
        return not_bound("campaign_not_running")
    hour = at[:13]
    referrer = Member.find(code.member_id)
    if referrer is None:
        return not_bound("unknown_code")
    refusal = graph.refusal(graph.Person(referee_id), person(referrer), is_new=True)
    if refusal:
        return not_bound(refusal)
    click_id, channel = None, "code"
    click = prefetched.get((Click, Click.key(referral.click_id))) if referral.click_id else None
    if click is not None and graph.click_usable(click.code, click.at, code.code, at):
        click_id, channel = click.click_id, click.channel or "other"
    seen = SignupWindow.count(code.code, hour)
    rules = campaigns.rules_of(campaign)
    fraud = graph.fraud_reasons(device_id, phone_hash, person(referrer), seen + 1, rules.signups_per_hour_alert)
    return Binding(referrer, code, campaign, click_id, fraud, hour, channel)


def refusal_for_existing(member: Member, referral: Any, prefetched: dict | None = None) -> dict[str, Any] | None:
    """The answer when a sign-up with a referral names a member who already exists."""
    if referral is None:
        return None
    if member.referrer_id:
        return not_bound("already_referred")
    canonical = normalize_code(referral.code)
    if prefetched is not None and canonical is not None:
        code = prefetched.get((Code, Code.key(canonical)))
    else:
        code = codes.resolve(referral.code)
    if code is None:
        return not_bound("unknown_code")
    referrer = Member.find(code.member_id)
    if referrer is None:
        return not_bound("unknown_code")
    reason = graph.refusal(person(member), person(referrer), is_new=False)
    if reason == "existing_member":  # unless friends of their own would make it a cycle: read their count
        reason = graph.refusal(person(member, with_signups(member.member_id)[1]), person(referrer), is_new=False)
    return not_bound(reason or "existing_member")


# -- purchases and refunds (stream handlers) -------------------------------------------------

@on_change("main", "order")
def on_order(change: Change) -> None:
    if change.event == "INSERT":
        apply_purchase(change.new.order_id)


@on_change("main", "refund")
def on_refund(change: Change) -> None:
    if change.event == "INSERT":
        apply_refund(change.new.order_id, change.new.refund_id)


def _retrying(apply_once) -> None:
    """Run an optimistic read-decide-write step until its conditions hold or it is done."""
    for _ in range(MAX_RETRIES):
        try:
            apply_once()
            return
        except TransactWriteError as exc:
            if not cancelled_by_condition(exc):
                raise
    raise RuntimeError("attribution kept conflicting; the stream will redeliver")


def apply_purchase(order_id: str) -> None:
    def once() -> None:
        order = Order.get(*Order.key(order_id), consistent_read=True)
        if order.counted:
            return  # already applied: a redelivery
        member = Member.get(*Member.key(order.member_id), consistent_read=True)
        member_actions = [Member.orders.add(1), Member.gmv_fen.add(int(order.amount_fen)),
                          Member.first_purchase_at.set(Member.first_purchase_at | order.occurred_at)]
        if not member.last_purchase_at or order.occurred_at > member.last_purchase_at:
            member_actions.append(Member.last_purchase_at.set(order.occurred_at))
        # Decided on the referral status read here: if it changes meanwhile, start again.
        member_condition = (Member.referral_status == member.referral_status) if member.referral_status else None
        converting = _converts(member, order)
        earlier = not converting and _converts_earlier(member, order)
        with transaction() as tx:
            tx.update(order, actions=[Order.counted.set(True)],
                      condition=Order.counted.does_not_exist() & (Order.refunded_fen == order.refunded_fen))
            if converting:
                member_actions += [Member.referral_status.set("converted"), Member.converted_at.set(order.occurred_at),
                                   Member.converting_order_id.set(order.order_id)]
                tx.update(Member(*Member.key(member.referrer_id)), actions=[Member.referrals_converted.add(1)],
                          condition=Member.pk.exists())
                tx.save(conversion(member, order), condition=Conversion.pk.does_not_exist())
                if int(order.refunded_fen) > 0:  # refunded before we even attributed it
                    member_actions += _flag_quick_refund(tx, member, order.occurred_at)
            if earlier:  # the referee's earliest qualifying order converts, whichever was handled first
                moved, gone = conversion(member, order), conversion(member, order, at=member.converted_at)
                if gone.sk != moved.sk:
                    tx.delete(gone)
                tx.save(moved)
                member_actions += [Member.converted_at.set(order.occurred_at),
                                   Member.converting_order_id.set(order.order_id)]
                member_condition = Member.converting_order_id == member.converting_order_id
            tx.update(member, actions=member_actions, condition=member_condition)

    _retrying(once)


def _converts(member: Member, order: Order, already_converted: bool = False) -> bool:
    expected = "converted" if already_converted else "signed_up"
    if order.history:  # imported history never converts a referral (imports: no rewards unless asked)
        return False
    if not member.referrer_id or member.referral_status != expected:
        return False
    rules = campaigns.rules_at(member.referral_campaign_id, member.referral_campaign_version)
    net = int(order.amount_fen) - int(order.refunded_fen)
    return graph.converts(net, order.occurred_at, rules.min_purchase_fen, member.bound_at, member.window_ends_at)


def _converts_earlier(member: Member, order: Order) -> bool:
    """A qualifying order dated before the one that converted the referral (handled later)."""
    return (member.referral_status == "converted" and bool(member.converted_at)
            and (order.occurred_at, order.order_id) < (member.converted_at, member.converting_order_id or "")
            and _converts(member, order, already_converted=True))


def apply_refund(order_id: str, refund_id: str) -> None:
    def once() -> None:
        refund = Refund.get(*Refund.key(order_id, refund_id), consistent_read=True)
        if refund.counted:
            return
        order = Order.get(*Order.key(order_id), consistent_read=True)
        member = Member.get(*Member.key(order.member_id), consistent_read=True)
        member_actions = [Member.gmv_fen.add(-int(refund.amount_fen))]
        member_condition = None
        with transaction() as tx:
            tx.update(refund, actions=[Refund.counted.set(True)], condition=Refund.counted.does_not_exist())
            if member.converting_order_id == order.order_id:
                if graph.quick_refund(order.occurred_at, refund.occurred_at):
                    member_actions += _flag_quick_refund(tx, member, refund.occurred_at)
                if not _converts(member, order, already_converted=True):
                    member_actions += _reattribute(tx, member, order)
                    member_condition = Member.converting_order_id == order.order_id
            tx.update(member, actions=member_actions, condition=member_condition)

    _retrying(once)


def _reattribute(tx: Any, member: Member, refunded: Order) -> list[Any]:
    """The converting order no longer qualifies: hand the conversion to the member's earliest
    other qualifying order, or undo it. Returns the member's actions. Orders not yet applied
    are pinned by a condition, so a purchase applied meanwhile makes this step retry."""
    index_hits = Order.by_gsi1.query(f"ORDERS#{member.member_id}", attributes_to_get=["pk", "sk"])
    for hit in index_hits:
        if hit.pk == refunded.pk:
            continue
        order = Order.get(hit.pk, hit.sk, consistent_read=True)  # the index may lag
        if not order.counted:
            tx.condition_check(Order, hit.pk, hit.sk, condition=Order.counted.does_not_exist())
        elif _converts(member, order, already_converted=True):
            tx.condition_check(Order, hit.pk, hit.sk, condition=Order.refunded_fen == int(order.refunded_fen))
            moved, gone = conversion(member, order), conversion(member, refunded, at=member.converted_at)
            if gone.sk != moved.sk:  # same time, same referee: one item, overwritten
                tx.delete(gone)
            tx.save(moved)
            return [Member.converted_at.set(order.occurred_at), Member.converting_order_id.set(order.order_id)]
    tx.update(Member(*Member.key(member.referrer_id)), actions=[Member.referrals_converted.add(-1)],
              condition=Member.pk.exists())
    tx.delete(conversion(member, refunded, at=member.converted_at))
    return [Member.referral_status.set("signed_up"), Member.converted_at.remove(), Member.converting_order_id.remove()]


def conversion(member: Member, order: Order, at: str | None = None) -> Conversion:
    """The referrer's record of this referee's conversion (its rank decides the commission rate)."""
    converted_at = at or order.occurred_at
    return Conversion(*Conversion.key(member.referrer_id, converted_at, member.member_id),
                      referrer_id=member.referrer_id, referee_id=member.member_id, converted_at=converted_at,
                      order_id=order.order_id, campaign_id=member.referral_campaign_id,
                      campaign_version=member.referral_campaign_version)


def _flag_quick_refund(tx: Any, member: Member, at: str) -> list[Any]:
    """Open the referral's fraud flag (or add to it); returns the member's hold action. An
    approved flag opens again — a quick refund after the review is a new signal, and without it
    the referral would stay held with no flag ops could resolve. A rejected referral is void
    already: the reason is recorded, nothing is held. One read, on this rare path."""
    try:
        status = FraudFlag.get(*FraudFlag.key(member.member_id), consistent_read=True).status
    except FraudFlag.DoesNotExist:
        status = None
    flag = FraudFlag(*FraudFlag.key(member.member_id))
    reason = FraudFlag.reasons.add({"quick_refund"})
    if status == "rejected":
        tx.update(flag, actions=[reason], condition=FraudFlag.status == "rejected")
        return []
    keys = FraudFlag.index_keys("open", at)
    actions = [
        reason, FraudFlag.flag_id.set(member.member_id), FraudFlag.referee_id.set(member.member_id),
        FraudFlag.referrer_id.set(member.referrer_id), FraudFlag.code.set(FraudFlag.code | member.referral_code),
        FraudFlag.status.set("open"), FraudFlag.created_at.set(FraudFlag.created_at | at), FraudFlag.type.set(FraudFlag),
        *FraudFlag.referrer_key_actions(member.referrer_id, member.member_id, at, replace=True),
    ]
    if status == "approved":  # listed with the open flags again, from now; the audit keeps the approval
        actions += [FraudFlag.gsi1pk.set(keys["gsi1pk"]), FraudFlag.gsi1sk.set(keys["gsi1sk"]),
                    FraudFlag.resolved_at.remove(), FraudFlag.resolved_by.remove()]
        condition = FraudFlag.status == "approved"
    else:
        actions += [FraudFlag.gsi1pk.set(FraudFlag.gsi1pk | keys["gsi1pk"]),
                    FraudFlag.gsi1sk.set(FraudFlag.gsi1sk | keys["gsi1sk"])]
        condition = FraudFlag.status.does_not_exist() | (FraudFlag.status == "open")
    tx.update(flag, actions=actions, condition=condition)  # decided on the status read: else read again
    return [Member.referral_hold.set("fraud_review")]
