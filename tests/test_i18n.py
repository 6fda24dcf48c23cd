"""Texts in zh-CN (the default) and en: catalogues complete, the caller's language chosen."""
from __future__ import annotations

import json

import pytest

from chalicelib import i18n
from chalicelib.i18n import negotiate, t
from tests.helpers import token


def test_every_text_the_code_uses_is_translated_in_both_languages():
    """A new t("…") without its zh-CN and en entries, or a stale .mo, fails here."""
    from tools import i18n as catalogues

    assert catalogues.problems() == []


@pytest.mark.parametrize("header, preference, expected", [
    (None, None, "zh-CN"), ("", "en", "en"), ("en-US,en;q=0.9", None, "en"), ("zh-TW", "en", "zh-CN"),
    ("fr-FR, en;q=0.3", None, "en"), ("fr-FR", "en", "en"), ("en;q=0, zh;q=0.1", None, "zh-CN"),
    ("en;q=nonsense", None, "zh-CN"), ("zh-CN;q=0.5, en;q=0.8", None, "en"),
])
def test_the_best_supported_language_wins(header, preference, expected):
    assert negotiate(header, preference) == expected


def test_placeholders_are_filled_in_the_chosen_language():
    assert t("body exceeds {limit} bytes", locale="en", limit=10) == "body exceeds 10 bytes"
    assert t("body exceeds {limit} bytes", locale="zh-CN", limit=10) == "请求体超过 10 字节"
    with i18n.locale_scope("en"):
        assert t("invalid body") == "invalid body"
    assert t("invalid body") == "请求体无效"  # the scope ended
    assert t("a text no catalogue has", locale="en") == "a text no catalogue has"


@pytest.mark.parametrize("accept, message, language", [
    (None, "请求体必须是 JSON 对象", "zh-CN"),
    ("en-GB,en;q=0.9", "body must be a JSON object", "en"),
    ("zh-CN,zh;q=0.9,en;q=0.8", "请求体必须是 JSON 对象", "zh-CN"),
])
def test_error_messages_follow_accept_language(client, accept, message, language):
    headers = {"Accept-Language": accept} if accept else {}
    response = client.request("PUT", "/v1/members/me/preferences", token=token("m-lang"), raw=b"[1]", headers=headers)
    assert response.status_code == 422
    assert json.loads(response.body)["error"]["message"] == message
    assert response.headers["Content-Language"] == language
    assert "Accept-Language" in response.headers["Vary"]
