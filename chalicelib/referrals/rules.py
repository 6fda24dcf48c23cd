"""Pure rules for codes: the alphabet, generation, vanity validation. No I/O."""
from __future__ import annotations

import re
import secrets
from typing import Callable

from ..i18n import t

# No look-alikes: 0/O, 1/I/L are left out, so a code read aloud or off a poster survives.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 7
VANITY_PATTERN = re.compile(r"^[A-Z0-9]{4,16}$")
RESERVED = {"ADMIN", "ROOT", "SUPPORT", "HELP", "STAFF", "OFFICIAL", "SYSTEM", "TEST", "NULL", "NONE",
            "REFERRAL", "BRAND", "FREE", "WECHAT", "ALIPAY", "DEFAULT", "API", "LOGIN"}
# Brand and platform names nobody may put in a vanity code (anywhere in it: NIKE2026 too); ops
# add more with POST /v1/ops/reserved-codes.
BRANDS = {"NIKE", "ADIDAS", "APPLE", "IPHONE", "HUAWEI", "XIAOMI", "OPPO", "VIVO", "TMALL", "TAOBAO", "ALIBABA",
          "ALIPAY", "JDCOM", "JINGDONG", "MEITUAN", "ELEME", "PINDUODUO", "DOUYIN", "TIKTOK", "KUAISHOU",
          "WEIBO", "WEIXIN", "WECHAT", "TENCENT", "BAIDU", "LUCKIN", "HEYTEA", "STARBUCKS", "MIXUE", "NAYUKI",
          "UNIQLO", "ZARA", "IKEA", "COSTCO", "WALMART", "SAMSUNG", "LEGO", "DISNEY", "GUCCI", "CHANEL", "DIOR",
          "LOUISVUITTON", "HERMES", "ANTA", "LINING", "POPMART", "SHEIN", "TEMU", "AMAZON", "GOOGLE", "MCDONALDS",
          "KFC", "COCACOLA", "PEPSI", "XIAOHONGSHU", "BILIBILI", "NETEASE", "BYTEDANCE"}
OFFENSIVE = {"FUCK", "SHIT", "CUNT", "NIGGER", "FAGGOT", "BITCH", "WHORE", "SLUT", "NAZI", "HITLER",
             "RAPE", "SB250", "CAONIMA", "NMSL", "SHABI", "TMD"}
# Digit swaps people use to slip a word past a filter (SH1T, 5LUT) are undone before matching.
_LEET = str.maketrans({"0": "O", "1": "I", "3": "E", "4": "A", "5": "S", "7": "T", "8": "B"})


class VanityRejected(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def is_offensive(code: str) -> bool:
    """Offensive words anywhere in the code, also behind digit swaps.

    >>> is_offensive("SH1TCODE"), is_offensive("SB250"), is_offensive("LILY2026")
    (True, True, False)
    """
    code = code.upper()
    return any(word in variant for variant in (code, code.translate(_LEET)) for word in OFFENSIVE)


def generate_code(randbelow: Callable[[int], int] = secrets.randbelow, length: int = CODE_LENGTH) -> str:
    """A random code from ALPHABET (31^7 ≈ 2.75e10 codes) that is neither reserved nor offensive
    (the alphabet can spell e.g. FUCK; such draws are simply drawn again).

    >>> code = generate_code()
    >>> len(code) == CODE_LENGTH and set(code) <= set(ALPHABET)
    True
    """
    while True:
        code = "".join(ALPHABET[randbelow(len(ALPHABET))] for _ in range(length))
        if code not in RESERVED and not is_offensive(code):
            return code


def normalize_code(raw: str | None) -> str | None:
    """A code as typed or found in a URL → its canonical (upper-case) form, or None when it
    cannot be a code at all (saves a read on junk)."""
    code = (raw or "").strip().upper()
    return code if VANITY_PATTERN.fullmatch(code) else None


def is_reserved(code: str, extra_words: frozenset[str] = frozenset()) -> bool:
    """>>> is_reserved("ADMIN"), is_reserved("NIKE2026"), is_reserved("ACMESHOP", frozenset({"ACME"}))
    (True, True, True)
    >>> is_reserved("LILY2026")
    False
    """
    return code in RESERVED or any(word in code for word in BRANDS | extra_words)


def normalize_vanity(raw: str, extra_reserved: frozenset[str] = frozenset()) -> str:
    """Upper-case and check a vanity code; raises VanityRejected with a reason."""
    code = (raw or "").strip().upper()
    if not VANITY_PATTERN.fullmatch(code):
        raise VanityRejected("format", t("a vanity code is 4 to 16 letters A-Z or digits 0-9"))
    if is_reserved(code, extra_reserved):
        raise VanityRejected("reserved", t("{code} is reserved", code=code))
    if is_offensive(code):
        raise VanityRejected("offensive", t("that code is not allowed"))
    return code
