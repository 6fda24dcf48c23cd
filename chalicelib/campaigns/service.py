"""Reading and seeding campaigns."""
from __future__ import annotations

import json
import threading
import time
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from pynamodb.exceptions import TransactWriteError

from ..core import clock
from ..core.config import settings
from ..core.errors import Conflict, NotFound, Unprocessable
from ..core.logs import get_logger
from ..core.pagination import PageQuery, page
from ..i18n import t
from ..insight import audit
from ..share.background import url_problem as background_problem
from ..store.base import cancelled_by_condition, transaction
from .models import Campaign, CampaignVersion
from .rules import CampaignIn, Rules, default_campaign, image_url_problem, landing_url_problem

DEFAULT_ID = "default"
log = get_logger("campaigns")


def _check_landing(spec: CampaignIn) -> None:
    """The landing, share image and poster background URLs' stage-dependent rules (the schema checks their shape)."""
    cfg = settings()
    problem = landing_url_problem(spec.landing_url, cfg.stage, cfg.public_base_url)
    if problem:
        raise Unprocessable(t("invalid body"), code="validation_failed", details={"fields": [
            {"field": "landing_url", "problem": problem, "type": "landing_url"}]})
    image = spec.rules.share_image_url
    problem = image_url_problem(image, cfg.stage) if image else None
    if problem:
        raise Unprocessable(t("invalid body"), code="validation_failed", details={"fields": [
            {"field": "rules.share_image_url", "problem": problem, "type": "share_image_url"}]})
    image_url = spec.rules.poster_background_url
    problem = background_problem(image_url, spec.landing_url) if image_url else None
    if problem:
        raise Unprocessable(t("invalid body"), code="validation_failed", details={"fields": [
            {"field": "rules.poster_background_url", "problem": problem, "type": "poster_background_url"}]})


def check_program_rules(campaign_id: str, rules: Rules) -> None:
    """Milestones count an advocate's converted friends across every campaign and are paid from
    the `default` campaign's rules (rewards/ranks.py): another campaign's would be stored and
    never paid, so they are refused there."""
    if rules.milestones and campaign_id != DEFAULT_ID:
        raise Unprocessable(t("milestones are set on the default campaign only: they count an advocate's "
                              "converted friends across all campaigns"), code="milestones_program_wide",
                            details={"campaign_id": DEFAULT_ID, "fields": [
                                {"field": "rules.milestones", "problem": "set on the default campaign only",
                                 "type": "milestones_program_wide"}]})


def _item(spec: CampaignIn, version: int, at: str) -> Campaign:
    pk, sk = Campaign.key(spec.campaign_id)
    return Campaign(pk, sk, campaign_id=spec.campaign_id, name=spec.name, offer=spec.offer,
                    offer_i18n=_offers_json(spec.offer_i18n),
                    landing_url=spec.landing_url, status=spec.status, starts_at=spec.starts_at,
                    ends_at=spec.ends_at, rules=spec.rules.model_dump_json(), version=version,
                    created_at=at, updated_at=at, gsi1pk="CAMPAIGNS", gsi1sk=spec.campaign_id)


def _offers_json(offers: dict[str, str]) -> str | None:
    return json.dumps(offers, ensure_ascii=False, sort_keys=True) if offers else None


def _snapshot(spec: CampaignIn, version: int, at: str) -> CampaignVersion:
    return CampaignVersion(*CampaignVersion.key(spec.campaign_id, version), campaign_id=spec.campaign_id,
                           version=version, rules=spec.rules.model_dump_json(), created_at=at)


RESERVED_IDS = frozenset({"program"})


def _budget_of(rules: Rules | None) -> tuple[int | None, int | None] | None:
    return (rules.budget_points, rules.money_budget_fen) if rules is not None else None


