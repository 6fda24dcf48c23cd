"""Request bodies of the member endpoints."""
from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from ..core.validation import Body, Id, FactTime, ShortText


class ReferralIn(Body):
    code: str = Field(min_length=4, max_length=16, pattern=r"^[A-Za-z0-9]+$")
    click_id: Id | None = None


class LoginIn(Body):
    # The document states the provider-dependent requirement that `_credentials` enforces.
    model_config = ConfigDict(**Body.model_config, json_schema_extra={"allOf": [
        {"if": {"properties": {"provider": {"const": provider}}},
         "then": {"required": [needs], "properties": {needs: {"type": "string"}}}}
        for provider, needs in (("wechat", "code"), ("dev", "openid"))
    ]})

    provider: Literal["wechat", "dev"]
    code: str | None = Field(None, min_length=1, max_length=256)
    openid: Id | None = None
    display_name: ShortText | None = None
    referral: ReferralIn | None = None
    device_id: Id | None = None

    @model_validator(mode="after")
    def _credentials(self) -> "LoginIn":
        if self.provider == "wechat" and not self.code:
            raise ValueError("provider 'wechat' needs the `code` from wx.login()")
        if self.provider == "dev" and not self.openid:
            raise ValueError("provider 'dev' needs an `openid`")
        return self


class SignupIn(Body):
    member_id: Id
    display_name: ShortText | None = None
    referral: ReferralIn | None = None
    device_id: Id | None = None
    phone_hash: str | None = Field(None, pattern=r"^[A-Fa-f0-9]{16,128}$")
    occurred_at: FactTime | None = None
