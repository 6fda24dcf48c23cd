"""Share texts per channel, from the message catalogues, with the offer filled in.

Each channel gets what its platform shows or allows: a card title and description (WeChat
chats, link previews), a post to paste (Moments, Weibo with a topic), the code where the
platform discourages outside links (Xiaohongshu, Douyin), and a short SMS. The texts are
catalogue entries with the context `share:<channel>`, so a translator can word each channel
on its own; the brand's offer (campaign rule `offer`) and the advocate's masked name are filled in.
"""
from __future__ import annotations

from typing import Any

from ..i18n import t


def share_texts(channel: str, *, offer: str, inviter: str, code: str, url: str,
                locale: str | None = None) -> dict[str, str]:
    """`{title, description, text}` for `channel` in `locale` (default: the one in force)."""
    fill: dict[str, Any] = {"offer": offer, "inviter": inviter, "code": code, "url": url, "locale": locale}
    texts = _TEXTS.get(channel, _TEXTS["other"])(fill)
    return {"title": texts[0], "description": texts[1], "text": texts[2]}


def _wechat_friend(f):
    return (t("{inviter} sent you a gift: {offer}", context="share:wechat_friend", **f),
            t("Tap to claim it before it is gone.", context="share:wechat_friend", locale=f["locale"]),
            t("I shop here and think you will like it. {offer} for you: {url}", context="share:wechat_friend", **f))


def _wechat_moments(f):
    return (t("My friends get {offer}", context="share:wechat_moments", **f),
            t("Tap to claim it before it is gone.", context="share:wechat_moments", locale=f["locale"]),
            t("Found something good. Friends get {offer}: {url}", context="share:wechat_moments", **f))


def _weibo(f):
    return (t("{offer}, invited by {inviter}", context="share:weibo", **f),
            t("Claim it with my invitation link.", context="share:weibo", locale=f["locale"]),
            t("#GoodFinds# {offer} with my invitation: {url}", context="share:weibo", **f))


def _xiaohongshu(f):
    return (t("{offer} for new friends", context="share:xiaohongshu", **f),
            t("Search the brand's mini-program and enter code {code}.", context="share:xiaohongshu", **f),
            t("A find worth sharing: {offer} for new friends. Enter my code {code} in the brand's mini-program.",
              context="share:xiaohongshu", **f))


def _douyin(f):
    return (t("{offer} with my code", context="share:douyin", **f),
            t("Enter code {code} in the brand's mini-program.", context="share:douyin", **f),
            t("{offer}: enter my code {code} in the brand's mini-program.", context="share:douyin", **f))


def _qq(f):
    return (t("{inviter} sent you a gift: {offer}", context="share:qq", **f),
            t("Tap to claim it before it is gone.", context="share:qq", locale=f["locale"]),
            t("{offer} for you: {url}", context="share:qq", **f))


def _sms(f):
    return (t("{offer} from {inviter}", context="share:sms", **f),
            t("Open the link to claim it.", context="share:sms", locale=f["locale"]),
            t("{inviter} sent you {offer}: {url}", context="share:sms", **f))


def _poster(f):
    return (t("{offer}", context="share:poster", **f),
            t("Scan the code to claim it", context="share:poster", locale=f["locale"]),
            t("{inviter} invites you. Scan the code for {offer}.", context="share:poster", **f))


def _other(f):
    return (t("{inviter} sent you a gift: {offer}", context="share:other", **f),
            t("Tap to claim it before it is gone.", context="share:other", locale=f["locale"]),
            t("{offer} for you: {url}", context="share:other", **f))


_TEXTS = {"wechat_friend": _wechat_friend, "wechat_moments": _wechat_moments, "weibo": _weibo,
          "xiaohongshu": _xiaohongshu, "douyin": _douyin, "qq": _qq, "sms": _sms, "poster": _poster,
          "other": _other}
