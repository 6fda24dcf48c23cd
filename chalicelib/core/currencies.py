"""ISO 4217 currencies a shop can take money in, with their minor unit (digits after the point).

The X-codes for precious metals, special drawing rights, testing (`XTS`) and "no currency"
(`XXX`) are left out on purpose: an order in them is not money a referral reward can follow.
"""
from __future__ import annotations

_MINOR_UNITS = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF",
    3: "BHD IQD JOD KWD LYD OMR TND",
    4: "CLF UYW",
    2: ("AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD "
        "CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
        "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL "
        "MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK "
        "PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS "
        "TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"),
}

MINOR_UNITS: dict[str, int] = {code: digits for digits, codes in _MINOR_UNITS.items() for code in codes.split()}


def is_currency(code: str) -> bool:
    """>>> is_currency("CNY"), is_currency("XXX"), is_currency("ABC")
    (True, False, False)
    """
    return code in MINOR_UNITS
