"""A member's own share link with its share texts (GET /v1/links/{link_id}).

Reads: the link, then its campaign and its owner in one BatchGetItem (2 calls, about 1.5 RCU).
Another member's link answers exactly like an unknown one (404 link_not_found): link ids are
not secret (they are in shared URLs), so no existence may leak through this route.
"""
from __future__ import annotations

from typing import Any

from .. import i18n
from ..campaigns import service as campaigns
from ..campaigns.models import Campaign
from ..core.errors import NotFound
from ..core.masking import mask_name
from ..i18n import t
from ..members.models import Member
from ..referrals import links
from ..store.base import MainItem
from .texts import share_texts


def own_link(member_id: str, link_id: str) -> dict[str, Any]:
    link = links.get(link_id)
    if link.member_id != member_id:
        raise NotFound(t("no such link"), code="link_not_found")
    found = {type(item): item for item in MainItem.batch_get([Campaign.key(link.campaign_id),
                                                              Member.key(link.member_id)])}
    campaign, owner = found.get(Campaign), found.get(Member)
    locale = i18n.prefer(owner.locale if owner else None)
    offer = campaigns.offer_in(campaign, locale) if campaign else ""
    share = share_texts(link.channel, offer=offer, inviter=mask_name(owner.display_name if owner else ""),
                        code=link.code, url=link.url)
    return {**links.public(link), "share": share, "locale": locale}
