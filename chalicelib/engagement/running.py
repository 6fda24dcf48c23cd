"""What every engagement call checks first: a running campaign and a caller who exists."""
from __future__ import annotations

from ..campaigns import service as campaigns
from ..campaigns.models import Campaign
from ..core.errors import NotFound, Unauthorized
from ..i18n import t
from ..members.models import Member


def running_campaign(campaign_id: str | None) -> Campaign:
    """The campaign if it is running now; unknown, ended and not yet started are one 404."""
    campaign = campaigns.current(campaign_id)
    if campaign is None or not campaigns.is_running(campaign):
        raise NotFound(t("no running campaign with this id"), code="campaign_not_found",
                       details={"campaign_id": campaign_id or campaigns.DEFAULT_ID})
    return campaign


def member_or_401(member_id: str, consistent: bool = False) -> Member:
    member = Member.find(member_id, consistent=consistent)
    if member is None or member.erased_at:  # a token minted before the erasure acts for nobody
        raise Unauthorized(t("this token's member does not exist; log in again"), code="unknown_member")
    return member
