"""The authoritative checks behind every identifier the masking engine reports.

Detectors find candidates with cheap patterns; these functions decide. They run once per candidate in a
50k message/s pipeline, so each one is a few string operations on a string the caller has already cut
out and (for numbers) passed through :func:`normalize_digits`: no regex scanning, no per-call compiling,
no exceptions for garbage (anything that is not the right shape is simply ``False``). Tables are built
once at import.

The libraries named in the house style (python-stdnum, schwifty, phonenumbers) are the oracles the tests
compare against; where a check here deliberately differs from its oracle the docstring says so and a
test pins the difference:

* GB 11643 resident IDs are checked down to the *province* (GB/T 2260 first two digits), not the county:
  a real ID keeps the county code it was issued with after the county is abolished or renumbered, and
  stdnum's county table (built from Wikipedia) rejects some of those. 83 (Taiwan residents' residence
  permits, issued since 2018 in the same format) is accepted next to 71/81/82. Birth dates must lie in
  1900-01-01 .. today (stdnum has no range; the standard's own 1880 example is therefore rejected).
* UnionPay (62) cards are issued without a Luhn digit in places; :func:`payment_card` stays Luhn-only
  (a checksum proves the number) and :func:`unionpay_non_luhn` names the weaker case so a detector can
  give it a lower score and demand context.
* US ITINs: the IRS added groups 50-65 in 2011; stdnum still rejects them. 457-55-5462 (stdnum's
  "blacklist") is a real, publicised SSN and stays valid: masking it costs nothing.
* IBANs: the ISO 13616 registry plus the published "aspirational" countries (the same set schwifty
  accepts), with the BBAN structure checked and check digits 00/01/99 refused (ISO 7064 never yields
  them, although they satisfy mod 97 = 1).
* Chinese permits and passports have no check digit and no public standard; the shapes below come from
  the issuing authorities' announcements as summarised on zh.wikipedia (see each docstring), and the
  all-digit forms (Taiwan compatriot permit) need context, so they are opt-in.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import date
from types import MappingProxyType

import phonenumbers
from phonenumbers.phonenumberutil import NumberParseException

from appliance.masking.entities import EntityType
from appliance.masking.errors import UnknownEntityType

__all__ = [
    "CHECKSUM_TYPES",
    "GB11643_CHECK_CHARS",
    "USCC_ALPHABET",
    "VALIDATOR_NAMES",
    "card_network",
    "check",
    "cn_landline",
    "cn_mobile",
    "cn_passport",
    "cn_permit",
    "cn_plate",
    "cn_resident_id",
    "cn_resident_id_birth",
    "cn_uscc",
    "date_of_birth",
    "date_plausible_birth",
    "email",
    "gb11643_check_char",
    "iban",
    "iban_check_digits",
    "icao_check_digit",
    "ip_address",
    "ipv4",
    "ipv6",
    "luhn",
    "luhn_check_digit",
    "mac",
    "normalize_digits",
    "parse_date",
    "passport",
    "payment_card",
    "phone",
    "unionpay_non_luhn",
    "us_itin",
    "us_ssn",
    "uscc_check_char",
]

_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_UPPER_NO_IO = frozenset("ABCDEFGHJKLMNPQRSTUVWXYZ")
_ALNUM_NO_IO = _UPPER_NO_IO | _DIGITS

# --------------------------------------------------------------------------------------------------------
# normalisation

# Separators people type inside numbers (ASCII, full-width, CJK and typographic variants). '+' is kept:
# it carries meaning for phone numbers.
_SEPARATORS = " \t\u00a0\u2009\u202f\u3000-\u2010\u2011\u2012\u2013\u2014\u2015\u2212·\u30fb\u2022.()"


def _build_normalize_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {ord(c): None for c in _SEPARATORS}
    for cp in range(0xFF01, 0xFF5F):  # the full-width ASCII block maps 1:1 onto U+0021..U+007E
        ascii_char = chr(cp - 0xFEE0)
        table[cp] = None if ascii_char in _SEPARATORS else ascii_char
    return table


_NORMALIZE = _build_normalize_table()
_WIDTH_ONLY = {cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)} | {0x3000: " "}


def normalize_digits(s: str) -> str:
    """Fold full-width characters to ASCII and drop the separators people put inside numbers.

    Customer-service text arrives from Chinese IMEs (full-width ``１３８``, ideographic spaces) and from
    people who group digits (``4111 1111-1111``, ``(010) 1234·5678``); the validators take the bare form.
    One ``str.translate`` with a prebuilt table, so it costs about as much as a copy. Not for e-mail or
    IP addresses, whose dots matter.
    """
    return s.translate(_NORMALIZE)


# --------------------------------------------------------------------------------------------------------
# dates


_DAYS_IN_MONTH = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_IMPORT_YEAR = date.today().year


def _real_date(y: int, m: int, d: int) -> bool:
    if m < 1 or m > 12 or d < 1:
        return False
    if m == 2 and d == 29:
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return d <= _DAYS_IN_MONTH[m]


def date_plausible_birth(y: int, m: int, d: int) -> bool:
    """A real calendar date between 1900-01-01 and today.

    The lower bound is where GB 11643's own 1880 example stops being plausible for a living customer; the
    upper bound is checked against the clock only for years not already past at import, so the common
    case makes no system call.
    """
    if y < 1900 or not _real_date(y, m, d):
        return False
    if y < _IMPORT_YEAR:
        return True
    return date(y, m, d) <= date.today()


_MONTHS = {
    name: i
    for i, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_DATE_YMD = re.compile(r"(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})")
_DATE_CN = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?")
_DATE_XXY = re.compile(r"(\d{1,2})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{4})")
_DATE_MDY = re.compile(r"([A-Za-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_DATE_DMY = re.compile(r"(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]{3,9})\.?,?\s+(\d{4})")


def parse_date(s: str) -> date | None:
    """Read the date forms customers type; ``None`` for anything else or an impossible date.

    ``YYYY-MM-DD`` (also ``/`` and ``.``), ``YYYY年M月D日``, ``March 7, 1990``, ``7 March 1990`` and the
    all-numeric ``xx/xx/YYYY``: month first (US) unless the first number cannot be a month, and
    ``DD.MM.YYYY`` (dots) day first as in Europe. Full-width digits are folded first.
    """
    s = s.translate(_WIDTH_ONLY).strip()
    if not s or len(s) > 40:
        return None
    y = m = d = 0
    if match := _DATE_YMD.fullmatch(s):
        y, m, d = int(match[1]), int(match[3]), int(match[4])
    elif match := _DATE_CN.fullmatch(s):
        y, m, d = int(match[1]), int(match[2]), int(match[3])
    elif match := _DATE_XXY.fullmatch(s):
        a, b, y = int(match[1]), int(match[3]), int(match[4])
        m, d = (b, a) if match[2] == "." or a > 12 else (a, b)
    elif match := _DATE_MDY.fullmatch(s):
        m, d, y = _MONTHS.get(match[1].lower(), 0), int(match[2]), int(match[3])
    elif match := _DATE_DMY.fullmatch(s):
        d, m, y = int(match[1]), _MONTHS.get(match[2].lower(), 0), int(match[3])
    else:
        return None
    if y < 1 or not _real_date(y, m, d):
        return None
    return date(y, m, d)


def date_of_birth(s: str) -> bool:
    """A date a customer could have been born on, in any form :func:`parse_date` reads."""
    parsed = parse_date(s)
    return parsed is not None and date_plausible_birth(parsed.year, parsed.month, parsed.day)


# --------------------------------------------------------------------------------------------------------
# China: resident identity number (GB 11643-1999)

# GB/T 2260 province-level codes; 83 = residence permits for Taiwan residents (2018), issued in GB 11643
# format next to 81 (Hong Kong) and 82 (Macau).
_CN_PROVINCES = frozenset(
    f"{p}"
    for p in (
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
        83,
    )
)
_GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_GB11643_CHECK = "10X98765432"
#: Every character a GB 11643 check position can hold.
GB11643_CHECK_CHARS = _GB11643_CHECK


def gb11643_check_char(body17: str) -> str:
    """The check character that completes 17 ASCII digits into a resident ID (generators use it)."""
    return _GB11643_CHECK[sum((ord(c) - 48) * w for c, w in zip(body17, _GB11643_WEIGHTS, strict=True)) % 11]


def _ric_birth_parts(s: str) -> tuple[int, int, int] | None:
    n = len(s)
    if n == 18:
        body = s[:17]
        if not (body.isascii() and body.isdigit()):
            return None
        total = 0
        for c, w in zip(body, _GB11643_WEIGHTS, strict=True):
            total += (ord(c) - 48) * w
        last = s[17]
        if last == "x":
            last = "X"
        if _GB11643_CHECK[total % 11] != last:
            return None
        y, m, d = int(s[6:10]), int(s[10:12]), int(s[12:14])
    elif n == 15:
        if not (s.isascii() and s.isdigit()):
            return None
        y, m, d = 1900 + int(s[6:8]), int(s[8:10]), int(s[10:12])
    else:
        return None
    if s[:2] not in _CN_PROVINCES or not date_plausible_birth(y, m, d):
        return None
    return y, m, d


def cn_resident_id(s: str) -> bool:
    """GB 11643-1999 citizen identity number: 18 digits with a mod 11-2 check char, or the 15-digit form.

    The 15-digit form (before 1999) has no check char and a two-digit year read as 19YY. See the module
    docstring for why the region is checked at province level only.
    """
    return _ric_birth_parts(s) is not None


def cn_resident_id_birth(s: str) -> date | None:
    """The birth date of a *valid* resident ID (masking profiles may keep the year), else ``None``."""
    parts = _ric_birth_parts(s)
    return None if parts is None else date(*parts)


# --------------------------------------------------------------------------------------------------------
# payment cards

_LUHN_DOUBLE = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_check_digit(body: str) -> str:
    """The digit that makes ``body`` + digit pass :func:`luhn` (generators use it)."""
    total = 0
    double = True  # the check digit will stand rightmost, so the last body digit is doubled
    for c in reversed(body):
        v = ord(c) - 48
        total += _LUHN_DOUBLE[v] if double else v
        double = not double
    return str((10 - total % 10) % 10)


def luhn(s: str) -> bool:
    """The Luhn (mod 10) check over a non-empty string of ASCII digits."""
    if not (s and s.isascii() and s.isdigit()):
        return False
    total = 0
    double = False
    for c in reversed(s):
        v = ord(c) - 48
        total += _LUHN_DOUBLE[v] if double else v
        double = not double
    return total % 10 == 0


# (network, first prefix, last prefix, allowed lengths); earlier rows win where ranges overlap (the
# Discover/UnionPay co-brand range 622126-622925 is reported as UnionPay). Sources: the issuers'
# published IIN tables as collected in Wikipedia "Payment card number" (2024).
_ALL = tuple(range(13, 20))
_14_19 = tuple(range(14, 20))
_16_19 = tuple(range(16, 20))
_CARD_RULES: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("amex", "34", "34", (15,)),
    ("amex", "37", "37", (15,)),
    ("diners", "300", "305", _14_19),
    ("diners", "3095", "3095", _14_19),
    ("diners", "36", "36", _14_19),
    ("diners", "38", "39", _14_19),
    ("jcb", "3528", "3589", _16_19),
    ("visa", "4", "4", (13, 16, 19)),
    ("mir", "2200", "2204", _16_19),
    ("uatp", "1", "1", (15,)),
    ("dankort", "5019", "5019", (16,)),
    ("mastercard", "2221", "2720", (16,)),
    ("mastercard", "51", "55", (16,)),
    ("maestro", "5018", "5018", _ALL),
    ("maestro", "5020", "5020", _ALL),
    ("maestro", "5038", "5038", _ALL),
    ("maestro", "5893", "5893", _ALL),
    ("maestro", "6304", "6304", _ALL),
    ("maestro", "6759", "6759", _ALL),
    ("maestro", "6761", "6763", _ALL),
    ("unionpay", "62", "62", _16_19),
    ("discover", "6011", "6011", _16_19),
    ("discover", "644", "649", _16_19),
    ("discover", "65", "65", _16_19),
)


def _build_iin_table() -> dict[str, dict[int, str]]:
    table: dict[str, dict[int, str]] = {}
    for network, first, last, lengths in _CARD_RULES:
        width = len(first)
        lo, hi = int(first) * 10 ** (4 - width), (int(last) + 1) * 10 ** (4 - width)
        for prefix in range(lo, hi):
            by_length = table.setdefault(f"{prefix:04d}", {})
            for length in lengths:
                by_length.setdefault(length, network)
    return table


_IIN4 = _build_iin_table()
_NO_LENGTHS: dict[int, str] = {}


def card_network(s: str) -> str | None:
    """The card network whose IIN range and length fit ``s`` (no Luhn check), or ``None``."""
    if not (13 <= len(s) <= 19 and s.isascii() and s.isdigit()):
        return None
    return _IIN4.get(s[:4], _NO_LENGTHS).get(len(s))


def payment_card(s: str) -> bool:
    """13-19 digits in a known network's IIN range and length, passing Luhn.

    Visa, Mastercard (51-55, 2221-2720), Amex, Discover, JCB, Diners, UnionPay, Maestro (13-19 digits;
    the rare 12-digit Maestro is not accepted), Mir, UATP (airline cards: 1, 15 digits) and Dankort
    (5019, 16 digits). A card that fails Luhn is never accepted here,
    see :func:`unionpay_non_luhn` for the one network that issues such numbers.
    """
    return card_network(s) is not None and luhn(s)


def unionpay_non_luhn(s: str) -> bool:
    """A 62-prefixed 16-19 digit number that fails Luhn: possibly a real UnionPay debit card.

    Some Chinese issuers' UnionPay numbers carry no Luhn digit, so a checksum failure does not rule them
    out; it does remove the proof. Detectors should score these low and require card context (卡号,
    银行卡, "card").
    """
    return 16 <= len(s) <= 19 and s.startswith("62") and s.isascii() and s.isdigit() and not luhn(s)


# --------------------------------------------------------------------------------------------------------
# China: unified social credit code (GB 32100-2015)

_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
#: The 31 characters a Unified Social Credit Code may hold.
USCC_ALPHABET = _USCC_ALPHABET


def uscc_check_char(body17: str) -> str:
    """The GB 32100 check character of the first 17 characters of a credit code (generators use it)."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(body17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


