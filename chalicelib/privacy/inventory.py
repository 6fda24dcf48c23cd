"""Every stored attribute of every item type, classified, and how a member's items are found.

- PERSONAL: says something about the person (a name, an openid, a device or phone hash, a
  birthday, preferences, a click fingerprint, a message text, a chosen code). Exported; erased.
- IDENTIFIER: a pseudonymous id (member, order, entry, click, link…) or a copy of a generated code.
  Exported when it is the member's; kept, like the amounts it ties together.
- PLAIN: amounts, counts, states, times, rules, configuration. Kept.

`unclassified()` walks every PynamoDB model of the three tables (tests/test_privacy.py fails on
any attribute missing here), so a new personal field cannot be added without deciding its fate.
`reach` names the key or index that finds a member's items (never a Scan); `erase` what
erasure does with them.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Iterator

PERSONAL, IDENTIFIER, PLAIN = "personal", "identifier", "plain"
# Root attributes: keys and index keys (their contents are classified per kind in `keys`), the type, TTL.
ROOT_FIELDS = ("pk", "sk", "type", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "lsi1sk", "expires_at")


@dataclass(frozen=True)
class Kind:
    fields: dict[str, str]
    reach: str
    erase: str
    keys: str = "ids only"  # what the item's keys and index keys embed
    exported: bool = True


def kind(reach: str, erase: str, personal: str = "", ids: str = "", plain: str = "", keys: str = "ids only",
         exported: bool = True) -> Kind:
    fields = {name: cls for names, cls in ((personal, PERSONAL), (ids, IDENTIFIER), (plain, PLAIN))
              for name in names.split()}
    return Kind(fields, reach, erase, keys, exported)


NOT_A_MEMBERS = "not a member's: configuration, aggregates or another person's record"
MEMBER_PARTITION = "Query pk=M#<member> (the member's partition)"
_TALLY = "members repeat_30d repeat_90d gmv_fen refunded_fen refunders"

INVENTORY: dict[str, Kind] = {
    # -- the member and how they log in ------------------------------------------------------
    "member": kind(MEMBER_PARTITION, "scrub: personal fields removed or reset, erased_at set (the tombstone)",
                   personal="display_name device_id phone_hash birthday locale channels marketing_opt_in "
                            "referral_click_id",
                   ids="member_id referrer_id grandparent_id referral_code converting_order_id nudged_for",
                   plain="import_hash import_rewards created_at source stage stage_since tier tier_since tier_warning lifecycle_due_at "
                         "lifecycle_rev birthday_year referral_campaign_id referral_campaign_version referral_channel "
                         "bound_at window_ends_at referral_status referral_hold converted_at orders gmv_fen "
                         "first_purchase_at last_purchase_at points_available points_pending points_redeemed lot_debt "
                         "referrals_signed_up referrals_converted erased_at"),
    "signup_count": kind(MEMBER_PARTITION + " PROFILE#SIGNUPS# (shards of their count of friends signed up)",
                         "keep: a count, like the tombstone's referrals_signed_up", plain="count"),
    "downline_entry": kind(MEMBER_PARTITION + " REF (their place in their referrer's downline)",
                           "keep: ids and the bind time, like the tombstone's own", ids="member_id referrer_id",
                           exported=False),
    "lifecycle_due": kind(MEMBER_PARTITION + " DUE (when the clock next changes their stage or tier)",
                          "keep: a time (the tombstone's lifecycle_due_at)", ids="member_id", exported=False),
    "identity": kind("Query gsi1 IDS#<member>", "delete (the openid then leads nowhere)",
                     personal="subject", ids="member_id", plain="provider created_at",
                     keys="pk ID#<provider>#<subject> embeds the openid"),
    # -- codes, links, clicks ------------------------------------------------------------------
    "code": kind("Query gsi1 CODES#<member> (added for this)", "delete (released: resolves to nobody, "
                 "claimable again); its click counter CNT#<code> and sign-up windows SIGNUPS#<code> too",
                 personal="code", ids="member_id", plain="campaign_id kind status created_at released_after import_hash",
                 keys="pk C#<code>: a vanity code may spell a name"),
    "member_code": kind(MEMBER_PARTITION + " CODE#", "delete", personal="code vanity_code",
                        ids="member_id", plain="campaign_id updated_at vanity_cooling_until"),
    "link": kind("Query gsi1 LINKS#<member> (added for this)", "delete (its URL carries the code)",
                 personal="code url landing_path", ids="link_id member_id", plain="campaign_id channel created_at"),
    "click": kind("GetItem K#<member.referral_click_id> (the click that brought them; other clicks are "
                  "anonymous visitors')", "delete (the member's own click)",
                  personal="fingerprint", ids="click_id code referrer_id link_id", plain="campaign_id channel at day"),
    "click_counter": kind("GetItem CNT#<code> of the member's codes", "delete with the code",
                          plain="total by_day by_channel seen seen_at", keys="pk CNT#<code> embeds the code",
                          exported=False),
    "signup_window": kind("Query pk=SIGNUPS#<code> of the member's codes (every hour and shard)", "delete with the code",
                          plain="signups", keys="pk SIGNUPS#<code> embeds the code", exported=False),
    "link_quota": kind("GetItem LINKQ#<member> by day (expires the next day)", "keep: a count (TTL ≤ 2 days)",
                       plain="links", exported=False),
    "reserved_words": kind(NOT_A_MEMBERS, "none", ids="updated_by", plain="words", exported=False),
    "conversion": kind(MEMBER_PARTITION + " CONV# (their referees' conversions)", "keep: ids and times",
                       ids="referrer_id referee_id order_id",
                       plain="converted_at campaign_id campaign_version commission_bps level"),
    "downline2": kind(NOT_A_MEMBERS + " (second-level counts)", "keep: counts", ids="member_id",
                      plain="signed_up converted", exported=False),
    "downline2_fact": kind(MEMBER_PARTITION + " DL2", "keep: counts", ids="grandparent_id",
                           plain="signed_up converted rev"),
    # -- facts, ledger, points -----------------------------------------------------------------
    "order": kind("Query gsi1 ORDERS#<member>", "keep: amounts", ids="order_id member_id request_hash",
                  plain="amount_fen currency occurred_at store_id channel refunded_fen created_at counted campaign_id history import_id"),
    "refund": kind("Query pk=O#<order> REFUND# of the member's orders", "keep: amounts",
                   ids="order_id refund_id member_id request_hash",
                   plain="amount_fen occurred_at created_at counted campaign_id"),
    "ledger_entry": kind(MEMBER_PARTITION + " LEDGER#", "keep: amounts (the ledger invariants hold)",
                         ids="entry_id member_id source_id order_id referee_id",
                         plain="rule unit amount status bucket reason campaign_id created_at available_at "
                               "reversed_amount shortfall capped_from hold voided"),
    "points_lot": kind(MEMBER_PARTITION + " LOT#", "keep: amounts", ids="member_id",
                       plain="day expiry_at notice_at remaining phase"),
    "cap_usage": kind("GetItem CAP#<member> by campaign and month", "keep: amounts", plain="points", exported=False),
    "budget_usage": kind(NOT_A_MEMBERS + " (BUDGET#<campaign>#<shard>, rewards/budget.py)", "none",
                         plain="spent spent_fen basis basis_fen", exported=False),
    "ledger_export_row": kind(NOT_A_MEMBERS + " (a copy of the ledger for exports)", "keep: ids and amounts",
                              ids="entry_id member_id order_id referee_id seq",
                              plain="campaign_id rule unit amount reversed_amount status created_at available_at",
                              exported=False),
    "campaign_fact": kind(NOT_A_MEMBERS + " (the dry run's index of a campaign's facts)", "keep: ids and amounts",
                          ids="member_id referrer_id grandparent_id order_id refund_id",
                          plain="campaign_id campaign_version kind amount_fen occurred_at window_ends_at",
                          exported=False),
    # -- engagement ----------------------------------------------------------------------------
    "checkin": kind(MEMBER_PARTITION + " CHECKIN#", "keep: days and streaks", ids="member_id tap_id",
                    plain="campaign_id campaign_version day streak at"),
    "share": kind("GetItem SHARE#<source_id> of the member's share-goal entries", "keep: ids and counts",
                  ids="share_id sharer_id code content_id",
                  plain="campaign_id campaign_version channel target assists created_at", exported=False),
    "assist": kind("not by member (SHARE#<share>, ASSIST#<member>): ids and a time only", "keep",
                   ids="share_id member_id", plain="at", exported=False),
    "assister_day": kind(MEMBER_PARTITION + " ASSISTS#", "keep: a count (TTL 3 days)", plain="assists"),
    "assist_device_day": kind("Query pk=ASSISTDEV#<campaign>#device|phone#<the member's hash> for each campaign",
                              "delete (TTL 3 days anyway)", ids="last_member_id last_share_id",
                              plain="assists limit kind campaign_id",
                              keys="pk embeds the device id or phone hash", exported=False),
    "quiz": kind(NOT_A_MEMBERS, "none", ids="quiz_id created_by",
                 plain="campaign_id title questions points pass_mark starts_at ends_at created_at", exported=False),
    "quiz_attempt": kind("GetItem QUIZ#<source_id> ATTEMPT#<member> of the member's quiz entries",
                         "keep: answers are option numbers", ids="quiz_id member_id attempt_id",
                         plain="campaign_id campaign_version answers right total passed points at", exported=False),
    "red_packet": kind("GetItem PACKET#<id> (the sender's: not by member)", "keep: ids and amounts",
                       ids="packet_id sender_id sender_code seed",
                       plain="campaign_id landing_url total_fen count claimed claimed_fen status returned_fen "
                             "created_at",
                       exported=False),
    "red_packet_claim": kind("GetItem PACKET#<source_id> CLAIM#<member> of the member's red_packet entries",
                             "scrub: the copied display name", personal="display_name",
                             ids="packet_id member_id", plain="amount_fen index at"),
    "red_packet_allowance": kind(MEMBER_PARTITION + " PACKETS#", "keep: a count", plain="sent"),
    "catalogue_item": kind(NOT_A_MEMBERS, "none", ids="item_id", plain="name points stock active updated_at",
                           exported=False),
    # -- lifecycle, outbox, insight ------------------------------------------------------------
    "notification": kind(MEMBER_PARTITION + " NOTE# and SKIP#", "scrub: payload emptied, the item (its "
                         "deterministic key) kept so a replayed record writes nothing back", personal="payload",
                         ids="member_id source_id", plain="kind created_at send_at marketing dropped"),
    "timeline": kind(MEMBER_PARTITION + " TL#", "keep: stage and tier changes", ids="member_id",
                     plain="kind at observed_at data"),
    "fraud_flag": kind("GetItem FLAG#<member>", "keep: reason codes, never the hashes", ids="flag_id referee_id "
                       "referrer_id code resolved_by", plain="reasons status created_at resolved_at"),
    "audit": kind("Query gsi1 AUDIT (ops actions; targets are member ids)", "keep: actors, actions, ids; the "
                  "erasure's own record holds counts only", ids="audit_id actor target",
                  plain="action at details", exported=False),
    "board_fact": kind(NOT_A_MEMBERS + " (leaderboard contributions: ids and scores)", "keep", ids="fact_id",
                       plain="values rev", exported=False),
    "board_score": kind("GetItem LBS#<board>#<member> (names are looked up when shown, never copied)", "keep",
                        ids="member_id", plain="board score", exported=False),
    "board_bucket": kind(NOT_A_MEMBERS, "none", plain="count", exported=False),
    "board_bucket_group": kind(NOT_A_MEMBERS + " (members per score bucket: b<bucket> counts)", "none",
                               exported=False),
    "quality_fact": kind("GetItem QF#<member> (as a referee)", "keep: ids and amounts", ids="referee_id",
                         plain="values orders rev", exported=False),
    "quality_tally": kind(NOT_A_MEMBERS, "none", plain=_TALLY, exported=False),
    "quality_cohort": kind(NOT_A_MEMBERS, "none", plain=_TALLY, exported=False),
    "quality_advocate": kind("Query pk=QA#<campaign>#<member> (counts of their referees)", "keep: counts",
                             plain=_TALLY, exported=False),
    "funnel_fact": kind(NOT_A_MEMBERS + " (funnel contributions: ids and figures)", "keep", ids="fact_id",
                        plain="shard values rev", exported=False),
    "funnel_day": kind(NOT_A_MEMBERS, "none", plain="signups first_purchases gmv_fen points coupon_fen invites",
                       exported=False),
    "funnel_sketch": kind(NOT_A_MEMBERS + " (HyperLogLog registers: a maximum of leading zeros per bucket, no "
                          "identity can be read back)", "none", plain="clicks registers seen version", exported=False),
    # -- outbound and operations ---------------------------------------------------------------
    "webhook": kind(NOT_A_MEMBERS, "none", ids="webhook_id created_by",
                    plain="url events secret description created_at", exported=False),
    "webhook_delivery": kind("not by member: bodies carry ids and amounts only (webhooks/events.py), kept 30 days",
                             "keep", ids="delivery_id webhook_id event_id body",
                             plain="event_type occurred_at status attempts created_at window_started_at "
                                   "next_attempt_at last_attempt_at last_status_code last_error delivered_at",
                             exported=False),
    "idempotency": kind("not by member: the key is a hash of (caller, client key); expires after 24 h",
                        "none (expiry): see docs/privacy.md", ids="request_hash",
                        plain="status lock_until response_status response_body response_headers claim_id", exported=False),
    "rate_window": kind("not by member: per client and minute", "none (expires in 2 minutes)", plain="hits",
                        exported=False),
    "revoked_token": kind(NOT_A_MEMBERS + " (staff and service tokens)", "none", ids="revoked_by",
                          plain="reason revoked_at", exported=False),
    "stream_failure": kind(NOT_A_MEMBERS, "none", ids="failure_id stream_arn shard_id start_sequence end_sequence",
                           plain="function table batch_size condition first_arrival received_at records fetch_error "
                                 "status last_error redrives redriven_at", exported=False),
    "stream_failure_record": kind("not by member: copies of failed stream records, kept 14 days for re-drive",
                                  "none (expiry): see docs/privacy.md", ids="failure_id sequence", plain="data",
                                  exported=False),
    "program": kind(NOT_A_MEMBERS, "none", ids="updated_by", plain="version rules effective_from updated_at",
                    exported=False),
    "program_version": kind(NOT_A_MEMBERS, "none", plain="version rules effective_from created_at", exported=False),
    "campaign": kind(NOT_A_MEMBERS, "none", plain="campaign_id name offer offer_i18n landing_url status starts_at "
                     "ends_at rules version created_at updated_at budget_spent_points budget_rev", exported=False),
    "campaign_version": kind(NOT_A_MEMBERS, "none", plain="campaign_id version rules created_at", exported=False),
}


def models() -> Iterator[tuple[str, type]]:
    """(discriminator, model) for every item type of every table, after importing every module
    of chalicelib (a model defined anywhere is found)."""
    import chalicelib
    from ..store.base import ROOTS, _subclasses

    for module in pkgutil.walk_packages(chalicelib.__path__, "chalicelib."):
        importlib.import_module(module.name)
    for root in ROOTS.values():
        for model in _subclasses(root):
            if model is not root:
                yield type_name(model), model


def type_name(item_or_model: Any) -> str:
    """The stored `type` of an item (or model): the inventory's name for it."""
    model = item_or_model if isinstance(item_or_model, type) else type(item_or_model)
    return model._get_discriminator_attribute().get_discriminator(model)


def unclassified() -> list[str]:
    """`<type>.<attribute>` for every stored attribute the inventory does not classify, and every
    inventory entry that no longer exists (so the list stays the truth both ways)."""
    missing, seen = [], set()
    for name, model in models():
        seen.add(name)
        entry = INVENTORY.get(name)
        for attribute in model.get_attributes():
            if attribute in ROOT_FIELDS:
                continue
            seen.add(f"{name}.{attribute}")
            if entry is None or attribute not in entry.fields:
                missing.append(f"{name}.{attribute}")
    stale = [f"{name}.{attribute}" for name, entry in INVENTORY.items() for attribute in entry.fields
             if f"{name}.{attribute}" not in seen]
    return missing + [f"{gone} (no longer stored)" for gone in stale]


def personal_fields(type_name: str) -> list[str]:
    entry = INVENTORY.get(type_name)
    return [name for name, cls in (entry.fields.items() if entry else ()) if cls == PERSONAL]
