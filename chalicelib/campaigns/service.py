"""Reading and seeding campaigns."""
from __future__ import annotations

from functools import lru_cache

from pynamodb.exceptions import PutError

from ..core import clock
from ..core.errors import NotFound
from ..store.base import condition_failed
from .models import Campaign
from .rules import DEFAULT_CAMPAIGN, CampaignIn, Rules

DEFAULT_ID = "default"


def _item(spec: CampaignIn, version: int, at: str) -> Campaign:
    pk, sk = Campaign.key(spec.campaign_id)
    return Campaign(pk, sk, campaign_id=spec.campaign_id, name=spec.name, offer=spec.offer,
                    landing_url=spec.landing_url, status=spec.status, starts_at=spec.starts_at,
                    ends_at=spec.ends_at, rules=spec.rules.model_dump_json(), version=version,
                    created_at=at, updated_at=at, gsi1pk="CAMPAIGNS", gsi1sk=spec.campaign_id)


def seed_default() -> bool:
    """Create the `default` campaign if it is missing. Returns True when it was created."""
    try:
        _item(DEFAULT_CAMPAIGN, 1, clock.now_iso()).save(condition=Campaign.pk.does_not_exist())
        return True
    except PutError as exc:
        if condition_failed(exc):
            return False
        raise


def get(campaign_id: str | None) -> Campaign:
    try:
        return Campaign.get(*Campaign.key(campaign_id or DEFAULT_ID))
    except Campaign.DoesNotExist:
        raise NotFound(f"campaign {campaign_id!r} does not exist", code="campaign_not_found") from None


def find(campaign_id: str | None) -> Campaign | None:
    try:
        return Campaign.get(*Campaign.key(campaign_id or DEFAULT_ID))
    except Campaign.DoesNotExist:
        return None


@lru_cache(maxsize=256)
def _parse_rules(text: str) -> Rules:
    return Rules.model_validate_json(text)


def rules_of(campaign: Campaign) -> Rules:
    return _parse_rules(campaign.rules)


def is_running(campaign: Campaign, at: str | None = None) -> bool:
    at = at or clock.now_iso()
    if campaign.status != "active":
        return False
    if campaign.starts_at and at < clock.iso(clock.parse(campaign.starts_at)):
        return False
    if campaign.ends_at and at >= clock.iso(clock.parse(campaign.ends_at)):
        return False
    return True
