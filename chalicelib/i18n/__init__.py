"""Texts in zh-CN and en from gettext message catalogues.

Catalogues are `locales/<lang>/LC_MESSAGES/messages.po` (edited by people) and the `.mo` beside
each (compiled by `python -m tools.i18n compile`; committed, because the Lambda code directory
is read-only and the runtime then needs only the standard library's `gettext`). Message ids are
the English texts with `{named}` placeholders; `t()` translates into the locale in force and
fills them in. Share texts and other texts that depend on a channel use a gettext context
(`t(..., context="share:weibo")`).

The locale in force is a context variable: the HTTP wrapper sets it per request from
`Accept-Language` (`start_request`), else zh-CN; a route that reads the member anyway switches to
the member's preference when the header named no supported language (`prefer`). Stream handlers
and schedules use `locale_scope(member.locale)`.
"""
from __future__ import annotations

import contextvars
import gettext
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"
LOCALE_DIR = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default=DEFAULT_LOCALE)
_asked: contextvars.ContextVar[bool] = contextvars.ContextVar("locale_asked", default=False)  # by Accept-Language


def _gettext_name(locale: str) -> str:
    return locale.replace("-", "_")


@lru_cache(maxsize=None)
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of a supported locale (for Jinja2's i18n extension, too)."""
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[_gettext_name(locale)])


def current_locale() -> str:
    return _current.get()


@contextmanager
def locale_scope(locale: str | None) -> Iterator[str]:
    """Texts made inside are in `locale` (a supported one; else the default)."""
    chosen = locale if locale in LOCALES else DEFAULT_LOCALE
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


def set_locale(locale: str | None) -> contextvars.Token:
    return _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def reset_locale(token: contextvars.Token) -> None:
    _current.reset(token)


def start_request(accept_language: str | None) -> tuple[contextvars.Token, contextvars.Token]:
    """The locale of one HTTP request: its Accept-Language, else zh-CN until `prefer` learns the
    member's preference. Give the tokens back to `end_request`."""
    asked = from_header(accept_language)
    return _current.set(asked or DEFAULT_LOCALE), _asked.set(asked is not None)


def end_request(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    _current.reset(tokens[0])
    _asked.reset(tokens[1])


def asked_by_header() -> bool:
    """Whether this request's Accept-Language named a supported language (then no preference
    needs reading)."""
    return _asked.get()


def prefer(preference: str | None) -> str:
    """A route that has read the member calls this: their preference counts unless the request's
    Accept-Language named a supported language (which wins). Returns the locale in force."""
    if not _asked.get() and preference in LOCALES:
        _current.set(preference)
    return _current.get()


def t(message: str, /, *, context: str | None = None, locale: str | None = None, **params: Any) -> str:
    """`message` in the locale in force (or `locale`), placeholders filled from `params`.

    >>> t("no such route", locale="en")
    'no such route'
    """
    catalogue = translations(locale or _current.get())
    text = catalogue.pgettext(context, message) if context else catalogue.gettext(message)
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):  # a translation naming a placeholder wrongly: the source text
        return message.format(**params)


def negotiate(accept_language: str | None, preference: str | None = None) -> str:
    """The locale for a caller: the best supported language in `Accept-Language`, else the
    member's `preference`, else zh-CN. `zh`, `zh-Hans`, `zh-TW` count as Chinese; `en-*` as en.

    >>> negotiate("en-US,en;q=0.9,zh-CN;q=0.8")
    'en'
    >>> negotiate("fr, zh;q=0.5")
    'zh-CN'
    >>> negotiate(None, "en")
    'en'
    >>> negotiate("en;q=0, zh-CN")
    'zh-CN'
    """
    return from_header(accept_language) or (preference if preference in LOCALES else DEFAULT_LOCALE)


def from_header(accept_language: str | None) -> str | None:
    """The best supported language `Accept-Language` names (None: it names none).

    >>> from_header("fr-FR, en;q=0.5"), from_header("fr-FR"), from_header(None)
    ('en', None, None)
    """
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, rest = part.strip().partition(";")
        quality = 1.0
        for param in rest.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = _supported(tag.strip().lower())
        if locale and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else None


def _supported(tag: str) -> str | None:
    if tag == "zh" or tag.startswith("zh-"):
        return "zh-CN"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None