# GB 32100-2015 table 1: registration authority code -> organisation type codes it may issue.
_USCC_AUTHORITY_TYPES = {
    "1": "1239",  # 机构编制: 机关, 事业单位, 中央编办直管群众团体, 其他
    "2": "19",  # 外交: 外国常驻新闻机构, 其他
    "3": "1234569",  # 司法行政: 律师执业机构, 公证处, 基层法律服务所, 司法鉴定机构, 仲裁委员会, 其他
    "4": "19",  # 文化: 外国在华文化中心, 其他
    "5": "1239",  # 民政: 社会团体, 民办非企业单位, 基金会, 其他
    "6": "129",  # 旅游: 外国/港澳台旅游部门常驻代表机构, 其他
    "7": "129",  # 宗教: 宗教活动场所, 宗教院校, 其他
    "8": "19",  # 工会: 基层工会, 其他
    "9": "123",  # 工商: 企业, 个体工商户, 农民专业合作社
    "A": "19",  # 中央军委改革和编制办公室: 军队事业单位, 其他
    "N": "1239",  # 农业: 组级/村级/乡镇级集体经济组织, 其他
    "Y": "1",  # 其他
}
_USCC_HEADS = frozenset(a + t for a, types in _USCC_AUTHORITY_TYPES.items() for t in types)
# Region codes are GB/T 2260 county codes; "10" is the national level (central organs, 100000).
_USCC_REGIONS = _CN_PROVINCES | {"10"}


