"""The import call and its rows. Rows use the live API's field types (ids, currency, amounts,
dates range-checked and not in the future), so an import accepts what the live API accepts."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ..core.validation import Body, FactTime, Id, ShortText
from ..facts.schemas import PurchaseIn

MAX_ROWS = 1000


class ImportIn(Body):
    kind: Literal["members", "codes", "purchases"]
    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS,
                                       description="checked one by one: a bad row is rejected, not the call")
    apply_rewards: bool = Field(False, strict=True,
                                description="let this history earn rewards as if it had happened here")


class MemberRow(Body):
    """Key: member_id (the brand's id, kept as ours: backend sign-ups and purchases name it)."""

    member_id: Id
    display_name: ShortText | None = None
    openid: Id | None = Field(None, description="the member's login subject: logging in with it finds this member")
    provider: Literal["wechat", "dev"] = "wechat"
    phone_hash: str | None = Field(None, pattern=r"^[A-Fa-f0-9]{16,128}$")
    joined_at: FactTime
    referrer_id: Id | None = None
    referred_at: FactTime | None = Field(None, description="when the referral was made; joined_at by default")
    campaign_id: Id | None = Field(None, description="the referral's campaign; `default` when left out")

    @model_validator(mode="after")
    def _referral(self) -> "MemberRow":
        if self.referrer_id is None and (self.referred_at or self.campaign_id):
            raise ValueError("referred_at and campaign_id describe a referral: give referrer_id too")
        if self.referred_at and self.referred_at < self.joined_at:
            raise ValueError("referred_at lies before joined_at")
        return self


class CodeRow(Body):
    """Key: code. Codes are 4-16 of A-Z 0-9; vanity codes also pass the reserved-word rules."""

    code: str = Field(min_length=1, max_length=64)
    member_id: Id
    campaign_id: Id | None = None
    vanity: bool = Field(False, strict=True)
    created_at: FactTime | None = None


class PurchaseRow(PurchaseIn):
    """Key: order_id. The live purchase fact, with its date required (history has one)."""

    occurred_at: FactTime


ROW_MODELS = {"members": MemberRow, "codes": CodeRow, "purchases": PurchaseRow}
KEY_FIELD = {"members": "member_id", "codes": "code", "purchases": "order_id"}