def create(spec: CampaignIn, actor: str = "system") -> Campaign:
    """A new campaign at version 1 (409 if the id is taken), audited."""
    if spec.campaign_id in RESERVED_IDS:  # the program's win-back coupons use its budget key
        raise Unprocessable(t("campaign id {campaign_id!r} is reserved", campaign_id=spec.campaign_id),
                            code="campaign_id_reserved", details={"campaign_id": spec.campaign_id})
    _check_landing(spec)
    check_program_rules(spec.campaign_id, spec.rules)
    at = clock.now_iso()
    item = _item(spec, 1, at)
    try:
        with transaction() as tx:
            tx.save(item, condition=Campaign.pk.does_not_exist())
            tx.save(_snapshot(spec, 1, at), condition=CampaignVersion.pk.does_not_exist())
            tx.save(audit.record(actor, "campaign.create", f"campaign:{spec.campaign_id}", {"version": 1}, at=at))
    except TransactWriteError as exc:
        if cancelled_by_condition(exc):
            raise Conflict(t("campaign {campaign_id!r} exists", campaign_id=spec.campaign_id),
                           code="campaign_exists") from None
        raise
    _forget(spec.campaign_id)
    return item


def update(campaign_id: str, spec: CampaignIn, actor: str) -> Campaign:
    """A new version of the campaign; facts already bound keep the version they were bound under."""
    if spec.campaign_id != campaign_id:
        raise Conflict(t("campaign_id in the body differs from the path"), code="campaign_id_mismatch")
    _check_landing(spec)
    current = get(campaign_id)
    check_program_rules(campaign_id, spec.rules)
    if spec.rules.currency != rules_of(current).currency:  # amounts already recorded are in the old one
        raise Unprocessable(t("a campaign's currency cannot change; start a new campaign"), code="currency_fixed",
                            details={"currency": rules_of(current).currency})
    at = clock.now_iso()
    version = int(current.version) + 1
    item = _item(spec, version, at)
    item.created_at = current.created_at
    item.budget_rev = int(current.budget_rev or 0) + (0 if _budget_of(usable_rules(current)) == _budget_of(spec.rules)
                                                      else 1)
    try:
        with transaction() as tx:
            tx.save(item, condition=Campaign.version == int(current.version))
            tx.save(_snapshot(spec, version, at), condition=CampaignVersion.pk.does_not_exist())
            tx.save(audit.record(actor, "campaign.update", f"campaign:{campaign_id}", {"version": version}, at=at))
    except TransactWriteError as exc:
        if cancelled_by_condition(exc):
            raise Conflict(t("the campaign changed meanwhile; read it and try again"),
                           code="concurrent_change") from None
        raise
    _forget(campaign_id)
    return item


def seed_default() -> bool:
    """Create the `default` campaign if it is missing. Returns True when it was created."""
    try:
        create(default_campaign())
        return True
    except Conflict:
        return False


def render(campaign: Campaign) -> dict[str, Any]:
    rules = usable_rules(campaign)
    return {"campaign_id": campaign.campaign_id, "name": campaign.name, "offer": campaign.offer,
            "offer_i18n": json.loads(campaign.offer_i18n or "{}"),
            "landing_url": campaign.landing_url, "status": campaign.status, "starts_at": campaign.starts_at,
            "ends_at": campaign.ends_at, "version": int(campaign.version),
            "rules": rules.model_dump() if rules else None,  # None: stored rules unreadable (fix with PUT)
            "created_at": campaign.created_at, "updated_at": campaign.updated_at}


def offer_in(campaign: Campaign, locale: str) -> str:
    """The campaign's offer in `locale` when ops wrote one for it, else the offer as written."""
    return json.loads(campaign.offer_i18n or "{}").get(locale) or campaign.offer or ""


def list_campaigns(page_query: PageQuery) -> dict[str, Any]:
    return page(Campaign.by_gsi1.query, page_query, "campaigns", render, hash_key="CAMPAIGNS")


@lru_cache(maxsize=1024)
def _rules_at(campaign_id: str, version: int) -> Rules:
    snapshot = CampaignVersion.get(*CampaignVersion.key(campaign_id, version))
    return Rules.model_validate_json(snapshot.rules)


def rules_at(campaign_id: str, version: int | None) -> Rules:
    """The rules a fact is judged by: the version it was bound under (snapshots never change)."""
    if version is None:
        return rules_of(get(campaign_id))
    try:
        return _rules_at(campaign_id, int(version))
    except CampaignVersion.DoesNotExist:
        return rules_of(get(campaign_id))


