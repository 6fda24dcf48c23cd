"""Codes, links, clicks and click counters.

Access patterns:
- resolve a code (click, lookup, sign-up): GetItem pk=C#<CODE>, sk=CODE  (main)
- a member's code for a campaign: GetItem pk=M#<member>, sk=CODE#<campaign>  (main)
- a link: GetItem pk=L#<link_id>, sk=LINK  (main)
- a click (sign-up links it): GetItem pk=K#<click_id>, sk=CLICK  (clicks table; one write per click)
- click counters of a code / link: GetItem pk=CNT#<code>|CNT#L#<link>, sk=COUNTS  (main; stream-aggregated)
"""
from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute

from ..store.base import ClickItem, MainItem


class Code(MainItem, discriminator="code"):
    code = UnicodeAttribute()
    member_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    kind = UnicodeAttribute(default="generated")  # generated | vanity
    status = UnicodeAttribute(default="active")  # active | disabled
    created_at = UnicodeAttribute()

    @classmethod
    def key(cls, code: str) -> tuple[str, str]:
        return f"C#{code.upper()}", "CODE"


class MemberCode(MainItem, discriminator="member_code"):
    """The code a member currently shares in a campaign (older codes keep resolving)."""

    member_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    code = UnicodeAttribute()
    updated_at = UnicodeAttribute()

    @classmethod
    def key(cls, member_id: str, campaign_id: str) -> tuple[str, str]:
        return f"M#{member_id}", f"CODE#{campaign_id}"


class Link(MainItem, discriminator="link"):
    link_id = UnicodeAttribute()
    member_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    code = UnicodeAttribute()
    channel = UnicodeAttribute()
    landing_path = UnicodeAttribute(null=True)
    url = UnicodeAttribute()
    created_at = UnicodeAttribute()

    @classmethod
    def key(cls, link_id: str) -> tuple[str, str]:
        return f"L#{link_id}", "LINK"


class Click(ClickItem, discriminator="click"):
    click_id = UnicodeAttribute()
    code = UnicodeAttribute()
    campaign_id = UnicodeAttribute(null=True)
    link_id = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(default="other")
    at = UnicodeAttribute()
    fingerprint = UnicodeAttribute(null=True)  # salted hash of IP + user agent, never the raw values

    @classmethod
    def key(cls, click_id: str) -> tuple[str, str]:
        return f"K#{click_id}", "CLICK"


class ClickCounter(MainItem, discriminator="click_counter"):
    """Clicks of one code (or one link), by total, day and channel. Updated once per stream
    batch per code, never once per click; `seen` keeps the highest sequence number applied
    per stream shard so a redelivered batch adds nothing."""

    total = NumberAttribute(default=0)
    by_day = MapAttribute(default=dict)
    by_channel = MapAttribute(default=dict)
    seen = MapAttribute(default=dict)

    @classmethod
    def key(cls, code: str | None = None, link_id: str | None = None) -> tuple[str, str]:
        return (f"CNT#L#{link_id}" if link_id else f"CNT#{code}"), "COUNTS"
