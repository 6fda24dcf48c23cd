"""Codes, links, clicks and click counters.

Access patterns:
- resolve a code (click, lookup, sign-up): GetItem pk=C#<CODE>, sk=CODE  (main)
- every code a member ever held (export, erasure): Query gsi1 gsi1pk=CODES#<member>
- a member's code for a campaign: GetItem pk=M#<member>, sk=CODE#<campaign>  (main)
- a link: GetItem pk=L#<link_id>, sk=LINK  (main)
- a member's links (export, erasure): Query gsi1 gsi1pk=LINKS#<member>
- a click (sign-up links it): GetItem pk=K#<click_id>, sk=CLICK  (clicks table; one write per click)
- click counters of a code / link / campaign: GetItem pk=CNT#<code>|CNT#L#<link>|CNT#CAMP#<campaign>,
  sk=COUNTS  (main; stream-aggregated; codes are [A-Z0-9] only, so the three never collide)
"""
from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute, UnicodeSetAttribute

from ..store.base import ClickItem, ControlItem, MainItem


class Code(MainItem, discriminator="code"):
    code = UnicodeAttribute()
    member_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    kind = UnicodeAttribute(default="generated")  # generated | vanity
    status = UnicodeAttribute(default="active")  # active | disabled
    created_at = UnicodeAttribute()
    # A vanity code its owner replaced: still theirs (it resolves to them) until this time, then
    # anyone may claim it.
    released_after = UnicodeAttribute(null=True)
    import_hash = UnicodeAttribute(null=True)  # an imported code's row digest (imports/codes.py)

    @classmethod
    def key(cls, code: str) -> tuple[str, str]:
        return f"C#{code.upper()}", "CODE"

    @staticmethod
    def owner_keys(member_id: str, campaign_id: str, code: str) -> dict[str, str]:
        """The index entry that finds a member's codes (personal-data export and erasure)."""
        return {"gsi1pk": f"CODES#{member_id}", "gsi1sk": f"{campaign_id}#{code}"}


class MemberCode(MainItem, discriminator="member_code"):
    """The code a member currently shares in a campaign (older codes keep resolving)."""

    member_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute()
    code = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    vanity_code = UnicodeAttribute(null=True)  # the one active vanity code in this campaign
    vanity_cooling_until = UnicodeAttribute(null=True)  # the replaced vanity code is held until then

    @classmethod
    def key(cls, member_id: str, campaign_id: str) -> tuple[str, str]:
        return f"M#{member_id}", f"CODE#{campaign_id}"


class ReservedWords(MainItem, discriminator="reserved_words"):
    """Words ops added to the built-in reserved list (brand names...). One item: read once per
    vanity request. Access pattern: get by its fixed key."""

    words = UnicodeSetAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)

    @classmethod
    def key(cls) -> tuple[str, str]:
        return "RESERVED#CODES", "WORDS"


class LinkQuota(ControlItem, discriminator="link_quota"):
    """Links a member created on one (UTC) day; a conditional ADD that never passes the cap."""

    links = NumberAttribute(default=0)

    @classmethod
    def key(cls, member_id: str, day: str) -> tuple[str, str]:
        return f"LINKQ#{member_id}", day


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

    @staticmethod
    def owner_keys(member_id: str, created_at: str, link_id: str) -> dict[str, str]:
        """The index entry that finds a member's links (personal-data export and erasure)."""
        return {"gsi1pk": f"LINKS#{member_id}", "gsi1sk": f"{created_at}#{link_id}"}


class Click(ClickItem, discriminator="click"):
    """Written once, by `GET /r/{code}`; never updated (the stream counts INSERTs only)."""

    click_id = UnicodeAttribute()
    code = UnicodeAttribute()
    referrer_id = UnicodeAttribute(null=True)  # the code's owner, so sign-up needs no second lookup
    campaign_id = UnicodeAttribute(null=True)
    link_id = UnicodeAttribute(null=True)
    channel = UnicodeAttribute(default="other")
    at = UnicodeAttribute()
    day = UnicodeAttribute(null=True)  # YYYY-MM-DD in the campaign's time zone (counters need no read)
    fingerprint = UnicodeAttribute(null=True)  # salted hash of IP + user agent, never the raw values

    @classmethod
    def key(cls, click_id: str) -> tuple[str, str]:
        return f"K#{click_id}", "CLICK"


class ClickCounter(ControlItem, discriminator="click_counter"):
    """Clicks of one code (or link, or campaign), by total, day and channel. Updated once per
    stream batch per counter, never once per click (see counters.py). Kept in the `control`
    table, which has no stream: a counter update must not wake the main table's handlers.

    `seen` maps a stream lane (a hash of stream ARN + shard) to the highest sequence number
    applied from it, zero-padded to 40 digits: stream sequence numbers have up to 40 digits and
    a DynamoDB Number only 38, while equal-length digit strings compare like the integers.
    `seen_at` (lane → epoch seconds) lets lanes whose records the stream no longer keeps be
    dropped, so the item does not grow with every shard the table ever had."""

    total = NumberAttribute(default=0)
    by_day = MapAttribute(default=dict)
    by_channel = MapAttribute(default=dict)
    seen = MapAttribute(default=dict)
    seen_at = MapAttribute(default=dict)

    @classmethod
    def key(cls, code: str | None = None, link_id: str | None = None,
            campaign_id: str | None = None) -> tuple[str, str]:
        if link_id:
            return f"CNT#L#{link_id}", "COUNTS"
        if campaign_id:
            return f"CNT#CAMP#{campaign_id}", "COUNTS"
        return f"CNT#{code}", "COUNTS"


class Conversion(MainItem, discriminator="conversion"):
    """One converted referral, under its referrer, sorted by (converted_at, referee): the order
    that ranks an advocate's conversions. Written and deleted in the same transaction as the
    referrer's `referrals_converted`, so a consistent query of these items is the truth.

    Access patterns (main table, strongly consistent):
    - a conversion's rank: Query pk=M#<referrer>, sk between CONV# and its own sk (Select COUNT)
    - the conversions after one (re-ranking): Query pk=M#<referrer>, sk > its sk, begins_with CONV#
    """

    referrer_id = UnicodeAttribute()
    referee_id = UnicodeAttribute()
    converted_at = UnicodeAttribute()
    order_id = UnicodeAttribute()
    campaign_id = UnicodeAttribute(null=True)  # the referral's campaign and version: whose levels apply
    campaign_version = NumberAttribute(null=True)
    commission_bps = NumberAttribute(null=True)  # the rate of the level reached at this conversion's rank
    level = UnicodeAttribute(null=True)

    @classmethod
    def key(cls, referrer_id: str, converted_at: str, referee_id: str) -> tuple[str, str]:
        return f"M#{referrer_id}", f"CONV#{converted_at}#{referee_id}"