def cn_uscc(s: str) -> bool:
    """GB 32100-2015 unified social credit code: 18 chars, mod 31 check char.

    Besides the check char, the authority/type pair must be one the standard defines and positions 3-8
    must be a region code under a known province. The organisation code in positions 9-17 carries its own
    GB 11714 check digit in most codes, but not verifiably in all (individual businesses), so it is not
    checked.
    """
    if len(s) != 18:
        return False
    s = s.upper()
    if s[:2] not in _USCC_HEADS or not (s[2:8].isascii() and s[2:8].isdigit()) or s[2:4] not in _USCC_REGIONS:
        return False
    total = 0
    for c, w in zip(s, _USCC_WEIGHTS, strict=False):
        v = _USCC_VALUE.get(c)
        if v is None:
            return False
        total += v * w
    return s[17] == _USCC_ALPHABET[(31 - total % 31) % 31]


# --------------------------------------------------------------------------------------------------------
# IBAN (ISO 13616)

# BBAN structure per country from the SWIFT IBAN registry (the same table schwifty ships): n digits,
# a upper-case letters, c alphanumerics. Second block: countries using IBANs before registration.
_IBAN_BBAN = {
    **dict(
        item.split(":")
        for item in (
            "AD:4!n4!n12!c AE:3!n16!n AL:8!n16!c AT:5!n11!n AX:3!n11!n AZ:4!a20!c BA:3!n3!n8!n2!n "
            "BE:3!n7!n2!n BG:4!a4!n2!n8!c BH:4!a14!c BI:5!n5!n11!n2!n BL:5!n5!n11!c2!n "
            "BR:8!c5!n10!n1!c1!c BY:4!c4!n16!c CH:5!n12!c CR:4!n14!n CY:3!n5!n16!c CZ:4!n6!n10!n "
            "DE:8!n10!n DJ:23!n DK:4!n9!n1!n DO:4!c20!n EE:2!n2!n11!n1!n EG:4!n4!n17!n "
            "ES:4!n4!n1!n1!n10!n FI:3!n11!n FK:2!a12!n FO:4!n9!n1!n FR:5!n5!n11!c2!n GB:4!a6!n8!n "
            "GE:2!a16!n GF:5!n5!n11!c2!n GG:4!a6!n8!n GI:4!a15!c GL:4!n9!n1!n GP:5!n5!n11!c2!n "
            "GR:3!n4!n16!c GT:4!c20!c HN:4!a20!n HR:7!n10!n HU:3!n4!n1!n15!n1!n IE:4!a6!n8!n "
            "IL:3!n3!n13!n IM:4!a6!n8!n IQ:4!a3!n12!n IS:4!n2!n6!n10!n IT:1!a5!n5!n12!c JE:4!a6!n8!n "
            "JO:4!a4!n18!c KW:4!a22!c KZ:3!n13!c LB:4!n20!c LC:4!a24!c LI:5!n12!c LT:5!n11!n LU:3!n13!c "
            "LV:4!a13!c LY:3!n3!n15!n MC:5!n5!n11!c2!n MD:2!c18!c ME:3!n13!n2!n MF:5!n5!n11!c2!n "
            "MK:3!n10!c2!n MN:4!n12!n MQ:5!n5!n11!c2!n MR:5!n5!n11!n2!n MT:4!a5!n18!c "
            "MU:4!a2!n2!n12!n3!n3!a NC:5!n5!n11!c2!n NI:4!a20!n NL:4!a10!n NO:4!n6!n1!n OM:3!n16!c "
            "PF:5!n5!n11!c2!n PK:4!a16!c PL:8!n16!n PM:5!n5!n11!c2!n PS:4!a21!c PT:4!n4!n11!n2!n "
            "QA:4!a21!c RE:5!n5!n11!c2!n RO:4!a16!c RS:3!n13!n2!n RU:9!n5!n15!c SA:2!n18!c "
            "SC:4!a2!n2!n16!n3!a SD:2!n12!n SE:3!n16!n1!n SI:5!n8!n2!n SK:4!n6!n10!n SM:1!a5!n5!n12!c "
            "SO:4!n3!n12!n ST:4!n4!n11!n2!n SV:4!a20!n TF:5!n5!n11!c2!n TL:3!n14!n2!n TN:2!n3!n13!n2!n "
            "TR:5!n1!n16!c UA:6!n19!c VA:3!n15!n VG:4!a16!n WF:5!n5!n11!c2!n XK:4!n10!n2!n "
            "YE:4!a4!n18!c YT:5!n5!n11!c2!n"
        ).split()
    ),
    **dict(
        item.split(":")
        for item in (
            "AO:21!n BF:2!c22!n BJ:2!c22!n CF:23!n CG:23!n CI:2!a22!n CM:23!n CV:21!n DZ:22!n GA:23!n "
            "GQ:23!n GW:2!c19!n IR:22!n KM:23!n MA:24!n MG:23!n ML:2!c22!n MZ:21!n NE:2!a22!n "
            "SN:2!a22!n TD:23!n TG:2!a3!n5!n12!n2!n"
        ).split()
    ),
}
_BBAN_PART = re.compile(r"(\d+)!([nac])")


