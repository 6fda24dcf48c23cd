"""`GET /r/{code}`: record the click, then send the visitor on.

Cost per click: 1 read call (the code, with the share link in the same BatchGetItem; the
campaign comes from the short per-instance cache, campaigns.current) and exactly 1 write (the
Click item, clicks table). Counting happens later, per
stream batch (counters.py), so a viral code never turns into a hot item written per click.
Anything wrong — unknown or disabled code, campaign not running — goes to the default landing
with no attribution and no write.

A person following a link always gets the redirect (or the campaign's hosted page), never a
429 (a busy NAT shares one IP). Clicks over the per-IP limit still redirect with the referral
(`ref`) but are not recorded, so they count nowhere. Link-preview crawlers never get here: the
route answers them with the preview page (share/pages.py), and `record` refuses them too.
"""
from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..campaigns import service as campaigns
from ..campaigns.models import Campaign
from ..campaigns.rules import points_at_service
from ..core import clock, ratelimit
from ..core.config import settings
from ..share.crawlers import is_crawler
from ..store.base import MainItem
from . import rules
from .links import LINK_ID, landing
from .models import Click, Code, Link

# Clicks are kept for attribution (the campaign's window) plus this margin for late sign-ups
# and disputes; DynamoDB's TTL deletes them after that.
KEEP_AFTER_WINDOW = timedelta(days=30)
RATE_BUCKET = "clicks"


@dataclass(frozen=True)
class Target:
    """A code that may be followed now: its running campaign and (if the URL named it) its link."""
    code: Code
    campaign: Campaign
    link: Link | None

    @property
    def channel(self) -> str:
        return self.link.channel if self.link else "other"


@dataclass(frozen=True)
class Outcome:
    location: str
    click: Click | None  # None: nothing was recorded (default landing, over the limit)
    target: Target | None = None  # None: unknown, disabled or ended code


def fingerprint(source_ip: str, user_agent: str) -> str:
    """A keyed hash of IP + user agent: tells repeat clicks apart for fraud signals without ever
    storing the IP. The key is derived from the JWT secret (no separate setting exists yet), so
    rotating that secret starts a new fingerprint space."""
    key = ("click-fingerprint:" + settings().jwt_secret).encode()
    return hmac.new(key, f"{source_ip}\n{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]


def local_day(moment: datetime, time_zone: str) -> str:
    """>>> local_day(clock.parse("2026-11-23T17:30:00Z"), "Asia/Shanghai")
    '2026-11-24'"""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("Asia/Shanghai")
    return moment.astimezone(zone).date().isoformat()


def _read(code: str, link_id: str | None) -> tuple[Code | None, Link | None]:
    """The code and (if the URL names one) its link, in one call."""
    if link_id is None:
        try:
            return Code.get(*Code.key(code)), None
        except Code.DoesNotExist:
            return None, None
    found = {type(item): item for item in MainItem.batch_get([Code.key(code), Link.key(link_id)])}
    return found.get(Code), found.get(Link)


def resolve(raw_code: str, link_id: str | None) -> Target | None:
    """The code, its link and its campaign when following it makes sense (1 read call); None for
    an unknown or disabled code, a campaign not running, or a landing URL that loops back here."""
    code_text = rules.normalize_code(raw_code)
    if code_text is None:
        return None
    link_id = link_id if link_id and LINK_ID.fullmatch(link_id) else None
    code, link = _read(code_text, link_id)
    if code is None or code.status != "active":
        return None
    campaign = campaigns.current(code.campaign_id)
    if campaign is None or not campaigns.is_running(campaign):
        return None
    if points_at_service(campaign.landing_url, settings().public_base_url):
        return None  # never redirect a visitor back into /r/ (a loop), whatever is stored
    if link is not None and link.code.upper() != code.code.upper():
        link = None  # a link id pasted onto another code: count the code, not the link
    return Target(code, campaign, link)


def record(raw_code: str, link_id: str | None, source_ip: str, user_agent: str) -> Outcome:
    target = resolve(raw_code, link_id)
    if target is None:
        return Outcome(settings().default_landing_url, None)
    code, campaign, link = target.code, target.campaign, target.link
    landing_path = link.landing_path if link else None
    if is_crawler(user_agent) or ratelimit.exceeded(RATE_BUCKET, source_ip) is not None:
        return Outcome(landing(campaign.landing_url, landing_path, ref=code.code), None, target)
    now = clock.now()
    rules_ = campaigns.rules_of(campaign)
    click_id = uuid.uuid4().hex
    click = Click(*Click.key(click_id), click_id=click_id, code=code.code, referrer_id=code.member_id,
                  campaign_id=campaign.campaign_id, link_id=link.link_id if link else None,
                  channel=target.channel, at=clock.iso(now),
                  day=local_day(now, rules_.time_zone), fingerprint=fingerprint(source_ip, user_agent),
                  expires_at=clock.epoch(now + timedelta(days=rules_.attribution_window_days) + KEEP_AFTER_WINDOW))
    click.save()
    return Outcome(landing(campaign.landing_url, landing_path, ref=code.code, click=click_id), click, target)
