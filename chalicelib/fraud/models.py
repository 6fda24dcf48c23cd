"""Fraud flags: one per referral (keyed by the referee), holding its rewards for review.

Access patterns:
- a flag: GetItem pk=FLAG#<referee_id>, sk=FLAG
- flags by status, newest first: Query gsi1 gsi1pk=FLAGS#<status>
"""
from __future__ import annotations

from pynamodb.attributes import UnicodeAttribute, UnicodeSetAttribute

from ..store.base import MainItem


class FraudFlag(MainItem, discriminator="fraud_flag"):
    flag_id = UnicodeAttribute()  # = referee member id: one flag per referral
    referee_id = UnicodeAttribute()
    referrer_id = UnicodeAttribute()
    code = UnicodeAttribute(null=True)
    reasons = UnicodeSetAttribute()
    status = UnicodeAttribute(default="open")  # open | approved | rejected
    created_at = UnicodeAttribute()
    resolved_at = UnicodeAttribute(null=True)
    resolved_by = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, referee_id: str) -> tuple[str, str]:
        return f"FLAG#{referee_id}", "FLAG"

    @staticmethod
    def index_keys(status: str, at: str) -> dict[str, str]:
        return {"gsi1pk": f"FLAGS#{status}", "gsi1sk": at}
