"""WeChat mini-program login: exchange the `code` from wx.login() for the member's openid
through the code-to-session call. Base URL, app id and secret come from configuration.
"""
from __future__ import annotations

import http.client
import json
import urllib.parse
import urllib.request

from ..core.config import settings
from ..core.errors import ApiError, Unauthorized, Unprocessable
from ..i18n import t

TIMEOUT_SECONDS = 3.0
# errcodes that mean the member's code is bad (not our configuration or WeChat being down)
BAD_CODE_ERRORS = {40029, 40163, 40226}


class UpstreamError(ApiError):
    status, code = 502, "wechat_unavailable"


def code_to_session(js_code: str) -> dict:
    """→ {"openid": ..., "unionid"?: ...}; raises Unauthorized for a bad code."""
    cfg = settings()
    if not cfg.wechat_app_id or not cfg.wechat_app_secret:
        raise Unprocessable(t("the wechat login provider is not enabled on this stage"), code="provider_not_enabled")
    query = urllib.parse.urlencode({"appid": cfg.wechat_app_id, "secret": cfg.wechat_app_secret,
                                    "js_code": js_code, "grant_type": "authorization_code"})
    url = f"{cfg.wechat_api_base}/sns/jscode2session?{query}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (configured https URL)
            answer = json.loads(response.read() or b"{}")
    # OSError covers URLError/HTTPError, timeouts and a dropped connection (RemoteDisconnected);
    # HTTPException a garbled status line; ValueError a body that is not JSON.
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise UpstreamError(t("WeChat did not answer: {problem}", problem=type(exc).__name__)) from exc
    if not isinstance(answer, dict):
        raise UpstreamError(t("WeChat answered something other than a JSON object"))
    try:
        errcode = int(answer.get("errcode") or 0)
    except (TypeError, ValueError):
        raise UpstreamError(t("WeChat answered an unreadable errcode")) from None
    if errcode in BAD_CODE_ERRORS:
        raise Unauthorized(t("the WeChat login code is invalid or was already used"), code="invalid_login_code")
    if errcode:
        raise UpstreamError(t("WeChat refused the login (errcode {errcode})", errcode=errcode),
                            details={"errcode": errcode})
    if not isinstance(answer.get("openid"), str) or not answer["openid"]:
        raise UpstreamError(t("WeChat answered without an openid"))
    return answer
