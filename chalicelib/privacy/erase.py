"""`POST /v1/ops/members/{member_id}/erase` (admin): erase a member's personal data, keep the
member id with its amounts, counts and referral edges (pseudonymous), audit it, once.

Order of work (each step can run again; a failure part-way is finished by the next call):
1. one transaction: the tombstone (`erased_at`) and the profile's personal fields scrubbed,
   with every login identity deleted. A login either finds the identity and a live member, or
   neither: it never hands out the erased member again (members/service.find_or_create);
2. the member's codes (released: deleted, with the counters keyed by them), code pointers,
   links, the click that brought them, the assist counters keyed by their device or phone hash;
3. notification payloads and red-packet claims' copied names blanked in place;
4. the audit record, written only if absent: the receipt. It holds counts, never the data.
A second call finds the receipt and answers it again (same body, 200).

Stream handlers cannot write the data back: no handler copies a name, a hash or an openid into
another item any more (the welcome note carries no name), and notes keep their deterministic keys
(blanked, not deleted), so a replayed record's conditional put finds them and writes nothing.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from ..campaigns.models import Campaign
from ..core import clock
from ..core.errors import NotFound
from ..engagement.models import DeviceDay
from ..insight import audit
from ..insight.audit import AuditRecord
from ..members.models import Member
from ..facts.models import SignupWindow
from ..i18n import t
from ..referrals.models import Click, ClickCounter, Code
from ..store.base import MainItem, condition_failed, transaction
from .holdings import Holdings, collect

ACTION = "member.erase"


def audit_id_of(member_id: str) -> str:
    return f"erase.{member_id}"  # one erasure per member: the record's existence is the receipt


def erase(member_id: str, actor: str) -> dict[str, Any]:
    member = Member.find(member_id, consistent=True)
    if member is None:
        raise NotFound(t("member {member_id!r} does not exist", member_id=member_id), code="member_not_found")
    done = _receipt(member_id)
    if done is not None:
        return done
    at = member.erased_at or clock.now_iso()
    counts: Counter[str] = Counter()
    held = collect(member)
    _tombstone(held, at, counts)
    _release_codes(held, counts)
    _delete_links_and_click(held, counts)
    _delete_device_counters(member, counts)
    _blank_copies(held, counts)
    record = audit.record(actor, ACTION, f"member:{member_id}", {"erased": dict(sorted(counts.items()))},
                          audit_id=audit_id_of(member_id), at=at)
    try:
        record.save(condition=AuditRecord.pk.does_not_exist())
    except PutError as exc:  # a concurrent erasure finished first: its receipt is the answer
        if not condition_failed(exc):
            raise
    return _receipt(member_id)


def _receipt(member_id: str) -> dict[str, Any] | None:
    try:
        record = AuditRecord.get(f"AUDIT#{audit_id_of(member_id)}", "AUDIT", consistent_read=True)
    except AuditRecord.DoesNotExist:
        return None
    return {"member_id": member_id, "erased_at": record.at, "erased_by": record.actor, "audit_id": record.audit_id,
            **json.loads(record.details)}


SCRUB = ("display_name", "device_id", "phone_hash", "birthday", "channels", "referral_click_id")


def _tombstone(held: Holdings, at: str, counts: Counter[str]) -> None:
    member = held.member
    counts["profile_fields"] += sum(1 for name in SCRUB if getattr(member, name))
    actions = [Member.display_name.set(""), Member.device_id.remove(), Member.phone_hash.remove(),
               Member.birthday.remove(), Member.channels.remove(), Member.referral_click_id.remove(),
               Member.locale.set("zh-CN"), Member.marketing_opt_in.set(False),  # defaults: nothing to market to
               Member.erased_at.set(Member.erased_at | at)]
    with transaction() as tx:
        tx.update(Member(*Member.key(member.member_id)), actions=actions, condition=Member.pk.exists())
        for identity in held.identities:
            tx.delete(identity)
    counts["identities"] += len(held.identities)


def _codes_of(held: Holdings) -> list[str]:
    """The index's codes, and the pointers' (a code written before the index existed has no entry)."""
    pointed = {text for p in held.of_type("member_code") for text in (p.code, p.vanity_code) if text}
    return sorted({c.code for c in held.codes} | pointed)


def _release_codes(held: Holdings, counts: Counter[str]) -> None:
    member_id = held.member.member_id
    for text in _codes_of(held):
        try:  # only while it is still theirs: a released vanity code may have a new owner
            Code(*Code.key(text)).delete(condition=Code.member_id == member_id)
        except DeleteError as exc:
            if not condition_failed(exc):
                raise
            continue
        counts["codes"] += 1
        ClickCounter(*ClickCounter.key(code=text)).delete()
        with MainItem.batch_write() as batch:
            for window in SignupWindow.query(f"SIGNUPS#{text}"):
                batch.delete(window)
    with MainItem.batch_write() as batch:
        for pointer in held.of_type("member_code"):
            batch.delete(pointer)


def _delete_links_and_click(held: Holdings, counts: Counter[str]) -> None:
    with MainItem.batch_write() as batch:
        for link in held.links:
            batch.delete(link)
    counts["links"] += len(held.links)
    if held.click is not None:
        Click(*Click.key(held.click.click_id)).delete()
        counts["clicks"] += 1


def _delete_device_counters(member: Member, counts: Counter[str]) -> None:
    """Assist counters are keyed by the device id or phone hash itself: one Query per campaign
    (a brand runs tens) and hash finds every day still stored (they expire after 3 days)."""
    values = [(kind, value) for kind, value in (("device", member.device_id), ("phone", member.phone_hash)) if value]
    if not values:
        return
    for campaign in Campaign.by_gsi1.query("CAMPAIGNS"):
        for kind, value in values:
            days = list(DeviceDay.query(DeviceDay.key(campaign.campaign_id, kind, value, "")[0]))
            with MainItem.batch_write() as batch:
                for day in days:
                    batch.delete(day)
            counts["device_counters"] += len(days)


def _blank(item: MainItem, attribute: Any, value: Any) -> bool:
    try:
        item.update(actions=[attribute.set(value)], condition=type(item).pk.exists())
        return True
    except UpdateError as exc:
        if condition_failed(exc):
            return False
        raise


def _blank_copies(held: Holdings, counts: Counter[str]) -> None:
    from ..engagement.red_packets import PacketClaim
    from ..lifecycle.outbox import Notification

    for note in held.of_type("notification"):
        if note.payload not in (None, "", "{}") and _blank(note, Notification.payload, "{}"):
            counts["notification_payloads"] += 1
    for claim in held.packet_claims:
        if claim.display_name and _blank(claim, PacketClaim.display_name, ""):
            counts["red_packet_claims"] += 1
