"""Stream-driven lifecycle: welcome, rewards becoming available, advocate levels, and the
stage, tier and own-purchase points of a member whose facts changed."""
from __future__ import annotations

from ..streams import Change, on_change
from . import outbox, service

# Member counters the attribution step moves when a fact lands: a purchase or refund counted
# (orders, gmv), a referee converting (the referrer's conversions), a birthday set.
FACT_FIELDS = ("orders", "gmv_fen", "referrals_converted", "birthday")


@on_change("main", "member")
def welcome_new_member(change: Change) -> None:
    if change.event != "INSERT":
        return
    member = change.new
    if member.quiet_import:
        return  # a brand's existing customer, moved here by an import: not new to the brand
    # No name in the payload: a sender renders the current one, and a record that lags behind an
    # erasure (privacy/erase.py) cannot write the erased name back.
    outbox.post(member.member_id, "welcome", member.member_id, member.created_at, {})


@on_change("main", "member")
def follow_member_facts(change: Change) -> None:
    """Reconcile when a fact behind the lifecycle changed (not on the lifecycle's own writes)."""
    new, old = change.new, change.old
    if change.event == "INSERT" and new is not None:
        if new.tier != service.program.rules_at(new.created_at).base_tier.name:  # a program renamed its base tier
            service.reconcile(new.member_id)
        return
    if new is None or change.event != "MODIFY" or old is None:
        return
    if any(getattr(old, name) != getattr(new, name) for name in FACT_FIELDS):
        service.reconcile(new.member_id)


@on_change("main", "ledger_entry")
def reward_moments(change: Change) -> None:
    """Tell the member when points become available and when a milestone pays."""
    entry = change.new
    if entry is None or entry.unit != "points":
        return
    became_available = (change.event == "MODIFY" and change.old is not None and change.old.status == "pending"
                        and entry.status == "available")
    if became_available:
        outbox.post(entry.member_id, "reward_available", entry.entry_id, entry.created_at,
                    {"points": int(entry.amount) - int(entry.reversed_amount or 0), "reason": entry.reason})
    if change.event == "INSERT" and entry.rule == "milestone":
        outbox.post(entry.member_id, "milestone", entry.entry_id, entry.created_at, {"points": int(entry.amount)})


@on_change("main", "member")
def advocate_level_up(change: Change) -> None:
    """An advocate whose converted referrals reach a new level (default campaign's levels)."""
    if change.event != "MODIFY" or change.old is None:
        return
    from ..campaigns import service as campaigns

    rules = campaigns.rules_of(campaigns.current_or_404(None))
    before = rules.level_for(int(change.old.referrals_converted or 0))
    after = rules.level_for(int(change.new.referrals_converted or 0))
    if after is not None and (before is None or after.min_conversions > before.min_conversions):
        outbox.post(change.new.member_id, "level_up", f"{after.name}", change.new.created_at,
                    {"level": after.name, "commission_bps": after.commission_bps})
