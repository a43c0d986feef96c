"""Synthetic identifiers, valid and near-miss, for tests, benchmarks and the evaluation corpus.

Real customer data cannot leave the customer, so accuracy is measured on generated text; the generator is
only useful if its "valid" outputs are exactly what the validators accept and its "invalid" ones are the
mistakes a detector is tempted by (one check digit off, 30 February, area 000, an IBAN off by one
character). Both directions are enforced here by construction *and* by re-checking against
:func:`appliance.masking.validators.check`, so a generator bug shows up as an error rather than as a
silently wrong accuracy figure.

Everything is drawn from the caller's :class:`random.Random` (Faker is re-seeded from it per call), so a
seed reproduces a corpus byte for byte on the same library versions.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from functools import cache
from types import MappingProxyType

import phonenumbers
from faker import Faker

from appliance.masking import validators as v
from appliance.masking.entities import ENTITY_TYPES, EntityType
from appliance.masking.errors import MaskingError, UnknownEntityType

__all__ = [
    "CONTEXT_ONLY_TYPES",
    "INVALID_TYPES",
    "LOOKALIKE_KINDS",
    "STYLES",
    "generate",
    "lookalike",
    "lookalike_context",
    "lookalike_value",
]

_DIGITS = "0123456789"
_UPPER_NO_IO = "ABCDEFGHJKLMNPQRSTUVWXYZ"

# Real county-level codes (GB/T 2260) for realistic resident IDs and credit codes; validity only depends
# on the province prefix.
_COUNTIES = (
    "110101 110105 110108 120101 130102 140105 150102 210102 220102 230103 310104 310115 320102 320506 "
    "330106 330212 340104 350203 360102 370102 370202 410105 420106 430104 440106 440304 440305 441900 "
    "450103 460105 500103 510107 520102 530102 540102 610113 620102 640104 650102"
).split()
_MOBILE_PREFIXES = sorted(v._CN_MOBILE_3)
_AREA_CODES_2 = sorted(v._CN_AREA_2)
_AREA_CODES_3 = sorted(v._CN_AREA_3)
_PLATE_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_IBAN_COMMON = (
    "DE",
    "GB",
    "FR",
    "ES",
    "IT",
    "NL",
    "CH",
    "AT",
    "BE",
    "PL",
    "SE",
    "IE",
    "PT",
    "LU",
    "AE",
    "SA",
)
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "JP", "SG", "HK", "AU", "CA", "IN", "KR", "TW", "MO")
_EMAIL_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com")

# --------------------------------------------------------------------------------------------------------
# small helpers


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_DIGITS) for _ in range(n))


def _fullwidth(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in s)


def _group(s: str, sizes: tuple[int, ...], sep: str) -> str:
    out, i = [], 0
    for size in sizes:
        if i >= len(s):
            break
        out.append(s[i : i + size])
        i += size
    if i < len(s):
        out.append(s[i:])
    return sep.join(out)


def _luhn_complete(body: str) -> str:
    return body + v.luhn_check_digit(body)


_gb11643_check = v.gb11643_check_char
_uscc_check = v.uscc_check_char
_iban_check = v.iban_check_digits


def _gb11714_check(body8: str) -> str:
    """Check char of a GB 11714 organisation code (positions 9-17 of a credit code)."""
    total = sum(int(c, 36) * w for c, w in zip(body8, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def _birth_date(rng: random.Random, start: int = 1940, end: int = 2007) -> date:
    first = date(start, 1, 1).toordinal()
    return date.fromordinal(rng.randint(first, date(end, 12, 31).toordinal()))


@cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


def _seeded_faker(rng: random.Random, locale: str) -> Faker:
    fake = _faker(locale)
    fake.seed_instance(rng.getrandbits(64))
    return fake


# --------------------------------------------------------------------------------------------------------
# canonical values: (rng, valid) -> compact string


def _resident_id(rng: random.Random, valid: bool) -> str:
    born = _birth_date(rng)
    region = rng.choice(_COUNTIES)
    body = f"{region}{born:%Y%m%d}{_digits(rng, 3)}"
    if valid:
        return body + _gb11643_check(body)
    flaw = rng.randrange(4)
    if flaw == 0:  # one check char off
        right = _gb11643_check(body)
        return body + rng.choice([c for c in "0123456789X" if c != right])
    if flaw == 1:  # impossible date, correct check char
        body = f"{region}{born.year}02{rng.choice(['30', '31'])}{_digits(rng, 3)}"
    elif flaw == 2:  # in the future, correct check char
        body = f"{region}{date.today().year + rng.randint(1, 30)}0101{_digits(rng, 3)}"
    else:  # no such province, correct check char
        body = f"{rng.choice(['00', '19', '29', '39', '48', '57', '68', '77', '90', '99'])}{body[2:]}"
    return body + _gb11643_check(body)


def _resident_id_15(rng: random.Random, valid: bool) -> str:
    born = _birth_date(rng, 1930, 1999)
    month, day = (born.month, born.day) if valid else (2, 30)
    return f"{rng.choice(_COUNTIES)}{born.year % 100:02d}{month:02d}{day:02d}{_digits(rng, 3)}"


def _mobile(rng: random.Random, valid: bool) -> str:
    if valid:
        return rng.choice(_MOBILE_PREFIXES) + _digits(rng, 8)
    if rng.random() < 0.7:
        return rng.choice(["120", "121", "154", "160", "163", "168", "179", "194", "100", "110"]) + _digits(
            rng, 8
        )
    return rng.choice(_MOBILE_PREFIXES) + _digits(rng, rng.choice([7, 9]))


def _landline_parts(rng: random.Random, valid: bool) -> tuple[str, str]:
    """(area without trunk 0, local number)."""
    if rng.random() < 0.4:
        area, local_len = rng.choice(_AREA_CODES_2), 8
    else:
        area, local_len = rng.choice(_AREA_CODES_3), rng.choice([7, 8, 8])
    local = rng.choice("23456789") + _digits(rng, local_len - 1)
    if valid:
        return area, local
    flaw = rng.randrange(3)
    if flaw == 0:
        return area, rng.choice("01") + local[1:]
    if flaw == 1:
        return rng.choice(["26", "300", "601", "690"]), local
    return area, local[:-2] if len(local) == 8 else local[:-1]


def _uscc(rng: random.Random, valid: bool) -> str:
    head = rng.choice(["91", "91", "91", "91", "92", "93", "12", "11", "51", "52", "31", "N2"])
    org = rng.choice(["MA", _digits(rng, 2)]) + "".join(rng.choice(v._USCC_ALPHABET) for _ in range(6))
    body = head + rng.choice(_COUNTIES) + org + _gb11714_check(org)
    if valid:
        return body + _uscc_check(body)
    if rng.random() < 0.7:
        right = _uscc_check(body)
        return body + rng.choice([c for c in v._USCC_ALPHABET if c != right])
    body = rng.choice(["94", "96", "0A", "B1"]) + body[2:]
    return body + _uscc_check(body)


def _cn_passport(rng: random.Random, valid: bool) -> str:
    if valid:
        form = rng.randrange(4)
        if form == 0:
            return "E" + _digits(rng, 8)
        if form == 1:
            return "E" + rng.choice(_UPPER_NO_IO) + _digits(rng, 7)
        if form == 2:
            return "G" + _digits(rng, 8)
        return rng.choice(["D", "S", "P", "DE", "SE", "PE"]) + _digits(rng, 7)
    return rng.choice(
        [
            "E" + _digits(rng, 7),
            "EI" + _digits(rng, 7),
            "EO" + _digits(rng, 7),
            "X" + _digits(rng, 8),
            "G" + _digits(rng, 9),
        ]
    )


def _cn_permit(rng: random.Random, valid: bool) -> str:
    if valid:
        form = rng.randrange(5)
        if form == 0:
            return "C" + rng.choice(_UPPER_NO_IO + _DIGITS) + _digits(rng, 7)
        if form == 1:
            return "L" + _digits(rng, 8)
        if form == 2:
            return rng.choice("HM") + _digits(rng, 8)
        if form == 3:
            return rng.choice("HM") + _digits(rng, 10)
        return "T" + _digits(rng, 8)
    return rng.choice(
        ["CI" + _digits(rng, 7), "C" + _digits(rng, 7), "L" + _digits(rng, 10), "H" + _digits(rng, 9)]
    )


def _plate_parts(rng: random.Random, valid: bool) -> tuple[str, str]:
    """(province + authority letter, serial)."""
    head = rng.choice(_PLATE_PROVINCES) + rng.choice(_UPPER_NO_IO)
    form = rng.randrange(4)
    if form == 0:
        serial = _digits(rng, 5)
    elif form == 1:
        serial = "".join(rng.choice(_DIGITS) for _ in range(3)) + rng.choice(_UPPER_NO_IO) + _digits(rng, 1)
        serial = "".join(rng.sample(serial, len(serial)))
    elif form == 2:
        serial = rng.choice("DFABCEGHJK") + rng.choice(_UPPER_NO_IO + _DIGITS) + _digits(rng, 4)
    else:
        serial = _digits(rng, 5) + rng.choice("DF")
    if valid:
        return head, serial
    flaw = rng.randrange(3)
    if flaw == 0:
        return rng.choice("港澳台") + head[1], serial
    if flaw == 1:
        return head[0] + rng.choice("IO"), serial
    return head, rng.choice(_UPPER_NO_IO) + rng.choice(_UPPER_NO_IO) + rng.choice(_UPPER_NO_IO) + _digits(
        rng, 2
    )


_CARD_PREFIXES: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
    ("visa", ("4",), (16, 16, 16, 13, 19)),
    ("mastercard", ("51", "52", "53", "54", "55", "2221", "2720", "23"), (16,)),
    ("amex", ("34", "37"), (15,)),
    ("unionpay", ("62",), (16, 19)),
    ("discover", ("6011", "65"), (16,)),
    ("jcb", ("3528", "3589", "3566"), (16,)),
    ("diners", ("36", "300", "305"), (14,)),
    ("maestro", ("6759", "5018"), (16, 19)),
    ("mir", ("2200", "2204"), (16,)),
)
_CARD_WEIGHTS = (30, 22, 8, 25, 3, 4, 2, 3, 3)


def _card(rng: random.Random, valid: bool) -> str:
    _, prefixes, lengths = rng.choices(_CARD_PREFIXES, weights=_CARD_WEIGHTS)[0]
    prefix, length = rng.choice(prefixes), rng.choice(lengths)
    number = _luhn_complete(prefix + _digits(rng, length - len(prefix) - 1))
    if valid:
        return number
    return number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)  # Luhn off by one digit


def _iban(rng: random.Random, valid: bool) -> str:
    country = rng.choice(_IBAN_COMMON) if rng.random() < 0.8 else rng.choice(sorted(v._IBAN_SPECS))
    _, parts = v._IBAN_SPECS[country]
    alphabet = {"n": _DIGITS, "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "c": _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
    bban = "".join(
        "".join(rng.choice(alphabet[kind]) for _ in range(end - start)) for start, end, kind in parts
    )
    number = country + _iban_check(country, bban) + bban
    if valid:
        return number
    if rng.random() < 0.7:  # wrong mod 97: one digit changed always changes the remainder (10 ⊥ 97)
        return _mutate_at(rng, number, [i for i in range(4, len(number)) if number[i].isdigit()] or [2])
    return number[:-1]  # one character short


def _mutate_at(rng: random.Random, s: str, positions: list[int]) -> str:
    i = rng.choice(positions)
    return s[:i] + rng.choice([d for d in _DIGITS if d != s[i]]) + s[i + 1 :]


def _ssn(rng: random.Random, valid: bool) -> str:
    area, group, serial = rng.randint(1, 898), rng.randint(1, 99), rng.randint(1, 9999)
    area += area >= 666  # skip 666
    if not valid:
        flaw = rng.randrange(5)
        if flaw == 0:
            area = rng.choice([0, 666])
        elif flaw == 1:
            area = rng.randint(900, 999)
        elif flaw == 2:
            group = 0
        elif flaw == 3:
            serial = 0
        else:
            return rng.choice(sorted(v._SSN_VOID))
    return f"{area:03d}{group:02d}{serial:04d}"


def _itin(rng: random.Random, valid: bool) -> str:
    groups = sorted(v._ITIN_GROUPS) if valid else ["49", "66", "69", "89", "93", "00"]
    return "9" + _digits(rng, 2) + rng.choice(groups) + _digits(rng, 4)


def _phone_number(rng: random.Random, valid: bool) -> phonenumbers.PhoneNumber:
    """A number in a libphonenumber region; near misses are a valid number with digits dropped, digits
    added or the leading digit replaced (regions with flexible lengths absorb some, so draw again)."""
    for _ in range(200):
        region = rng.choice(_PHONE_REGIONS)
        kind = rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
        if example is None:  # metadata without examples for this region/kind: draw again
            continue
        national = str(example.national_number)
        keep = min(3, len(national) - 4)
        digits = national[:keep] + _digits(rng, len(national) - keep)
        if not valid:
            flaw = rng.randrange(3)
            if flaw == 0:
                digits = digits[: -rng.randint(2, 3)]
            elif flaw == 1:
                digits += _digits(rng, 3)
            else:
                digits = rng.choice("019") + digits[1:]
        candidate = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(digits))
        if phonenumbers.is_valid_number(candidate) is valid:
            return candidate
    raise MaskingError(f"could not draw a {'valid' if valid else 'invalid'} phone number; this is a bug")


def _email(rng: random.Random, valid: bool) -> str:
    fake = _seeded_faker(rng, "en_US")
    user = fake.user_name() + (str(rng.randint(1, 9999)) if rng.random() < 0.4 else "")
    domain = rng.choice(_EMAIL_DOMAINS) if rng.random() < 0.6 else fake.domain_name()
    if valid:
        return f"{user}@{domain}"
    return rng.choice(
        [f"{user}@@{domain}", f"{user}@{domain.split('.')[0]}", f"{user}.@{domain}", f"{user}@.{domain}"]
    )


def _ipv4(rng: random.Random, valid: bool) -> str:
    octets = [rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)]
    if not valid:
        flaw = rng.randrange(3)
        if flaw == 0:
            octets[rng.randrange(4)] = rng.randint(256, 999)
        elif flaw == 1:
            octets.pop()
        else:
            octets.append(rng.randint(0, 255))
    return ".".join(map(str, octets))


def _ipv6(rng: random.Random, valid: bool, exploded: bool = False) -> str:
    addr = ipaddress.IPv6Address((0x2001 << 112) | rng.getrandbits(112))
    text = addr.exploded if exploded else addr.compressed
    if valid:
        return text
    groups = addr.exploded.split(":")
    if rng.random() < 0.5:
        groups[rng.randrange(8)] = "g" + groups[0][1:]
        return ":".join(groups)
    return ":".join([*groups, "abcd"])


def _mac_bytes(rng: random.Random, valid: bool) -> str:
    hexed = f"{rng.getrandbits(48):012x}"
    return hexed if valid else hexed[:10]


def _passport(rng: random.Random, valid: bool) -> str:
    if valid:
        form = rng.randrange(5)
        if form == 0:  # US / UK: 9 digits
            return rng.choice("123456789") + _digits(rng, 8)
        if form == 1:  # US next generation: letter + 8 digits
            return rng.choice("ACDEFGHJKLMNPRSTUVWXYZ") + _digits(rng, 8)
        if form == 2:  # Japan: 2 letters + 7 digits
            return rng.choice(["TK", "TR", "MZ", "TZ"]) + _digits(rng, 7)
        if form == 3:  # France: 2 digits, 2 letters, 5 digits
            return _digits(rng, 2) + rng.choice(_UPPER_NO_IO) + rng.choice(_UPPER_NO_IO) + _digits(rng, 5)
        return rng.choice("CFGHJK") + _digits(rng, 6) + rng.choice("CFGHJKLMNPRTVWXYZ") + _digits(rng, 1)
    return rng.choice([_digits(rng, 4), rng.choice(_UPPER_NO_IO) * 3 + _digits(rng, 3), _digits(rng, 11)])


def _dob(rng: random.Random, valid: bool) -> tuple[int, int, int]:
    if valid:
        born = _birth_date(rng)
        return born.year, born.month, born.day
    flaw = rng.randrange(4)
    if flaw == 0:
        return rng.randint(1950, 2000), 2, rng.choice([30, 31])
    if flaw == 1:
        return rng.randint(1950, 2000), rng.choice([4, 6, 9, 11]), 31
    if flaw == 2:
        return date.today().year + rng.randint(1, 20), rng.randint(1, 12), rng.randint(1, 28)
    return rng.randint(1700, 1899), rng.randint(1, 12), rng.randint(1, 28)


# --------------------------------------------------------------------------------------------------------
# styles: how people write each value

_MONTH_NAMES = "January February March April May June July August September October November December".split()

_Generator = Callable[[random.Random, bool, str], str]


def _gen_resident_id(rng: random.Random, valid: bool, style: str) -> str:
    if style == "legacy15":
        return _resident_id_15(rng, valid)
    number = _resident_id(rng, valid)
    if style == "grouped":
        return _group(number, (6, 8, 4), " ")
    if style == "fullwidth":
        return _fullwidth(number)
    if style == "lower_x":
        return number.lower()
    return number


def _gen_mobile(rng: random.Random, valid: bool, style: str) -> str:
    number = _mobile(rng, valid)
    if style == "grouped":
        return _group(number, (3, 4, 4), " ")
    if style == "dashed":
        return _group(number, (3, 4, 4), "-")
    if style == "intl":
        return "+86 " + _group(number, (3, 4, 4), " ")
    if style == "intl_compact":
        return rng.choice(["+86", "0086", "+86-"]) + number
    if style == "fullwidth":
        return _fullwidth(number)
    return number


def _gen_landline(rng: random.Random, valid: bool, style: str) -> str:
    area, local = _landline_parts(rng, valid)
    if style == "dashed":
        return f"0{area}-{local}"
    if style == "parens":
        return f"(0{area}){local}"
    if style == "intl":
        return f"+86 {area} {local}"
    if style == "fullwidth":
        return _fullwidth(f"0{area}") + "－" + _fullwidth(local)
    return f"0{area}{local}"


def _gen_uscc(rng: random.Random, valid: bool, style: str) -> str:
    code = _uscc(rng, valid)
    return _fullwidth(code) if style == "fullwidth" else code


def _gen_cn_passport(rng: random.Random, valid: bool, style: str) -> str:
    number = _cn_passport(rng, valid)
    return _fullwidth(number) if style == "fullwidth" else number


def _gen_cn_permit(rng: random.Random, valid: bool, style: str) -> str:
    return _cn_permit(rng, valid)


def _gen_plate(rng: random.Random, valid: bool, style: str) -> str:
    head, serial = _plate_parts(rng, valid)
    sep = {"dot": "·", "space": " "}.get(style, "")
    return head + sep + serial


def _gen_card(rng: random.Random, valid: bool, style: str) -> str:
    number = _card(rng, valid)
    sizes = {15: (4, 6, 5), 14: (4, 6, 4), 13: (4, 4, 5)}.get(len(number), (4, 4, 4, 4))
    if style == "grouped":
        return _group(number, sizes, " ")
    if style == "dashed":
        return _group(number, sizes, "-")
    if style == "fullwidth":
        return _fullwidth(number)
    return number


def _gen_iban(rng: random.Random, valid: bool, style: str) -> str:
    number = _iban(rng, valid)
    return _group(number, (4,) * 9, " ") if style == "grouped" else number


def _tin_style(number: str, style: str) -> str:
    if style == "dashed":
        return _group(number, (3, 2, 4), "-")
    if style == "spaced":
        return _group(number, (3, 2, 4), " ")
    return number


def _gen_ssn(rng: random.Random, valid: bool, style: str) -> str:
    return _tin_style(_ssn(rng, valid), style)


def _gen_itin(rng: random.Random, valid: bool, style: str) -> str:
    return _tin_style(_itin(rng, valid), style)


def _gen_phone(rng: random.Random, valid: bool, style: str) -> str:
    number = _phone_number(rng, valid)
    if valid:
        fmt = (
            phonenumbers.PhoneNumberFormat.E164
            if style == "e164"
            else phonenumbers.PhoneNumberFormat.INTERNATIONAL
        )
        return phonenumbers.format_number(number, fmt)
    digits = str(number.national_number)
    return f"+{number.country_code}{digits}" if style == "e164" else f"+{number.country_code} {digits}"


def _gen_email(rng: random.Random, valid: bool, style: str) -> str:
    return _email(rng, valid)


def _gen_ip(rng: random.Random, valid: bool, style: str) -> str:
    if style == "v6":
        return _ipv6(rng, valid)
    if style == "v6_full":
        return _ipv6(rng, valid, exploded=True)
    return _ipv4(rng, valid)


def _gen_mac(rng: random.Random, valid: bool, style: str) -> str:
    hexed = _mac_bytes(rng, valid)
    if style == "upper":
        hexed = hexed.upper()
    if style == "cisco":
        return ".".join(hexed[i : i + 4] for i in range(0, len(hexed), 4))
    return ("-" if style == "dash" else ":").join(hexed[i : i + 2] for i in range(0, len(hexed), 2))


def _gen_passport(rng: random.Random, valid: bool, style: str) -> str:
    return _passport(rng, valid)


def _gen_dob(rng: random.Random, valid: bool, style: str) -> str:
    y, m, d = _dob(rng, valid)
    if style == "slash":
        return f"{y}/{m:02d}/{d:02d}"
    if style == "cn":
        return f"{y}年{m}月{d}日"
    if style == "us":
        return f"{m:02d}/{d:02d}/{y}"
    if style == "long_en":
        return f"{_MONTH_NAMES[m - 1]} {d}, {y}"
    if style == "dmy_en":
        return f"{d} {_MONTH_NAMES[m - 1]} {y}"
    if style == "eu_dots":
        return f"{d:02d}.{m:02d}.{y}"
    return f"{y}-{m:02d}-{d:02d}"


def _gen_person(rng: random.Random, valid: bool, style: str) -> str:
    return _seeded_faker(rng, "en_US" if style == "en" else "zh_CN").name()


def _gen_address(rng: random.Random, valid: bool, style: str) -> str:
    if style == "en":
        return _seeded_faker(rng, "en_US").address().replace("\n", ", ")
    return _seeded_faker(rng, "zh_CN").address()


_GENERATORS: Mapping[str, tuple[_Generator, tuple[str, ...]]] = MappingProxyType(
    {
        EntityType.CN_RESIDENT_ID: (
            _gen_resident_id,
            ("plain", "grouped", "fullwidth", "lower_x", "legacy15"),
        ),
        EntityType.CN_MOBILE: (
            _gen_mobile,
            ("plain", "grouped", "dashed", "intl", "intl_compact", "fullwidth"),
        ),
        EntityType.CN_LANDLINE: (_gen_landline, ("plain", "dashed", "parens", "intl", "fullwidth")),
        EntityType.CN_USCC: (_gen_uscc, ("plain", "fullwidth")),
        EntityType.CN_PASSPORT: (_gen_cn_passport, ("plain", "fullwidth")),
        EntityType.CN_PERMIT: (_gen_cn_permit, ("plain",)),
        EntityType.CN_PLATE: (_gen_plate, ("plain", "dot", "space")),
        EntityType.BANK_CARD: (_gen_card, ("plain", "grouped", "dashed", "fullwidth")),
        EntityType.IBAN: (_gen_iban, ("plain", "grouped")),
        EntityType.US_SSN: (_gen_ssn, ("plain", "dashed", "spaced")),
        EntityType.US_ITIN: (_gen_itin, ("plain", "dashed", "spaced")),
        EntityType.PHONE: (_gen_phone, ("international", "e164")),
        EntityType.EMAIL: (_gen_email, ("plain",)),
        EntityType.IP_ADDRESS: (_gen_ip, ("v4", "v6", "v6_full")),
        EntityType.MAC_ADDRESS: (_gen_mac, ("colon", "dash", "cisco", "upper")),
        EntityType.PASSPORT: (_gen_passport, ("plain",)),
        EntityType.DATE_OF_BIRTH: (_gen_dob, ("iso", "slash", "cn", "us", "long_en", "dmy_en", "eu_dots")),
        EntityType.PERSON: (_gen_person, ("zh", "en")),
        EntityType.ADDRESS: (_gen_address, ("zh", "en")),
    }
)

STYLES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {t: styles for t, (_, styles) in _GENERATORS.items()}
)
"""The formatting styles :func:`generate` knows per entity type (the first is the compact form)."""

INVALID_TYPES: frozenset[str] = frozenset(ENTITY_TYPES - {EntityType.PERSON, EntityType.ADDRESS})
"""Types with a notion of "invalid": names and addresses have no validator to miss."""


def generate(entity_type: str, rng: random.Random, *, valid: bool = True, style: str | None = None) -> str:
    """One ``entity_type`` value as a person would type it, valid or a near miss.

    ``style`` picks a formatting (see :data:`STYLES`; e.g. ``"grouped"``, ``"intl"``, ``"fullwidth"``);
    ``None`` draws one. The result is re-checked with :func:`validators.check`, so a "valid" value always
    passes and an "invalid" one always fails.
    """
    entry = _GENERATORS.get(entity_type)
    if entry is None:
        raise UnknownEntityType(
            f"cannot generate {entity_type!r}; use one of {', '.join(sorted(_GENERATORS))}"
        )
    fn, styles = entry
    if style is None:
        style = rng.choice(styles)
    elif style not in styles:
        raise MaskingError(f"{entity_type} has no style {style!r}; use one of {', '.join(styles)}")
    if not valid and entity_type not in INVALID_TYPES:
        raise MaskingError(
            f"{entity_type} has no invalid form (there is no validator to fail); pass valid=True"
        )
    for _ in range(100):
        value = fn(rng, valid, style)
        if v.check(entity_type, value) is valid:
            return value
    raise MaskingError(
        f"generator for {entity_type}/{style} keeps producing the wrong validity; this is a bug"
    )


# --------------------------------------------------------------------------------------------------------
# look-alikes: numbers that must not be reported

LOOKALIKE_KINDS = (
    "order_number",
    "ticket_number",
    "tracking_number",
    "invoice_number",
    "timestamp",
    "amount",
)

_LOOKALIKE_CONTEXT = {
    "order_number": (
        ("订单号", "订单编号", "单号：", "订单"),
        ("order #", "order no. ", "Order ID ", "order "),
    ),
    "ticket_number": (
        ("工单号", "工单", "电子客票号", "服务单号"),
        ("ticket #", "case ", "ticket ", "e-ticket "),
    ),
    "tracking_number": (("快递单号", "运单号", "物流单号"), ("tracking number ", "tracking #", "waybill ")),
    "invoice_number": (("发票号码", "发票代码", "发票号"), ("invoice ", "invoice no. ", "INV ")),
    "timestamp": (("下单时间", "时间戳", "时间"), ("at ", "timestamp ", "on ")),
    "amount": (("金额", "扣款", "退款"), ("amount ", "charged ", "refund of ")),
}

# Every validator a look-alike must fail. Absent on purpose: the types whose check is a shape, not a
# proof (DATE_OF_BIRTH: a timestamp *is* a date; PASSPORT: any 6-9 char code with digits is passport
# shaped), and the free-text ones. For those, only the context words tell a look-alike apart, which is
# exactly what the corpus asks of a detector.
CONTEXT_ONLY_TYPES: frozenset[str] = frozenset(
    {EntityType.DATE_OF_BIRTH, EntityType.PASSPORT, EntityType.PERSON, EntityType.ADDRESS}
)
_MUST_FAIL = tuple(t for t in EntityType if t not in CONTEXT_ONLY_TYPES)


def _order_number(rng: random.Random) -> str:
    form = rng.randrange(4)
    if form == 0:  # date-prefixed, 18 or 19 digits
        day = date(2018, 1, 1) + timedelta(days=rng.randrange(2500))
        return f"{day:%Y%m%d}" + _digits(rng, rng.choice([10, 11]))
    if form == 1:  # ID-like: starts with a province code (the hard case)
        return rng.choice(_COUNTIES) + _digits(rng, rng.choice([12, 13]))
    if form == 2:
        return rng.choice(["A", "B", "DD", "JD", "TB"]) + _digits(rng, rng.choice([10, 12, 14]))
    return _digits(rng, rng.choice([16, 19]))


def _ticket_number(rng: random.Random) -> str:
    form = rng.randrange(4)
    if form == 0:
        day = date(2022, 1, 1) + timedelta(days=rng.randrange(1200))
        return f"T{day:%Y%m%d}-{_digits(rng, 4)}"
    if form == 1:
        return f"TKT-{_digits(rng, 7)}"
    if form == 2:
        return f"{rng.choice(['781', '999', '880', '784'])}-{_digits(rng, 10)}"  # airline e-ticket
    return f"GD{_digits(rng, 13)}"


def _tracking_number(rng: random.Random) -> str:
    form = rng.randrange(5)
    if form == 0:
        return rng.choice(["SF", "YT", "JD", "JT", "ZT"]) + _digits(rng, rng.choice([12, 13, 15]))
    if form == 1:
        return "1Z" + "".join(rng.choice(_DIGITS + "ABCDEFGHJKLMNPRSTUVWXY") for _ in range(16))
    if form == 2:
        return _digits(rng, rng.choice([12, 15]))  # FedEx-like
    if form == 3:
        return rng.choice(["75", "78", "77", "73"]) + _digits(rng, 12)  # ZTO/YTO-like 14 digits
    return _digits(rng, 13)


def _invoice_number(rng: random.Random) -> str:
    form = rng.randrange(3)
    if form == 0:
        return f"INV-{rng.randint(2019, 2025)}-{_digits(rng, 6)}"
    if form == 1:
        return _digits(rng, 20)  # fully digital fapiao
    return "0" + _digits(rng, 11)  # 12-digit fapiao code


def _timestamp(rng: random.Random) -> str:
    moment = 1_500_000_000 + rng.randrange(300_000_000)
    form = rng.randrange(4)
    if form == 0:
        return str(moment)
    if form == 1:
        return f"{moment}{_digits(rng, 3)}"
    day = date(2019, 1, 1) + timedelta(days=rng.randrange(2000))
    hms = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    if form == 2:
        return f"{day:%Y-%m-%d} {hms}"
    return f"{day:%Y%m%d}{hms.replace(':', '')}"


def _amount(rng: random.Random) -> str:
    value = rng.randint(1, 99_999_999) / 100
    form = rng.randrange(4)
    if form == 0:
        return f"¥{value:,.2f}"
    if form == 1:
        return f"${value:,.2f}"
    if form == 2:
        return f"{value:.2f}元"
    return f"USD {value:,.2f}"


_LOOKALIKE_MAKERS: Mapping[str, Callable[[random.Random], str]] = MappingProxyType(
    {
        "order_number": _order_number,
        "ticket_number": _ticket_number,
        "tracking_number": _tracking_number,
        "invoice_number": _invoice_number,
        "timestamp": _timestamp,
        "amount": _amount,
    }
)


def _detectable_number(s: str) -> bool:
    """Any reading of a digit string a detector might take: every validator, a bare Luhn pass (an
    unknown card), the UnionPay non-Luhn case and the GB 11643 checksum alone (a region or date a
    detector does not check). Bare 8/10-digit runs (Taiwan permit shape) are not avoided: every
    timestamp has one, and only context makes them a permit."""
    if any(v.check(t, s) for t in _MUST_FAIL):
        return True
    if v.unionpay_non_luhn(s) or (len(s) >= 13 and v.luhn(s)):
        return True
    return len(s) == 18 and s[:17].isdigit() and _gb11643_check(s[:17]) == s[17].upper()


def _detectable(value: str) -> bool:
    """The whole value, its separator-free form and every digit run inside it (a detector that cuts
    digit runs out of ``SF1234…`` sees those)."""
    compact = v.normalize_digits(value)
    if _detectable_number(value) or _detectable_number(compact):
        return True
    runs = "".join(c if c.isdigit() else " " for c in compact).split()
    return any(_detectable_number(run) for run in runs if run != compact)


def lookalike_value(rng: random.Random, kind: str) -> str:
    """A ``kind`` number (see :data:`LOOKALIKE_KINDS`) that no identifier validator accepts.

    Drawn until it fails every check, including a bare Luhn pass (so no 13-19 digit run can be taken
    for an unknown card), the UnionPay non-Luhn case and a bare GB 11643 checksum.
    """
    maker = _LOOKALIKE_MAKERS.get(kind)
    if maker is None:
        raise MaskingError(f"no look-alike kind {kind!r}; use one of {', '.join(LOOKALIKE_KINDS)}")
    for _ in range(1000):
        value = maker(rng)
        if not _detectable(value):
            return value
    raise MaskingError(f"could not draw an undetectable {kind}; this is a bug")


def lookalike(rng: random.Random) -> tuple[str, str]:
    """``(text, kind)``: an identifier-shaped number in the words that say what it really is.

    The text (``"订单号201908230001234567"``, ``"tracking number 1Z…"``) must produce no finding: its
    number fails every checksum and the context words lower confidence.
    """
    kind = rng.choice(LOOKALIKE_KINDS)
    zh_words, en_words = _LOOKALIKE_CONTEXT[kind]
    words = rng.choice(zh_words if rng.random() < 0.5 else en_words)
    return words + lookalike_value(rng, kind), kind


def lookalike_context(rng: random.Random, kind: str, lang: str) -> str:
    """A context phrase for a ``kind`` look-alike in ``"zh"`` or ``"en"`` (used by the corpus)."""
    zh_words, en_words = _LOOKALIKE_CONTEXT[kind]
    return rng.choice(zh_words if lang == "zh" else en_words)
