"""Reviewing fraud flags. Approving releases the referral's held rewards; rejecting voids the
referral (it stops counting for the referrer, and its rewards are voided by the rewards
stream handler). Every resolution is audited in the same transaction."""
from __future__ import annotations

from typing import Any

from pynamodb.exceptions import TransactWriteError

from ..core import clock
from ..core.errors import Conflict, NotFound
from ..core.pagination import PageQuery, page
from ..i18n import t
from ..insight import audit
from ..members.models import Member, SignupCount
from ..referrals.models import Conversion
from ..store.base import cancelled_by_condition, transaction
from .models import FraudFlag

STATUSES = ("open", "approved", "rejected")


def render(flag: FraudFlag) -> dict[str, Any]:
    return {"flag_id": flag.flag_id, "referee_id": flag.referee_id, "referrer_id": flag.referrer_id,
            "code": flag.code, "reasons": sorted(flag.reasons or []), "status": flag.status,
            "created_at": flag.created_at, "resolved_at": flag.resolved_at, "resolved_by": flag.resolved_by}


def list_flags(status: str, page_query: PageQuery) -> dict[str, Any]:
    return page(FraudFlag.by_gsi1.query, page_query, f"flags:{status}", render, hash_key=f"FLAGS#{status}",
                scan_index_forward=False)


def resolve(flag_id: str, action: str, actor: str) -> dict[str, Any]:
    status = "approved" if action == "approve" else "rejected"
    try:
        flag = FraudFlag.get(*FraudFlag.key(flag_id), consistent_read=True)
    except FraudFlag.DoesNotExist:
        raise NotFound(t("fraud flag {flag_id!r} does not exist", flag_id=flag_id), code="flag_not_found") from None
    if flag.status == status:
        return render(flag)  # the same decision again: nothing to do
    if flag.status != "open":
        raise Conflict(t("the flag was already {status}", status=flag.status), code="flag_already_resolved")
    member = Member.get(*Member.key(flag.referee_id), consistent_read=True)
    at = clock.now_iso()
    member_actions = [Member.referral_hold.remove()]
    try:
        with transaction() as tx:
            tx.update(flag, actions=[FraudFlag.status.set(status), FraudFlag.resolved_at.set(at),
                                     FraudFlag.resolved_by.set(actor), FraudFlag.gsi1pk.set(f"FLAGS#{status}")],
                      condition=FraudFlag.status == "open")
            if status == "rejected" and member.referral_status in ("signed_up", "converted"):
                member_actions.append(Member.referral_status.set("void"))
                # the sign-up counted in the shard of the referee (attribution), and comes off it
                tx.update(SignupCount.of(flag.referrer_id, flag.referee_id), actions=SignupCount.actions(-1))
                if member.referral_status == "converted":
                    tx.update(Member(*Member.key(flag.referrer_id)), actions=[Member.referrals_converted.add(-1)])
                    tx.delete(Conversion(*Conversion.key(flag.referrer_id, member.converted_at, flag.referee_id)))
            # a flag may name a member without a referral (assist farming): their status is absent
            tx.update(member, actions=member_actions,
                      condition=(Member.referral_status == member.referral_status) if member.referral_status
                      else Member.referral_status.does_not_exist())
            tx.save(audit.record(actor, f"fraud_flag.{action}", f"member:{flag.referee_id}",
                                 {"flag_id": flag_id, "reasons": sorted(flag.reasons or [])}, at=at))
    except TransactWriteError as exc:
        if cancelled_by_condition(exc):
            raise Conflict(t("the flag or its referral changed while resolving; try again"),
                           code="concurrent_change") from None
        raise
    flag.status, flag.resolved_at, flag.resolved_by = status, at, actor
    return render(flag)