def _compile_bban(spec: str) -> tuple[int, tuple[tuple[int, int, str], ...]]:
    parts: list[tuple[int, int, str]] = []
    pos = 4
    for count, kind in _BBAN_PART.findall(spec):
        n = int(count)
        if parts and parts[-1][2] == kind:
            start, _, _ = parts.pop()
            parts.append((start, pos + n, kind))
        else:
            parts.append((pos, pos + n, kind))
        pos += n
    return pos, tuple(parts)


_IBAN_SPECS = {country: _compile_bban(spec) for country, spec in _IBAN_BBAN.items()}
_IBAN_NUMERIC = {ord(c): str(10 + i) for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ")}


def iban_check_digits(country: str, bban: str) -> str:
    """The two ISO 7064 mod 97-10 check digits of an IBAN (generators use it)."""
    numeric = (bban.upper() + country.upper() + "00").translate(_IBAN_NUMERIC)
    return f"{98 - int(numeric) % 97:02d}"


def iban(s: str) -> bool:
    """ISO 13616 IBAN: known country, its exact length and BBAN structure, and mod 97 = 1.

    Lower case is accepted (upper-cased here); spaces must already be gone.
    """
    spec = _IBAN_SPECS.get(s[:2].upper())
    if spec is None or len(s) != spec[0] or not (s.isascii() and s.isalnum()):
        return False
    s = s.upper()
    check = s[2:4]
    if not check.isdigit() or check in ("00", "01", "99"):
        return False
    for start, end, kind in spec[1]:
        part = s[start:end]
        if (kind == "n" and not part.isdigit()) or (kind == "a" and not part.isalpha()):
            return False
    return int((s[4:] + s[:4]).translate(_IBAN_NUMERIC)) % 97 == 1


# --------------------------------------------------------------------------------------------------------
# United States


# Numbers the SSA voided after they appeared in advertising or sample cards, plus the textbook example.
_SSN_VOID = frozenset({"078051120", "219099999", "123456789"})


def us_ssn(s: str) -> bool:
    """9 digits, area not 000/666/9xx, group not 00, serial not 0000, and not a voided sample number."""
    if len(s) != 9 or not (s.isascii() and s.isdigit()):
        return False
    area = s[:3]
    return (
        area != "000"
        and area != "666"
        and s[0] != "9"
        and s[3:5] != "00"
        and s[5:] != "0000"
        and s not in _SSN_VOID
    )


_ITIN_GROUPS = frozenset(f"{g}" for g in (*range(50, 66), *range(70, 89), 90, 91, 92, *range(94, 100)))


def us_itin(s: str) -> bool:
    """IRS ITIN: 9 digits, first 9, group 50-65, 70-88, 90-92 or 94-99 (50-65 added in 2011)."""
    return len(s) == 9 and s[0] == "9" and s.isascii() and s.isdigit() and s[3:5] in _ITIN_GROUPS


# --------------------------------------------------------------------------------------------------------
# China: telephone numbers

# MIIT-allocated 11-digit mobile prefixes (operators and MVNOs, incl. data-only SIMs 146/148/149 which
# are still subscriber numbers). 154, 160-161, 163-164, 168-169, 179 and 194 are unallocated; 140-144
# are 13-digit IoT numbers; 174 is only 1740x/1749x (satellite).
_CN_MOBILE_3 = frozenset(
    f"{p}"
    for p in (
        *range(130, 140),
        *range(145, 150),
        150,
        151,
        152,
        153,
        *range(155, 160),
        162,
        165,
        166,
        167,
        170,
        171,
        172,
        173,
        *range(175, 179),
        *range(180, 190),
        190,
        191,
        192,
        193,
        *range(195, 200),
    )
)
_CN_MOBILE_4 = frozenset({"1740", "1749"})


def _strip_cn_country_code(s: str) -> tuple[str, bool]:
    if s.startswith("+86"):
        return s[3:], True
    if s.startswith("0086"):
        return s[4:], True
    return s, False


def cn_mobile(s: str) -> bool:
    """An 11-digit mainland mobile number on an allocated prefix, optionally after +86 / 0086 / 86."""
    s, _ = _strip_cn_country_code(s)
    if len(s) == 13 and s.startswith("86"):
        s = s[2:]
    if len(s) != 11 or s[0] != "1" or not (s.isascii() and s.isdigit()):
        return False
    return s[:3] in _CN_MOBILE_3 or s[:4] in _CN_MOBILE_4


# Area codes after the trunk 0: two-digit (8-digit local numbers) and three-digit (7 or 8). The
# three-digit list is libphonenumber's CN fixed-line metadata (2025) without 400/800, which are
# national service numbers, not areas.
_CN_AREA_2 = frozenset({"10", "20", "21", "22", "23", "24", "25", "27", "28", "29"})
_CN_AREA_3 = frozenset(
    (
        "310 311 312 313 314 315 316 317 318 319 335 349 350 351 352 353 354 355 356 357 358 359 370 371 "
        "372 373 374 375 376 377 379 391 392 393 394 395 396 398 411 412 415 416 417 418 419 421 427 429 "
        "431 432 433 434 435 436 437 438 439 451 452 453 454 455 456 457 458 459 464 467 468 469 470 471 "
        "472 473 474 475 476 477 478 479 482 483 510 511 512 513 514 515 516 517 518 519 523 527 530 531 "
        "532 533 534 535 536 537 538 539 543 546 550 551 552 553 554 555 556 557 558 559 561 562 563 564 "
        "566 570 571 572 573 574 575 576 577 578 579 580 591 592 593 594 595 596 597 598 599 631 632 633 "
        "635 660 662 663 668 691 692 701 710 711 712 713 714 715 716 717 718 719 722 724 728 730 731 734 "
        "735 736 737 738 739 743 744 745 746 750 751 752 753 754 755 756 757 758 759 760 762 763 766 768 "
        "769 770 771 772 773 774 775 776 777 778 779 790 791 792 793 794 795 796 797 798 799 812 813 816 "
        "817 818 825 826 827 830 831 832 833 834 835 836 837 838 839 851 854 855 856 857 858 859 870 871 "
        "872 873 874 875 876 877 878 879 883 886 887 888 891 892 893 894 895 896 897 898 901 902 903 906 "
        "908 909 911 912 913 914 915 916 917 919 930 931 932 933 934 935 936 937 938 939 941 943 950 951 "
        "952 953 954 955 970 971 972 973 974 975 976 977 978 979 990 991 992 993 994 995 996 997 998 999"
    ).split()
)


def cn_landline(s: str) -> bool:
    """A mainland fixed-line number with its area code: ``0`` + area + local number not starting 0/1.

    ``+86``/``0086`` replace the trunk ``0``. Two-digit areas (010, 02x) have 8-digit local numbers;
    three-digit areas 7 or 8 (cities moved to 8 at different times and old records keep 7, so this is
    looser than libphonenumber, which knows each city's current length).
    """
    s, international = _strip_cn_country_code(s)
    if international:
        s = "0" + s
    n = len(s)
    if n < 11 or n > 12 or s[0] != "0" or not (s.isascii() and s.isdigit()):
        return False
    if s[1:3] in _CN_AREA_2:
        return n == 11 and s[3] > "1"
    return s[1:4] in _CN_AREA_3 and s[4] > "1"


# --------------------------------------------------------------------------------------------------------
# China: passports, permits, plates


def cn_passport(s: str) -> bool:
    """PRC passport numbers in the formats issued since 2012 (upper case, no separators).

    Ordinary: ``E`` + 8 digits (e-passport, 2012), ``E`` + letter (not I/O) + 7 digits (2017, after the
    E-digit series ran out), ``G`` + 8 digits (still valid older booklets). Official: ``D``/``S``/``P`` +
    7 digits, ``S`` + 8 digits, and the e-versions ``DE``/``SE``/``PE`` + 7 digits. Source: zh.wikipedia
    "中华人民共和国护照", citing the Ministry of Public Security's announcements.
    """
    n = len(s)
    if not s.isascii():
        return False
    s = s.upper()
    if n == 9:
        head = s[0]
        if s[1:].isdigit():
            return head in "EGS"
        if s[2:].isdigit():
            second = s[1]
            return (head == "E" and second in _UPPER_NO_IO) or (second == "E" and head in "DSP")
        return False
    return n == 8 and s[0] in "DSP" and s[1:].isdigit()


def cn_permit(s: str, *, allow_bare_digits: bool = False) -> bool:
    """Travel permits between the mainland, Hong Kong, Macau and Taiwan (upper case, no separators).

    * ``C`` + letter-or-digit + 7 digits: mainland residents' permit to HK/Macau (card form, 2014).
    * ``L`` + 8 digits: mainland residents' permit to Taiwan (card form, 2016).
    * ``H``/``M`` + 8 or 10 digits: home-return permit of HK/Macau residents (the 10-digit form appends
      the issue count).
    * ``T`` + 8 digits: permit form for Taiwan residents as specified in the brief; no primary source
      could be checked offline, kept so detectors see it.
    * 8 or 10 bare digits: Taiwan compatriot permit. Any 8-digit run matches, so only with
      ``allow_bare_digits=True``, which a detector should pass when 台胞证/台湾居民来往大陆通行证 is near.

    Sources: zh.wikipedia articles on each document, citing the Exit-Entry Administration.
    """
    n = len(s)
    if not s.isascii():
        return False
    if allow_bare_digits and (n == 8 or n == 10) and s.isdigit():
        return True
    if n < 9:
        return False
    s = s.upper()
    head, rest = s[0], s[1:]
    if n == 9:
        if head == "C":
            return s[1] in _ALNUM_NO_IO and s[2:].isdigit()
        return head in "LHMT" and rest.isdigit()
    return n == 11 and head in "HM" and rest.isdigit()


_PLATE_PROVINCES = frozenset("京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼")
_PLATE_SEPARATORS = frozenset("·・• ")
_PLATE_SUFFIX = frozenset("学警挂港澳领")
_NEV_SMALL = frozenset("ABCDEFGHJK")  # GA 36-2018 (2022 amendment): A-E electric, F-K other NEVs


def cn_plate(s: str) -> bool:
    """A mainland motor-vehicle plate (GA 36): province + authority letter + serial, optional separator.

    Serials: 5 letters/digits without I/O and at most 2 letters, or 4 and a 学/警/挂/港/澳/领 suffix;
    new-energy plates have 6: small cars D/F (since 2022 also A-C, E, G-K) + letter-or-digit + 4 digits,
    large vehicles 5 digits + D/F.
    """
    n = len(s)
    if n < 7 or n > 9 or s[0] not in _PLATE_PROVINCES or s[1] not in _UPPER_NO_IO:
        return False
    serial = s[3:] if s[2] in _PLATE_SEPARATORS else s[2:]
    if len(serial) == 5:
        if serial[-1] in _PLATE_SUFFIX:
            body = serial[:4]
        else:
            body = serial
            if sum(c in _UPPER_NO_IO for c in body) > 2:
                return False
        return all(c in _ALNUM_NO_IO for c in body)
    if len(serial) == 6:
        if serial[0] in _NEV_SMALL:
            return serial[1] in _ALNUM_NO_IO and serial[2:].isascii() and serial[2:].isdigit()
        return serial[5] in "DF" and serial[:5].isascii() and serial[:5].isdigit()
    return False


# --------------------------------------------------------------------------------------------------------
# internet identifiers

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(
    rf"{_ATEXT}(?:\.{_ATEXT})*@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})", re.IGNORECASE
)


def email(s: str) -> bool:
    """A dot-atom address at a DNS name with an alphabetic (or punycode) TLD, RFC 5321 length limits.

    Quoted local parts, IP-literal domains and internationalised local parts are refused: they do not
    occur in customer messages, and accepting them widens the false-positive surface.
    """
    n = len(s)
    if n < 6 or n > 254:
        return False
    at = s.find("@")
    return 0 < at <= 64 and _EMAIL.fullmatch(s) is not None


def ipv4(s: str) -> bool:
    """Dotted-quad IPv4. Leading zeros are refused (``010.1.1.1`` is octal to some parsers, decimal to
    others), the same choice as :mod:`ipaddress` since Python 3.9.5."""
    if len(s) < 7 or len(s) > 15:
        return False
    parts = s.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part or len(part) > 3 or not (part.isascii() and part.isdigit()):
            return False
        if part[0] == "0" and len(part) > 1:
            return False
        if int(part) > 255:
            return False
    return True


_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")


def ipv6(s: str) -> bool:
    """An IPv6 address as :mod:`ipaddress` reads it, without a ``%zone`` suffix (the address alone;
    :func:`ip_address` takes a span with a zone or prefix length). A character prefilter keeps garbage
    away from the exception path."""
    if len(s) < 2 or len(s) > 45 or s.count(":") < 2 or not _IPV6_CHARS.issuperset(s):
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


_ZONE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def ip_address(s: str) -> bool:
    """An IP address as it is written in text: :func:`ipv4` or :func:`ipv6`, optionally followed by a
    CIDR prefix length (``10.0.0.0/8``, ``2001:db8::/32``; 0-32 or 0-128, no leading zero), and for
    IPv6 a zone id before it (``fe80::1%eth0``, RFC 4007: ``%`` and ``[A-Za-z0-9._-]+``). Masking
    takes the whole: the prefix and zone say which network and interface the address belongs to."""
    address, slash, length = s.partition("/")
    if slash and not (
        length.isascii() and length.isdigit() and len(length) <= 3 and (len(length) == 1 or length[0] != "0")
    ):
        return False
    if ":" in address:
        address, pct, zone = address.partition("%")
        if pct and not (zone and _ZONE_CHARS.issuperset(zone)):
            return False
        ok, most = ipv6(address), 128
    else:
        ok, most = ipv4(address), 32
    return ok and (not slash or int(length) <= most)


def mac(s: str) -> bool:
    """EUI-48 as six hex pairs joined by one kind of ``:``/``-``, or Cisco's three dot-joined quads."""
    n = len(s)
    if n == 17:
        sep = s[2]
        if sep not in ":-":
            return False
        groups = s.split(sep)
        return len(groups) == 6 and all(len(g) == 2 and _HEX.issuperset(g) for g in groups)
    if n == 14:
        groups = s.split(".")
        return len(groups) == 3 and all(len(g) == 4 and _HEX.issuperset(g) for g in groups)
    return False


def phone(s: str, region: str | None = None) -> bool:
    """A number libphonenumber calls valid: international form (``+``) or national form for ``region``.

    Without a region a number not starting with ``+`` cannot be placed, so it is refused before the
    parser (which would raise) is involved.
    """
    s = s.strip()
    if not s or len(s) > 40:
        return False
    if region is None and not (s[0] == "+" or s[0] == "＋"):
        return False
    try:
        number = phonenumbers.parse(s, region)
    except NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


# --------------------------------------------------------------------------------------------------------
# non-Chinese passports

_ICAO_VALUES = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")} | {"<": 0}


def icao_check_digit(field: str) -> int:
    """ICAO 9303 7-3-1 check digit of an MRZ field (digits, A-Z, ``<``); -1 if a character is foreign."""
    total = 0
    weights = (7, 3, 1)
    for i, c in enumerate(field):
        v = _ICAO_VALUES.get(c)
        if v is None:
            return -1
        total += v * weights[i % 3]
    return total % 10


def passport(s: str) -> bool:
    """The shape of a non-Chinese passport number: 6-9 upper-case letters/digits, at least 5 digits.

    Passport numbers have no check digit outside the MRZ, so this only says the string could be one
    (US 9 digits or letter + 8, UK 9 digits, DE/FR/JP/IN/CA/AU letter-digit mixes); detectors must find
    "passport"/"护照" nearby before reporting it.
    """
    n = len(s)
    if n < 6 or n > 9 or not (s.isascii() and s.isalnum()) or (not s.isupper() and not s.isdigit()):
        return False
    return sum(c in _DIGITS for c in s) >= 5


# --------------------------------------------------------------------------------------------------------
# by entity type

_Check = Callable[[str], bool]


def _normalized(fn: _Check) -> _Check:
    return lambda text: fn(normalize_digits(text))


def _ip(text: str) -> bool:
    return ip_address(text.strip())


def _free_text(text: str) -> bool:
    return any(c.isalpha() for c in text)


_CHECKS: Mapping[str, _Check] = MappingProxyType(
    {
        EntityType.CN_RESIDENT_ID: _normalized(cn_resident_id),
        EntityType.CN_MOBILE: _normalized(cn_mobile),
        EntityType.CN_LANDLINE: _normalized(cn_landline),
        EntityType.CN_USCC: _normalized(cn_uscc),
        EntityType.CN_PASSPORT: _normalized(cn_passport),
        EntityType.CN_PERMIT: _normalized(cn_permit),
        EntityType.CN_PLATE: _normalized(cn_plate),
        EntityType.BANK_CARD: _normalized(payment_card),
        EntityType.IBAN: _normalized(iban),
        EntityType.US_SSN: _normalized(us_ssn),
        EntityType.US_ITIN: _normalized(us_itin),
        EntityType.PHONE: phone,
        EntityType.EMAIL: lambda text: email(text.strip()),
        EntityType.IP_ADDRESS: _ip,
        EntityType.MAC_ADDRESS: lambda text: mac(text.strip()),
        EntityType.PASSPORT: _normalized(passport),
        EntityType.DATE_OF_BIRTH: date_of_birth,
        EntityType.PERSON: _free_text,
        EntityType.ADDRESS: _free_text,
    }
)

VALIDATOR_NAMES: Mapping[str, str] = MappingProxyType(
    {
        EntityType.CN_RESIDENT_ID: "gb11643",
        EntityType.CN_MOBILE: "cn-mobile-prefix",
        EntityType.CN_LANDLINE: "cn-area-code",
        EntityType.CN_USCC: "gb32100",
        EntityType.CN_PASSPORT: "pattern",
        EntityType.CN_PERMIT: "pattern",
        EntityType.CN_PLATE: "ga36",
        EntityType.BANK_CARD: "luhn",
        EntityType.IBAN: "mod97",
        EntityType.US_SSN: "ssa-ranges",
        EntityType.US_ITIN: "irs-ranges",
        EntityType.PHONE: "libphonenumber",
        EntityType.EMAIL: "pattern",
        EntityType.IP_ADDRESS: "ipaddress",
        EntityType.MAC_ADDRESS: "pattern",
        EntityType.PASSPORT: "pattern",
        EntityType.DATE_OF_BIRTH: "calendar",
        EntityType.PERSON: "context",
        EntityType.ADDRESS: "context",
    }
)
"""The ``Finding.validator`` name each type's check reports."""

CHECKSUM_TYPES: frozenset[str] = frozenset(
    {EntityType.CN_RESIDENT_ID, EntityType.CN_USCC, EntityType.BANK_CARD, EntityType.IBAN}
)
"""Types whose check includes a check digit, so a pass is evidence on its own, without context."""


def check(entity_type: str, text: str) -> bool:
    """Whether ``text``, a span as it appears in a message, is a valid ``entity_type``.

    Applies the normalisation each type needs (full-width folding, separator stripping) before its
    validator. PERSON and ADDRESS have no validator: any text with a letter passes.
    """
    fn = _CHECKS.get(entity_type)
    if fn is None:
        raise UnknownEntityType(
            f"no validator for entity type {entity_type!r}; use one of {', '.join(sorted(_CHECKS))}"
        )
    return fn(text)
