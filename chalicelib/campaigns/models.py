"""Campaign items (main table).

Access patterns:
- current campaign: GetItem pk=CAMP#<id>, sk=CONFIG
- a past version (facts are judged by the version in force): GetItem pk=CAMP#<id>, sk=V#<n:06d>
- all campaigns: Query gsi1 gsi1pk=CAMPAIGNS (one small partition: a brand runs tens, not millions)
"""
from __future__ import annotations

from pynamodb.attributes import NumberAttribute, UnicodeAttribute

from ..store.base import MainItem


class Campaign(MainItem, discriminator="campaign"):
    campaign_id = UnicodeAttribute()
    name = UnicodeAttribute()
    offer = UnicodeAttribute(default="")
    offer_i18n = UnicodeAttribute(null=True)  # JSON {locale: offer}; None: the offer in one language only
    landing_url = UnicodeAttribute()
    status = UnicodeAttribute(default="active")
    starts_at = UnicodeAttribute(null=True)
    ends_at = UnicodeAttribute(null=True)
    rules = UnicodeAttribute()  # JSON of rules.Rules
    version = NumberAttribute(default=1)
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    budget_spent_points = NumberAttribute(default=0)
    budget_rev = NumberAttribute(null=True)  # counts changes of the budget: the shards' basis (rewards/budget.py)

    @classmethod
    def key(cls, campaign_id: str) -> tuple[str, str]:
        return f"CAMP#{campaign_id}", "CONFIG"


class CampaignVersion(MainItem, discriminator="campaign_version"):
    """An immutable snapshot of a campaign's rules: facts are judged by the version in force."""

    campaign_id = UnicodeAttribute()
    version = NumberAttribute()
    rules = UnicodeAttribute()
    created_at = UnicodeAttribute()

    @classmethod
    def key(cls, campaign_id: str, version: int) -> tuple[str, str]:
        return f"CAMP#{campaign_id}", f"V#{version:06d}"
