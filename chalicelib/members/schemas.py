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


# A real day of the year (02-29 included: given on 02-28 in other years).
BIRTHDAY = r"^(0[1-9]|1[0-2])-(0[1-9]|1\d|2\d|3[01])$"
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


class PreferencesIn(Body):
    locale: Literal["zh-CN", "en"] | None = None
    channels: list[Literal["wechat", "sms", "app_push", "email"]] | None = Field(None, max_length=4)
    marketing_opt_in: bool | None = Field(None, strict=True)
    birthday: str | None = Field(None, pattern=BIRTHDAY, description="MM-DD; can be set once")

    @model_validator(mode="after")
    def _real_day(self) -> "PreferencesIn":
        if self.birthday and int(self.birthday[3:]) > _DAYS_IN_MONTH[int(self.birthday[:2])]:
            raise ValueError(f"birthday {self.birthday} is not a day of the year")
        if self.channels is not None and len(set(self.channels)) != len(self.channels):
            raise ValueError("channels must not repeat")
        return self