def get(campaign_id: str | None) -> Campaign:
    try:
        return Campaign.get(*Campaign.key(campaign_id or DEFAULT_ID))
    except Campaign.DoesNotExist:
        raise NotFound(t("campaign {campaign_id!r} does not exist", campaign_id=campaign_id),
                       code="campaign_not_found", details={"campaign_id": campaign_id}) from None


def find(campaign_id: str | None, consistent: bool = False) -> Campaign | None:
    try:
        return Campaign.get(*Campaign.key(campaign_id or DEFAULT_ID), consistent_read=consistent)
    except Campaign.DoesNotExist:
        return None


# Campaigns are read on every click, lookup, sign-up and counted order but change rarely: hot
# paths read them through a short per-instance cache (CAMPAIGN_CACHE_SECONDS). A change reaches
# other instances within that time (a sign-up meanwhile is bound to the version before it);
# facts already bound are judged by their immutable version snapshot (rules_at). Misses are not
# cached, so a campaign created elsewhere is seen at once.
_recent: dict[str, tuple[float, Campaign]] = {}
_recent_lock = threading.Lock()


def current(campaign_id: str | None) -> Campaign | None:
    """The campaign as read at most CAMPAIGN_CACHE_SECONDS ago in this instance (None: missing)."""
    campaign_id = campaign_id or DEFAULT_ID
    now = time.monotonic()
    with _recent_lock:
        hit = _recent.get(campaign_id)
    if hit is not None and now - hit[0] < settings().campaign_cache_seconds:
        return hit[1]
    campaign = find(campaign_id)
    if campaign is not None:
        with _recent_lock:
            _recent[campaign_id] = (now, campaign)
    return campaign


def current_or_404(campaign_id: str | None) -> Campaign:
    campaign = current(campaign_id)
    if campaign is None:
        raise NotFound(t("campaign {campaign_id!r} does not exist", campaign_id=campaign_id),
                       code="campaign_not_found", details={"campaign_id": campaign_id})
    return campaign


def _forget(campaign_id: str) -> None:
    with _recent_lock:
        _recent.pop(campaign_id, None)


@lru_cache(maxsize=256)
def _parse_rules(text: str) -> Rules:
    return Rules.model_validate_json(text)


def rules_of(campaign: Campaign) -> Rules:
    return _parse_rules(campaign.rules)


def usable_rules(campaign: Campaign) -> Rules | None:
    """The campaign's rules, or None if the stored text no longer validates (written before a
    rule was tightened, or by hand): such a campaign is treated as not running, never a 500."""
    try:
        return rules_of(campaign)
    except ValidationError:
        log.warning("campaign has unreadable rules", extra={"campaign_id": campaign.campaign_id})
        return None


DEFAULT_ZONE = "Asia/Shanghai"  # the rules' default, for a campaign gone or unreadable


def zone_of(campaign_id: str) -> str:
    """The campaign's time zone (its days for insight), never an error: a stream handler must not
    stop its shard over a campaign whose stored rules no longer validate."""
    campaign = current(campaign_id)
    campaign_rules = usable_rules(campaign) if campaign is not None else None
    return campaign_rules.time_zone if campaign_rules is not None else DEFAULT_ZONE


def is_running(campaign: Campaign, at: str | None = None) -> bool:
    at = at or clock.now_iso()
    if campaign.status != "active":
        return False
    try:
        if campaign.starts_at and at < clock.iso(clock.parse(campaign.starts_at)):
            return False
        if campaign.ends_at and at >= clock.iso(clock.parse(campaign.ends_at)):
            return False
    except (ValueError, OverflowError):
        log.warning("campaign has unreadable times", extra={"campaign_id": campaign.campaign_id})
        return False
    return usable_rules(campaign) is not None


def clear_caches() -> None:
    """Forget cached rules (tests recreate tables under the same campaign ids)."""
    _rules_at.cache_clear()
    _parse_rules.cache_clear()
    with _recent_lock:
        _recent.clear()
