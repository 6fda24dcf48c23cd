"""Outbound events, derived from the main table's stream: each change a brand's systems care
about becomes one event with a stable `event_id` (a hash of what happened, never of when the
record was read), so a redelivered or replayed record yields the same event, and the delivery
it causes is written once (`fanout.publish`).

Events carry ids and amounts, not names, phone numbers or other personal data.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from ..streams import Change, on_change

TYPES = ("member.created", "referral.bound", "referral.converted", "referral.unconverted", "reward.pending",
         "reward.available", "reward.reversed", "reward.restated", "tier.changed", "stage.changed",
         "points.expiring", "points.expired", "fraud.flagged")

# Ledger entries that are not rewards: spending, ops corrections, expiry (its own event).
NOT_REWARDS = ("redemption", "adjustment", "expiry")


@dataclass(frozen=True)
class Event:
    type: str
    key: str  # what makes it this event and no other
    occurred_at: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return "evt_" + hashlib.sha256(f"{self.type}|{self.key}".encode()).hexdigest()[:24]

    def body(self) -> str:
        """The JSON a receiver gets: fixed once, so every attempt sends (and signs) the same bytes."""
        return json.dumps({"event_id": self.event_id, "type": self.type, "occurred_at": self.occurred_at,
                           "data": self.data}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def of_member(change: Change) -> list[Event]:
    new, old = change.new, change.old
    if new is None:
        return []
    events = []
    if old is None:
        events.append(Event("member.created", new.member_id, new.created_at,
                            {"member_id": new.member_id, "source": new.source, "referred": bool(new.referrer_id)}))
    if new.referrer_id and (old is None or not old.referrer_id):
        events.append(Event("referral.bound", new.member_id, new.bound_at or new.created_at,
                            {"referee_id": new.member_id, "referrer_id": new.referrer_id,
                             "campaign_id": new.referral_campaign_id, "code": new.referral_code}))
    was = (old.referral_status == "converted", old.converting_order_id) if old is not None else (False, None)
    became = (new.referral_status == "converted", new.converting_order_id)
    if was[0] and was != became:  # undone (a refund, a rejected flag) or moved to an earlier order
        events.append(Event("referral.unconverted", f"{new.member_id}|{was[1]}", change.recorded_at or new.bound_at,
                            {"referee_id": new.member_id, "referrer_id": new.referrer_id,
                             "campaign_id": new.referral_campaign_id, "order_id": was[1],
                             "status": new.referral_status}))
    if became[0] and was != became:
        events.append(Event("referral.converted", f"{new.member_id}|{new.converting_order_id}",
                            new.converted_at or new.bound_at,
                            {"referee_id": new.member_id, "referrer_id": new.referrer_id,
                             "campaign_id": new.referral_campaign_id, "order_id": new.converting_order_id}))
    return events


def _reward_data(entry: Any) -> dict[str, Any]:
    return {"member_id": entry.member_id, "entry_id": entry.entry_id, "rule": entry.rule, "unit": entry.unit,
            "amount": int(entry.amount), "reversed_amount": int(entry.reversed_amount or 0),
            "campaign_id": entry.campaign_id, "referee_id": entry.referee_id, "order_id": entry.order_id,
            "available_at": entry.available_at}


def of_ledger_entry(change: Change) -> list[Event]:
    new, old = change.new, change.old
    if new is None:
        return []
    key = f"{new.member_id}|{new.entry_id}"
    if new.rule == "expiry":
        if old is not None:
            return []
        return [Event("points.expired", key, new.created_at,
                      {"member_id": new.member_id, "entry_id": new.entry_id, "points": -int(new.amount)})]
    if new.rule in NOT_REWARDS or (old is None and int(new.amount) <= 0):
        return []
    events = []
    if old is None and new.status == "pending":
        events.append(Event("reward.pending", key, new.created_at, _reward_data(new)))
    if new.status == "available" and (old is None or old.status == "pending"):
        events.append(Event("reward.available", key, new.available_at or new.created_at, _reward_data(new)))
    if old is not None:
        # a refund, a rejected flag or a re-ranking moves what the entry stands at; each such change is
        # its own stream record, whose sequence number names it on every redelivery
        before = int(old.amount) - int(old.reversed_amount or 0)
        after = int(new.amount) - int(new.reversed_amount or 0)
        step = f"{key}|{change.sequence}"
        at = change.recorded_at or new.created_at
        if after < before:
            events.append(Event("reward.reversed", step, at, {**_reward_data(new), "reversed_now": before - after}))
        elif after > before:
            events.append(Event("reward.restated", step, at, {**_reward_data(new), "restored_now": after - before}))
    return events


def of_timeline(change: Change) -> list[Event]:
    new = change.new
    if new is None or change.old is not None or new.kind not in ("stage", "tier"):
        return []
    data = json.loads(new.data or "{}")
    return [Event(f"{new.kind}.changed", f"{new.member_id}|{new.sk}", new.at,
                  {"member_id": new.member_id, "from": data.get("from"), "to": data.get("to"),
                   "reason": data.get("reason")})]


def of_notification(change: Change) -> list[Event]:
    new = change.new
    if new is None or change.old is not None or new.kind != "points_expiring" or not new.sk.startswith("NOTE#"):
        return []
    payload = json.loads(new.payload or "{}")
    return [Event("points.expiring", f"{new.member_id}|{new.source_id}", new.created_at,
                  {"member_id": new.member_id, "points": payload.get("points"),
                   "expires_at": payload.get("expires_at")})]


def of_fraud_flag(change: Change) -> list[Event]:
    new, old = change.new, change.old
    if new is None or new.status != "open" or (old is not None and old.status == "open"):
        return []
    return [Event("fraud.flagged", f"{new.referee_id}|{new.created_at}", new.created_at,
                  {"referee_id": new.referee_id, "referrer_id": new.referrer_id, "code": new.code,
                   "reasons": sorted(new.reasons or [])})]


DERIVERS: dict[str, Callable[[Change], list[Event]]] = {
    "member": of_member,
    "ledger_entry": of_ledger_entry,
    "timeline": of_timeline,
    "notification": of_notification,
    "fraud_flag": of_fraud_flag,
}


def _register() -> None:
    from . import fanout

    for item_type, derive in DERIVERS.items():
        def handle(change: Change, derive: Callable[[Change], list[Event]] = derive) -> None:
            if change.event != "REMOVE":
                fanout.publish(derive(change))

        on_change("main", item_type)(handle)


_register()
