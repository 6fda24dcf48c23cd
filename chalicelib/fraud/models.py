"""Fraud flags: one per referral (keyed by the referee), holding its rewards for review.

Access patterns:
- a flag: GetItem pk=FLAG#<referee_id>, sk=FLAG
- flags by status, newest first: Query gsi1 gsi1pk=FLAGS#<status>
- flags on a referrer's referees, newest first (ops' member 360): Query gsi2 gsi2pk=FLAGGED#<referrer>
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

    @staticmethod
    def referrer_keys(referrer_id: str, referee_id: str, at: str) -> dict[str, str]:
        return {"gsi2pk": f"FLAGGED#{referrer_id}", "gsi2sk": f"{at}#{referee_id}"}

    @classmethod
    def referrer_key_actions(cls, referrer_id: str, referee_id: str, at: str, replace: bool = False) -> list:
        """For an update that may create the flag: the referrer keys, kept if already set, unless
        the update also replaces `referrer_id` (`replace`): the index follows the attribute."""
        keys = cls.referrer_keys(referrer_id, referee_id, at)
        pk = keys["gsi2pk"] if replace else cls.gsi2pk | keys["gsi2pk"]
        return [cls.gsi2pk.set(pk), cls.gsi2sk.set(cls.gsi2sk | keys["gsi2sk"])]

    @classmethod
    def on_referees_of(cls, referrer_id: str, limit: int) -> list["FraudFlag"]:
        return list(cls.by_gsi2.query(f"FLAGGED#{referrer_id}", scan_index_forward=False, limit=limit))
