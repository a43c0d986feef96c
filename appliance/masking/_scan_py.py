"""Pure-Python twin of the compiled PII scanner in ``ext/_scan.pyx``.

The compiled scanner is the hot path of masking; this module is the reference it is tested against
(hypothesis feeds both the same random Unicode and demands identical output) and the fallback when
no compiler was available. Keep the two behaviourally identical: same candidates, same scores, same
order. The structure of both files is the same, function for function.

Why one pass over code points rather than a dozen regular expressions:

* Boundaries must be CJK-safe. ``\\b`` sees no boundary between "机" and "1" in "手机13812345678",
  so regex maskers miss the most common way Chinese users write numbers. Here a candidate may touch
  anything except an ASCII letter or digit (after full-width folding), so digits inside a longer
  alphanumeric run are never carved into an ID.
* Every candidate is *validated* where it is found (GB 11643 check character and birth date, GB 32100,
  Luhn with real IIN prefixes, mod 97 with the registry length, SSN/ITIN ranges, real mobile prefixes
  and area codes) and scored with its context, so look-alikes cost one check, not a false positive.
* The text is read once; numbers, words and CJK markers dispatch to small recognizers that look only
  a few code points around them.

Output of ``Scanner.scan(text)``: sorted, non-overlapping ``(type_code, start, end, score_milli,
validator_code)`` tuples, offsets in code points of the ORIGINAL text (full-width folding maps one
code point to one, so offsets never shift). Codes index ``TYPES`` and ``VALIDATORS``.

Scoring: each recognizer has a base score and a score for raising and for lowering context (see
``_lexicon``). The nearest context word in a window of 20 code points before and 8 after decides
(longer word wins at equal distance; the window stops at sentence punctuation). Weak shapes (a bare
9-digit number, a Luhn-valid number with no known card prefix, a non-Chinese passport number, a date)
are only reported with raising context; weak checks in lowering context ("订单号", "order no",
"tracking") drop below 500. Overlaps: the higher score wins, then the longer span, then the earlier.

International phone numbers are only *candidates* here (validator ``phone-candidate``): the analyzer
confirms them with libphonenumber, which is too large to reimplement and is needed only for the
rare ``+``/``00``/NANP-shaped spans. National numbers of other countries ("09-7625400", "052 5552606":
8 to 12 digits, no ``+``) are candidates (``phone-national``) only where the nearest context word is
a phone word ("phone", "number", "call", 电话 ...; not "account number", not "order number"); the
analyzer keeps those valid in one of its configured regions.

Decisions worth knowing before changing a rule (each has a test named after it):

* Numbers. A digit run may hold single separators (space, dash, NBSP, ideographic space) between
  groups. It is cut into several numbers only at spaces, never inside dash-joined groups, never
  through a one-digit inner group ("1 1 1 1 ..."), and never off a short group of one or two digits
  ("188 4954 3621 7" is one mistyped number, not a mobile and a 7). A run glued to letters, to a
  decimal point, to '@' or to a code ("INV-2022-330814", "T20240920-1875") is part of something
  longer and yields nothing. Mobiles must also be grouped the way people write them (3-4-4, 3-8,
  7-4 or unbroken): "1775 4865 974" is the tail of a card, not a phone. Bare nine-digit numbers are
  SSNs/ITINs only in context (any 9-digit order id would be one otherwise); a nine-digit number right
  after a context-raised one of its type, with only a list separator between, shares its context.
  IBANs are grouped by spaces or by dashes, one kind per IBAN; SSNs may be dotted (078.05.1123).
* Checks follow validators.py, the authority: GB 11643 with a birth date between 1900 and ``today``
  (a Scanner argument, so the kernels stay pure), GB 32100 with its authority/type table and a
  province region, the allocated mobile segments, libphonenumber's area codes, the issuers' IIN
  table, the IBAN registry's BBAN structure (check digits 00/01/99 refused), SSA ranges and voided
  sample numbers, GA 36 plates. UnionPay numbers failing Luhn are only reported in card context and
  below the default 0.5 floor (some debit cards carry no Luhn digit; the checksum proof is gone).
* Full-width digits and letters count for numbers typed with an IME, but e-mail, IP and MAC
  addresses must be ASCII as written: machines print those. An IP address takes its CIDR prefix length
  ("10.0.0.0/8", "2001:db8::/32") and an IPv6 zone id ("fe80::1%eth0") into the span; an IPv4 address
  may be followed by '@' and an interface ("192.168.2.1@eth0"). Glued forms ("192.168.1.1.1",
  "text::ffff:192.0.2.1") are left alone: no reading of them is the obvious one.
* Addresses (Chinese): a chain of place names and markers (省/市/区/路/号/室 ...) with at least two
  markers, ending at street level or finer; the chain starts after a stop character or a lead verb
  ("改成", "寄到", "位于"), a one-character first name is no place ("回乡证号"), the same marker
  twice in a row ends it, and a six-digit postcode after a space belongs to it. English: a house
  number, capitalised words and a USPS street suffix, optionally a unit and "City, ST 12345"; USPS
  military forms (PSC/Unit ... Box ..., APO/FPO/DPO AA/AE/AP) too.
* Names: a Chinese surname with one or two given-name characters needs a context word right before
  it or an honorific (or "这边") right after; weak introductions (我是, "this is") need the name to
  end there. English names need an introduction, a title ("Dr. Jane Doe"; the span is "Jane Doe",
  titles stay outside as in NER conventions, suffixes like "Jr." stay inside), a common given name
  followed by a surname (lower score), or "here" after them.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["TYPES", "VALIDATORS", "Scanner"]

TYPES: tuple[str, ...] = (
    "CN_RESIDENT_ID", "CN_MOBILE", "CN_LANDLINE", "CN_USCC", "CN_PASSPORT", "CN_PERMIT", "CN_PLATE",
    "BANK_CARD", "IBAN", "US_SSN", "US_ITIN", "PHONE", "EMAIL", "IP_ADDRESS", "MAC_ADDRESS", "PASSPORT",
    "DATE_OF_BIRTH", "PERSON", "ADDRESS",
)  # fmt: skip
(ID, MOBILE, LANDLINE, USCC, CNPASS, PERMIT, PLATE, CARD, IBAN, SSN, ITIN, PHONE, EMAIL, IP, MAC,
 PASSPORT, DOB, PERSON, ADDRESS) = range(19)  # fmt: skip
LOWER = 19  # the context-mask bit of lowering words
NKEYS = 20

VALIDATORS: tuple[str, ...] = (
    "gb11643", "gb11643-15", "cn-mobile-prefix", "cn-area-code", "gb32100", "cn-passport-format",
    "cn-permit-format", "cn-plate-format", "luhn", "mod97", "ssn-ranges", "itin-ranges", "phone-candidate",
    "email-syntax", "ipaddress", "mac-format", "passport+context", "date+context", "surname+context",
    "name+context", "address-markers", "street-address", "unionpay-prefix", "phone-national",
)  # fmt: skip
(V_GB11643, V_GB11643_15, V_MOBILE, V_AREA, V_GB32100, V_CNPASS, V_PERMIT, V_PLATE, V_LUHN, V_MOD97,
 V_SSN, V_ITIN, V_PHONE, V_EMAIL, V_IP, V_MAC, V_PASSPORT, V_DATE, V_SURNAME, V_NAME, V_ADDRESS,
 V_STREET, V_UNIONPAY, V_PHONE_NAT) = range(24)  # fmt: skip

# Character flags (one byte per BMP code point in the compiled twin).
F_CTX = 1  # first (folded) character of a context word
F_SURNAME = 2
F_COMPOUND = 4  # first character of a compound surname
F_NAME_STOP = 8
F_ADDR = 16  # first character of an address marker
F_ADDR_STOP = 32
F_PLATE = 64
F_HONOR = 128  # first character of an honorific

BIG = 1 << 30
WB = 20  # context window before a candidate, code points
WA = 8  # ... and after
LEVEL_ADMIN, LEVEL_STREET, LEVEL_HOUSE = 1, 2, 3

_FOLD = [
    *range(0xFF10, 0xFF1A),
    *range(0xFF21, 0xFF3B),
    *range(0xFF41, 0xFF5B),
    0xFF08,
    0xFF09,
    0xFF0B,
    0xFF0D,
]
# Full-width digits, letters and + - ( ) fold to ASCII, one code point for one.
_NORM = {c: c - 0xFEE0 for c in _FOLD}
_LOWER = {
    **_NORM,
    **{c: c + 32 for c in range(0x41, 0x5B)},
    **{c: c - 0xFEE0 + 32 for c in range(0xFF21, 0xFF3B)},
}

_SEPS = frozenset(" -\u00a0\u2010\u2011\u2012\u2013\u3000")  # inside a digit run, between groups
_WS = frozenset(" \u00a0\u3000")  # the separators a run may be cut at
_PSEPS = frozenset(" -.()\u00a0")  # inside an international phone number
_STOP_BEFORE = frozenset("。！？；!?;\n\r")  # the context window before a candidate stops here
_STOP_AFTER = frozenset("。！？；!?;\n\r，,.、:：")
_NAME_GAP = frozenset(":： \u3000是为")
_PLATE_SEPS = frozenset("·•・ -\u00b7")
_PLATE_SPECIAL = frozenset("学警挂港澳领")
_NEV_SMALL = frozenset("ABCDEFGHJK")  # GA 36-2018 (2022): small new-energy plates
_LOCAL = frozenset("._%+-")
_LIST_SEPS = frozenset(" \u00a0\u3000,，、")  # between the items of a list of numbers
# GB/T 2260 province-level codes; 83: residence permits of Taiwan residents (2018), GB 11643 format.
_PROVINCES = frozenset(
    str(p)
    for p in (*range(11, 16), 21, 22, 23, *range(31, 38), *range(41, 47), *range(50, 55), *range(61, 66))
) | {"71", "81", "82", "83"}
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# GB 32100-2015 table 1: registration authority -> the organisation types it may issue.
_USCC_HEADS = frozenset(
    a + t
    for a, types in {
        "1": "1239", "2": "19", "3": "1234569", "4": "19", "5": "1239", "6": "129", "7": "129", "8": "19",
        "9": "123", "A": "19", "N": "1239", "Y": "1",
    }.items()
    for t in types
)  # fmt: skip
_SSN_VOID = frozenset({"078051120", "219099999", "123456789"})  # SSA-voided advertising/sample numbers
_MONTH_DAYS = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


# --- characters (all on folded text) ---------------------------------------------------------------


def _digit(c: str) -> bool:
    return "0" <= c <= "9"


def _upper(c: str) -> bool:
    return "A" <= c <= "Z"


def _alpha(c: str) -> bool:
    return "A" <= c <= "Z" or "a" <= c <= "z"


def _word(c: str) -> bool:
    return "0" <= c <= "9" or "A" <= c <= "Z" or "a" <= c <= "z"


def _hex(c: str) -> bool:
    return "0" <= c <= "9" or "A" <= c <= "F" or "a" <= c <= "f"


def _cjk(c: str) -> bool:
    o = ord(c)
    return 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x323AF


def _plate_letter(c: str) -> bool:
    return "A" <= c <= "Z" and c != "I" and c != "O"


def _blocked_after(s: str, n: int, e: int) -> bool:
    """A number ending before ``e`` would be carved out of something longer."""
    if e >= n:
        return False
    c = s[e]
    if c == "-":  # "12345-ABC": one code
        return e + 1 < n and _alpha(s[e + 1])
    return _word(c) or c == "@" or ((c == "." or c == ",") and e + 1 < n and _digit(s[e + 1]))


def _blocked_before(s: str, i: int) -> bool:
    """The number starting at ``i`` continues a decimal/thousands number, a code ("INV-2022-..."), or
    the domain after '@'."""
    if i == 0:
        return False
    c = s[i - 1]
    if c == "-":
        return i >= 2 and _word(s[i - 2])
    return c == "@" or ((c == "." or c == ",") and i >= 2 and _digit(s[i - 2]))


def _int_run(s: str, n: int, k: int, most: int) -> tuple[int, int]:
    """Exactly 1..``most`` digits at ``k``: (value, end), else (-1, k)."""
    e = k
    while e < n and _digit(s[e]) and e - k <= most:
        e += 1
    if e == k or e - k > most:
        return -1, k
    return int(s[k:e]), e


def _birth_ok(y: int, m: int, d: int, today: int) -> bool:
    """A real calendar date from 1900-01-01 up to ``today`` (YYYYMMDD): someone's birth date."""
    if not (1900 <= y <= 9999 and 1 <= m <= 12 and d >= 1) or y * 10000 + m * 100 + d > today:
        return False
    if m == 2 and d == 29:
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return d <= _MONTH_DAYS[m]


# --- checks -----------------------------------------------------------------------------------------


def _id18_ok(d: str, today: int) -> bool:
    """GB 11643: province prefix, a real birth date, and the ISO 7064 MOD 11-2 check character."""
    if d[:2] not in _PROVINCES or not _birth_ok(int(d[6:10]), int(d[10:12]), int(d[12:14]), today):
        return False
    total = 0
    for k in range(17):
        total += (ord(d[k]) - 48) * _ID_WEIGHTS[k]
    return _ID_CHECK[total % 11] == d[17].upper()


def _id15_ok(d: str, today: int) -> bool:
    """Pre-1999 15-digit form: province prefix and a real 19YYMMDD birth date (it has no check digit)."""
    return d[:2] in _PROVINCES and _birth_ok(1900 + int(d[6:8]), int(d[8:10]), int(d[10:12]), today)


def _uscc_ok(s: str, i: int) -> bool:
    """GB 32100: authority and type from table 1, a region under a province (or 10, national), 9 code
    characters, and the MOD 31 check character."""
    if s[i : i + 2] not in _USCC_HEADS or (s[i + 2 : i + 4] not in _PROVINCES and s[i + 2 : i + 4] != "10"):
        return False
    total = 0
    for k in range(17):
        c = s[i + k]
        if 2 <= k < 8 and not _digit(c):
            return False
        v = _USCC_ALPHABET.find(c)
        if v < 0:
            return False
        total += v * _USCC_WEIGHTS[k]
    return s[i + 17] == _USCC_ALPHABET[(31 - total % 31) % 31]


def _mobile_ok(d: str) -> bool:
    """Mainland mobile: 11 digits on a number segment the MIIT has allocated (1740x/1749x satellite
    only; 140-144 are 13-digit IoT numbers; 154, 16[0134890], 179 and 194 are unallocated)."""
    if len(d) != 11 or d[0] != "1":
        return False
    a, b = d[1], d[2]
    if a == "3" or a == "8":
        return True
    if a == "4":
        return "5" <= b <= "9"
    if a == "5" or a == "9":
        return b != "4"
    if a == "6":
        return b == "2" or b == "5" or b == "6" or b == "7"
    if a == "7":
        return "0" <= b <= "3" or "5" <= b <= "8" or (b == "4" and (d[3] == "0" or d[3] == "9"))
    return False


def _mobile_shape(lens: list[int]) -> bool:
    """How people group a mobile number: unbroken, 3-4-4, 3-8 or 7-4 (a 4-4-3 run is part of a card)."""
    return lens == [11] or lens == [3, 4, 4] or lens == [3, 8] or lens == [7, 4]


def _luhn(d: str) -> bool:
    total = 0
    alt = False
    for k in range(len(d) - 1, -1, -1):
        v = ord(d[k]) - 48
        if alt:
            v *= 2
            if v > 9:
                v -= 9
        total += v
        alt = not alt
    return total % 10 == 0


def _card_network(d: str) -> bool:
    """Whether the IIN and length belong to a card network: Visa, Mastercard, Amex, Discover, JCB, Diners,
    UnionPay, Maestro, Mir, UATP (1, 15 digits), Dankort (5019, 16 digits): the issuers' published IIN
    ranges, as ``validators.card_network`` has them."""
    n = len(d)
    d2 = int(d[:2])
    d3 = int(d[:3])
    d4 = int(d[:4])
    if d[0] == "4":
        return n == 13 or n == 16 or n == 19
    if d[0] == "1":
        return n == 15
    if d4 == 5019:
        return n == 16
    if 51 <= d2 <= 55 or 2221 <= d4 <= 2720:
        return n == 16
    if d2 == 34 or d2 == 37:
        return n == 15
    if 300 <= d3 <= 305 or d4 == 3095 or d2 == 36 or d2 == 38 or d2 == 39:
        return n >= 14
    if 3528 <= d4 <= 3589 or 2200 <= d4 <= 2204 or d2 == 62 or d4 == 6011 or 644 <= d3 <= 649 or d2 == 65:
        return n >= 16
    return (
        d4 == 5018 or d4 == 5020 or d4 == 5038 or d4 == 5893 or d4 == 6304 or d4 == 6759 or 6761 <= d4 <= 6763
    )


def _ssn_ok(d: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000; not a voided sample."""
    return (
        d[:3] != "000" and d[:3] != "666" and d[0] != "9" and d[3:5] != "00" and d[5:] != "0000"
        and d not in _SSN_VOID
    )  # fmt: skip


def _itin_ok(d: str) -> bool:
    """IRS ITIN: 9xx with a group in 50-65, 70-88, 90-92 or 94-99."""
    if d[0] != "9":
        return False
    g = int(d[3:5])
    return 50 <= g <= 65 or 70 <= g <= 88 or 90 <= g <= 92 or 94 <= g <= 99


def _nanp_ok(d: str) -> bool:
    """NANP shape: area code and exchange start with 2-9 (``d`` is the 10-digit national number)."""
    return "2" <= d[0] <= "9" and "2" <= d[3] <= "9"


def _ipv4_ok(s: str, a: int, b: int) -> bool:
    """Four dotted decimal octets 0-255 without leading zeros (as ``ipaddress`` accepts)."""
    parts = 0
    k = a
    while True:
        g = k
        while k < b and _digit(s[k]):
            k += 1
        if k == g or k - g > 3 or (k - g > 1 and s[g] == "0") or int(s[g:k]) > 255:
            return False
        parts += 1
        if k == b:
            return parts == 4
        if s[k] != "." or parts == 4:
            return False
        k += 1


def _ipv6_ok(s: str, a: int, b: int) -> bool:
    """RFC 4291 text forms, the rules of ``ipaddress.IPv6Address`` (embedded IPv4 tail included)."""
    seps = [k for k in range(a, b) if s[k] == ":"]
    if len(seps) < 2 or len(seps) > 8:
        return False
    starts = [a] + [k + 1 for k in seps]
    ends = [*seps, b]
    nparts = len(starts)
    groups = nparts
    last_a, last_b = starts[-1], ends[-1]
    if any(s[k] == "." for k in range(last_a, last_b)):
        if not _ipv4_ok(s, last_a, last_b):
            return False
        groups += 1  # the dotted quad stands for two groups
    if groups > 9:
        return False
    skip = -1
    for k in range(1, nparts - 1):
        if starts[k] == ends[k]:
            if skip >= 0:
                return False
            skip = k
    empty_first = starts[0] == ends[0]
    empty_last = last_a == last_b
    if skip >= 0:
        hi = skip
        lo = groups - skip - 1
        if empty_first:
            hi -= 1
            if hi:
                return False
        if empty_last:
            lo -= 1
            if lo:
                return False
        if 8 - (hi + lo) < 1:
            return False
    else:
        if groups != 8 or empty_first or empty_last:
            return False
    for k in range(nparts):
        if k == nparts - 1 and groups > nparts:
            break  # the IPv4 tail, checked above
        ln = ends[k] - starts[k]
        if ln > 4:
            return False
        for q in range(starts[k], ends[k]):
            if not _hex(s[q]):
                return False
    return True


def _zone(s: str, n: int, e: int) -> int:
    """End of an IPv6 zone id ("%eth0", RFC 4007: ``%`` and [A-Za-z0-9._-]) at ``e``, else ``e``."""
    if not (e < n and s[e] == "%"):
        return e
    k = e + 1
    while k < n and (_word(s[k]) or s[k] == "." or s[k] == "_" or s[k] == "-"):
        k += 1
    while k > e + 1 and s[k - 1] == ".":
        k -= 1  # a full stop ends the sentence, not the zone
    return k if k > e + 1 else e


def _prefix(s: str, n: int, e: int, most: int) -> int:
    """End of a CIDR prefix length ("/24", 0..``most``, no leading zero) at ``e``, else ``e``."""
    if not (e + 1 < n and s[e] == "/" and _digit(s[e + 1])):
        return e
    q = k = e + 1
    while k < n and _digit(s[k]) and k - q < 4:
        k += 1
    if k - q > 3 or (k - q > 1 and s[q] == "0") or int(s[q:k]) > most:
        return e
    if _blocked_after(s, n, k) or (k < n and s[k] == "/"):
        return e  # "10.0.0.0/8/x", "/24abc": not a prefix length
    return k


def _email_end(s: str, n: int, i: int) -> int:
    """End of the e-mail address whose local part starts at ``i``, else 0."""
    k = i
    while k < n and k - i <= 64 and (_word(s[k]) or s[k] in _LOCAL):
        k += 1
    if k >= n or s[k] != "@" or k - i > 64 or s[k - 1] == ".":
        return 0
    for q in range(i, k - 1):
        if s[q] == "." and s[q + 1] == ".":
            return 0
    d = k + 1
    j = d
    labels = 0
    last = d
    while True:
        ls = j
        while j < n and j - d < 255 and (_word(s[j]) or s[j] == "-"):
            j += 1
        if j == ls or s[ls] == "-" or s[j - 1] == "-" or j - ls > 63:
            return 0
        labels += 1
        last = ls
        if j + 1 < n and s[j] == "." and _word(s[j + 1]):
            j += 1
            continue
        break
    if labels < 2 or j - last < 2 or j - i > 254:
        return 0
    for q in range(last, j):
        if not _alpha(s[q]):
            return 0
    if j < n and (_word(s[j]) or s[j] == "-"):
        return 0
    return j


def _iban_mod97(s: str, i: int, chars: list[int]) -> bool:
    """ISO 7064 MOD 97-10 over the IBAN moved 4 characters left, letters as 10..35."""
    r = 0
    m = len(chars)
    for q in range(m):
        c = s[chars[(q + 4) % m]]
        if _digit(c):
            r = (r * 10 + ord(c) - 48) % 97
        else:
            r = (r * 100 + ord(c) - 55) % 97
    return r == 1


def _decide(keys: list[int], t: int) -> int:
    """+1 if raising context is nearest, -1 if lowering is, 0 if neither is in the window."""
    r = keys[t]
    lo = keys[LOWER]
    if r < BIG and r <= lo:
        return 1
    if lo < BIG:
        return -1
    return 0


def _phone_ctx(keys: list[int]) -> bool:
    """Whether the nearest context word is about phones: a raising PHONE word, with no lowering word and
    no other type's word nearer ("account number" is a card's, "passport number" a passport's)."""
    r = keys[PHONE]
    if r >= BIG or r > keys[LOWER]:
        return False
    for t in range(LOWER):
        if keys[t] < r and t != PHONE and t != MOBILE and t != LANDLINE:
            return False
    return True


def _listed(s: str, a: int, b: int) -> bool:
    """Only a list separator (a space, a comma, "、") between ``a`` and ``b``."""
    if not 0 < b - a <= 2:
        return False
    for q in range(a, b):
        if s[q] not in _LIST_SEPS:
            return False
    return True


def _resolve(cands: list[tuple[int, int, int, int, int]]) -> list[tuple[int, int, int, int, int]]:
    """Sorted, non-overlapping (type, start, end, score, validator): best score, then longest, wins."""
    if not cands:
        return []
    cands.sort()
    for k in range(1, len(cands)):
        if cands[k][0] < cands[k - 1][1]:
            break
    else:
        return [(t, a, b, sc, v) for a, b, sc, t, v in cands]
    starts: list[int] = []
    ends: list[int] = []
    picked: list[tuple[int, int, int, int, int]] = []
    for c in sorted(cands, key=lambda c: (-c[2], c[0] - c[1], c[0], c[3], c[4])):
        a, b = c[0], c[1]
        k = bisect_left(starts, b)
        if k > 0 and ends[k - 1] > a:
            continue
        starts.insert(k, a)
        ends.insert(k, b)
        picked.insert(k, c)
    return [(t, a, b, sc, v) for a, b, sc, t, v in picked]


def _fold(word: str) -> str:
    return word.translate(_LOWER)


def _table(words: dict[str, int]) -> dict[str, tuple[tuple[str, int], ...]]:
    """Words by first character, longest first."""
    by: dict[str, list[tuple[str, int]]] = {}
    for w, v in words.items():
        by.setdefault(w[0], []).append((w, v))
    return {c: tuple(sorted(ws, key=lambda x: (-len(x[0]), x[0]))) for c, ws in by.items()}


def _check_words(name: str, words: Sequence[str], *, single: bool = False) -> None:
    for w in words:
        if not isinstance(w, str) or not w or len(w) > 64:
            raise ValueError(f"{name}: {w!r} must be a non-empty string of at most 64 code points")
        if single and len(w) != 1:
            raise ValueError(f"{name}: {w!r} must be a single character")
        if any(ord(c) > 0xFFFF for c in w):
            raise ValueError(f"{name}: {w!r} has a character outside the Basic Multilingual Plane")


class Scanner:
    """Finds PII candidates in one pass; build once from the lexicon, then call ``scan`` per text."""

    def __init__(
        self,
        *,
        raising: Sequence[Sequence[str]],
        lowering: Sequence[str],
        surnames: Sequence[str],
        compound_surnames: Sequence[str],
        name_before: Sequence[str],
        name_before_weak: Sequence[str],
        honorifics: Sequence[str],
        name_stops: Sequence[str],
        name_titles: Sequence[str],
        name_after: Sequence[str],
        name_suffixes: Sequence[str],
        given_names: Sequence[str],
        nonnames: Sequence[str],
        address_markers: Sequence[Sequence[str]],
        address_stops: Sequence[str],
        address_lead: Sequence[str],
        street_suffixes: Sequence[str],
        street_units: Sequence[str],
        us_states: Sequence[str],
        plate_provinces: Sequence[str],
        months: Sequence[str],
        iban_formats: Sequence[str],
        cn_area_codes: Sequence[str],
        today: int,
    ) -> None:
        if len(raising) != len(TYPES):
            raise ValueError(f"raising: need one tuple of words per type ({len(TYPES)}), got {len(raising)}")
        if len(address_markers) != 3:
            raise ValueError("address_markers: need (administrative, street, house) tuples")
        if len(months) != 12:
            raise ValueError("months: need the 12 month names, January first")
        flags: dict[str, int] = {}

        def flag(c: str, f: int) -> None:
            flags[c] = flags.get(c, 0) | f

        ctx: dict[str, int] = {}
        for t, words in enumerate(raising):
            _check_words("raising", words)
            for w in words:
                ctx[_fold(w)] = ctx.get(_fold(w), 0) | (1 << t)
        _check_words("lowering", lowering)
        for w in lowering:
            ctx[_fold(w)] = ctx.get(_fold(w), 0) | (1 << LOWER)
        for w in ctx:
            flag(w[0], F_CTX)
        self._ctx = _table(ctx)

        _check_words("surnames", surnames, single=True)
        for c in surnames:
            flag(c, F_SURNAME)
        _check_words("compound_surnames", compound_surnames)
        self._compound = _table({w: 1 for w in compound_surnames})
        for w in compound_surnames:
            flag(w[0], F_COMPOUND)
        trig: dict[str, int] = {}
        _check_words("name_before_weak", name_before_weak)
        for w in name_before_weak:
            trig[_fold(w)] = 1
        _check_words("name_before", name_before)
        for w in name_before:
            trig[_fold(w)] = 2
        self._trig = _table({w[::-1]: v for w, v in trig.items()})  # backwards, by last character
        _check_words("honorifics", honorifics)
        self._honor = _table({w: 1 for w in honorifics})
        for w in honorifics:
            flag(w[0], F_HONOR)
        _check_words("name_stops", name_stops, single=True)
        for c in name_stops:
            flag(c, F_NAME_STOP)
        _check_words("name_titles", name_titles)
        self._titles = frozenset(_fold(w) for w in name_titles)
        _check_words("name_after", name_after)
        self._name_after = _table({_fold(w): 1 for w in name_after})
        _check_words("name_suffixes", name_suffixes)
        self._name_suffixes = frozenset(_fold(w) for w in name_suffixes)
        _check_words("given_names", given_names)
        self._given = frozenset(_fold(w) for w in given_names)
        _check_words("nonnames", nonnames)
        self._nonnames = frozenset(_fold(w) for w in nonnames)

        markers: dict[str, int] = {}
        for level, words in enumerate(address_markers, start=1):
            _check_words("address_markers", words)
            for w in words:
                markers[w] = level
                flag(w[0], F_ADDR)
        self._markers = _table(markers)
        _check_words("address_stops", address_stops, single=True)
        for c in address_stops:
            flag(c, F_ADDR_STOP)
        _check_words("address_lead", address_lead)
        self._lead = _table({w[::-1]: 1 for w in address_lead})  # backwards, by last character
        _check_words("street_suffixes", street_suffixes)
        self._suffixes = frozenset(_fold(w) for w in street_suffixes)
        _check_words("street_units", street_units)
        self._units = frozenset(_fold(w) for w in street_units)
        _check_words("us_states", us_states)
        self._states = frozenset(us_states)
        _check_words("plate_provinces", plate_provinces, single=True)
        for c in plate_provinces:
            flag(c, F_PLATE)
        _check_words("months", months)
        month_words: dict[str, int] = {}
        for m, w in enumerate(months, start=1):
            w = _fold(w)
            month_words[w] = m
            month_words[w[:3]] = m
            if w.startswith("sept"):
                month_words["sept"] = m
        self._months = month_words
        _check_words("iban_formats", iban_formats)
        formats: dict[str, str] = {}
        for w in iban_formats:
            if not (6 <= len(w) <= 36 and _upper(w[0]) and _upper(w[1]) and all(c in "nac" for c in w[2:])):
                raise ValueError(f"iban_formats: {w!r} must be a country code and n/a/c per BBAN character")
            formats[w[:2]] = w[2:]
        self._iban_formats = formats
        _check_words("cn_area_codes", cn_area_codes)
        for w in cn_area_codes:
            if not (2 <= len(w) <= 3 and w.isascii() and w.isdigit()):
                raise ValueError(f"cn_area_codes: {w!r} must be the 2 or 3 digits after the trunk 0")
        self._area2 = frozenset(w for w in cn_area_codes if len(w) == 2)
        self._area3 = frozenset(w for w in cn_area_codes if len(w) == 3)
        if not (isinstance(today, int) and 19000101 <= today <= 99991231):
            raise ValueError(f"today: {today!r} must be a date as the integer YYYYMMDD")
        self._today = today
        self._flags = flags

    # --- the pass -----------------------------------------------------------------------------------

    def scan(self, text: str) -> list[tuple[int, int, int, int, int]]:
        """Sorted, non-overlapping ``(type, start, end, score_milli, validator)`` for ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"scan() needs a str, not {type(text).__name__}")
        n = len(text)
        s = text.translate(_NORM)
        low = text.translate(_LOWER)
        cands: list[tuple[int, int, int, int, int]] = []
        has_at = "@" in text
        flags = self._flags
        i = 0
        while i < n:
            c = s[i]
            if _word(c):
                if i > 0 and _word(s[i - 1]):
                    i += 1
                    continue
                i = self._word(text, s, low, n, i, has_at, cands)
                continue
            e = 0
            if c == "+":
                if i + 1 < n and _digit(s[i + 1]) and (i == 0 or not _word(s[i - 1])):
                    e = self._intl(s, low, n, i, i + 1, cands)
            elif c == "(":
                e = self._paren(s, low, n, i, cands)
            elif c == ":":
                if i + 1 < n and s[i + 1] == ":" and (i == 0 or (not _word(s[i - 1]) and s[i - 1] != ":")):
                    e = self._ipv6(text, s, low, n, i, cands)
            else:
                f = flags.get(c, 0)
                if f & (F_PLATE | F_SURNAME | F_COMPOUND | F_ADDR):
                    e = self._cjk(s, low, n, i, f, cands)
            i = e if e else i + 1
        return _resolve(cands)

    # --- context ------------------------------------------------------------------------------------

    def _window(self, low: str, n: int, start: int, end: int) -> list[int]:
        """Nearest context hit per type (and for lowering): distance * 256 - word length, or BIG."""
        keys = [BIG] * NKEYS
        table = self._ctx
        lo = start
        while lo > 0 and start - lo < WB and low[lo - 1] not in _STOP_BEFORE:
            lo -= 1
        for p in range(lo, start):
            words = table.get(low[p])
            if words:
                self._hits(low, n, p, start, words, keys, start - p)
        hi = end
        while hi < n and hi - end < WA and low[hi] not in _STOP_AFTER:
            hi += 1
        for p in range(end, hi):
            words = table.get(low[p])
            if words:
                self._hits(low, n, p, hi, words, keys, -1 - (p - end))
        return keys

    @staticmethod
    def _hits(
        low: str, n: int, p: int, limit: int, words: tuple[tuple[str, int], ...], keys: list[int], span: int
    ) -> None:
        """Record words at ``p`` ending by ``limit``; ``span`` >= 0: before (p to start), < 0: after."""
        for w, mask in words:
            ln = len(w)
            if p + ln > limit or not low.startswith(w, p):
                continue
            if _alpha(w[0]) and p > 0 and _alpha(low[p - 1]):
                continue
            if _alpha(w[-1]) and p + ln < n and _alpha(low[p + ln]):
                continue
            dist = span - ln if span >= 0 else -1 - span
            key = dist * 256 - ln
            for t in range(NKEYS):
                if mask >> t & 1 and key < keys[t]:
                    keys[t] = key

    def _add(self, cands: list, low: str, n: int, a: int, b: int, t: int, v: int, base: int, up: int,
             down: int) -> None:  # fmt: skip
        d = _decide(self._window(low, n, a, b), t)
        cands.append((a, b, up if d > 0 else down if d < 0 else base, t, v))

    # --- words: e-mail, network addresses, numbers, alphanumeric codes ------------------------------

    def _word(self, text: str, s: str, low: str, n: int, i: int, has_at: bool, cands: list) -> int:
        """Recognizers for the ASCII word starting at ``i``; returns where the pass continues.

        ``text`` is the unfolded input: e-mail and network addresses are ASCII (full-width digits are
        folded for numbers people type with an IME, not for addresses machines print).
        """
        if has_at:
            e = _email_end(s, n, i)
            if e and text[i:e].isascii():
                self._add(cands, low, n, i, e, EMAIL, V_EMAIL, 900, 950, 900)
                return e
        j = i + 1
        while j < n and _word(s[j]):
            j += 1
        if j < n and j - i <= 4 and (s[j] == ":" or s[j] == "-" or s[j] == "."):
            k = i
            while k < j and _hex(s[k]):
                k += 1
            if k == j:
                e = self._network(text, s, low, n, i, j, cands)
                if e:
                    return e
        if _digit(s[i]):
            e = self._date_num(s, low, n, i, cands)
            if e:
                return e
            e = self._street(s, low, n, i, j, cands)
            if e:
                return e
            k = i
            while k < j and _digit(s[k]):
                k += 1
            if k == j or (k + 1 == j and (s[k] == "X" or s[k] == "x")):
                return self._numeric(s, low, n, i, cands)
            self._alnum(s, low, n, i, j, cands)
            return j
        e = self._iban(s, low, n, i, cands)
        if e:
            return e
        if self._alnum(s, low, n, i, j, cands):
            return j
        e = self._military(s, low, n, i, j, cands)
        if e:
            return e
        e = self._date_word(s, low, n, i, j, cands)
        if e:
            return e
        e = self._person_en(s, low, n, i, cands)
        return e if e else j

    def _network(self, text: str, s: str, low: str, n: int, i: int, j: int, cands: list) -> int:
        """MAC (aa:bb:.., aa-bb-.., aabb.ccdd.eeff), IPv6, IPv4 and dotted NANP numbers."""
        sep = s[j]
        if i > 0 and (s[i - 1] == ":" or s[i - 1] == "-" or s[i - 1] == "."):
            return 0
        e = 0
        if j - i == 2 and sep != ".":
            e = i + 17
            for g in range(6):
                a = i + 3 * g
                if (
                    a + 2 > n
                    or not (_hex(s[a]) and _hex(s[a + 1]))
                    or (g < 5 and (a + 2 >= n or s[a + 2] != sep))
                ):
                    e = 0
                    break
            if e and e < n and (_word(s[e]) or s[e] == sep):
                e = 0
        elif j - i == 4 and sep == ".":
            e = i + 14
            for g in range(3):
                a = i + 5 * g
                if (
                    a + 4 > n
                    or not all(_hex(s[q]) for q in range(a, a + 4))
                    or (g < 2 and (a + 4 >= n or s[a + 4] != "."))
                ):
                    e = 0
                    break
            if e and e < n and (_word(s[e]) or (s[e] == "." and e + 1 < n and _word(s[e + 1]))):
                e = 0
        if e and text[i:e].isascii():
            self._add(cands, low, n, i, e, MAC, V_MAC, 850, 950, 600)
            return e
        if sep == ":":
            return self._ipv6(text, s, low, n, i, cands)
        if sep == ".":
            return self._dotted(text, s, low, n, i, cands)
        return 0

    def _ipv6(self, text: str, s: str, low: str, n: int, i: int, cands: list) -> int:
        k = i
        while k < n and k - i < 46 and (_hex(s[k]) or s[k] == ":" or s[k] == "."):
            k += 1
        if k < n and _word(s[k]):
            return 0
        e = k
        while e > i and s[e - 1] == ".":
            e -= 1
        if e - i >= 2 and s[e - 1] == ":" and s[e - 2] != ":":
            e -= 1
        if not _ipv6_ok(s, i, e) or not text[i:e].isascii():
            return 0
        if e == k:
            z = _prefix(s, n, _zone(s, n, e), 128)
            if text[e:z].isascii():
                e = z
        self._add(cands, low, n, i, e, IP, V_IP, 850, 950, 600)
        return e

    def _dotted(self, text: str, s: str, low: str, n: int, i: int, cands: list) -> int:
        """Dotted digit groups: an IPv4 address, or a NANP number written 415.555.0132."""
        if _blocked_before(s, i):
            return 0
        lens: list[int] = []
        k = i
        while True:
            g = k
            while k < n and _digit(s[k]) and k - g < 4:
                k += 1
            lens.append(k - g)
            if len(lens) < 4 and k + 1 < n and s[k] == "." and _digit(s[k + 1]):
                k += 1
                continue
            break
        ip = len(lens) == 4 and _ipv4_ok(s, i, k)
        if _blocked_after(s, n, k) and not (ip and s[k] == "@"):  # "192.168.2.1@eth0": at an interface
            return 0
        if ip:
            if not text[i:k].isascii():
                return 0
            e = _prefix(s, n, k, 32)
            if not text[k:e].isascii():
                e = k
            self._add(cands, low, n, i, e, IP, V_IP, 750, 950, 300)
            return e
        d = "".join(c for c in s[i:k] if c != ".")
        if lens == [3, 2, 4]:  # an SSN written 078.05.1123
            return k if self._nine(s, low, n, i, k, d, lens, cands) else 0
        if lens == [3, 3, 4] or (lens == [1, 3, 3, 4] and d[0] == "1"):
            if _nanp_ok(d[-10:]):
                self._add(cands, low, n, i, k, PHONE, V_PHONE, 650, 900, 300)
                return k
        return 0

    def _numeric(self, s: str, low: str, n: int, i: int, cands: list) -> int:
        """A run of digit groups joined by single separators: cut it at spaces into classified numbers.

        A run is only cut where a space separates groups (dash-joined groups are one identifier), and
        a candidate uses whole groups only; the longest classifiable stretch from the left wins.
        """
        gs: list[tuple[int, int]] = []
        seps: list[str] = []
        p = i
        x_end = False
        while True:
            q = p
            while q < n and _digit(s[q]):
                q += 1
            if q < n and (s[q] == "X" or s[q] == "x") and (q + 1 == n or not _word(s[q + 1])):
                gs.append((p, q + 1))
                x_end = True
                p = q + 1
                break
            gs.append((p, q))
            if q + 1 < n and s[q] in _SEPS and _digit(s[q + 1]):
                seps.append(s[q])
                p = q + 1
                continue
            p = q
            break
        run_end = p
        ng = len(gs)
        last_ok = ng - 2 if _blocked_after(s, n, run_end) else ng - 1
        first = a = 1 if _blocked_before(s, i) else 0
        while a <= last_ok:
            if a > first and (seps[a - 1] not in _WS or gs[a - 1][1] - gs[a - 1][0] <= 2):
                a += 1  # cut only at spaces, and not off a short group: "188 4954 3621 7" is one number
                continue
            total = 0
            ends: list[int] = []
            for b in range(a, last_ok + 1):
                total += gs[b][1] - gs[b][0]
                if total > 20 or (b > a + 1 and gs[b - 1][1] - gs[b - 1][0] < 2):
                    break  # too long, or a one-digit group inside: "1 1 1 1 ..." is no number
                if b == ng - 1 or (seps[b] in _WS and (b + 1 > last_ok or gs[b + 1][1] - gs[b + 1][0] > 2)):
                    ends.append(b)
            found = -1
            for b in reversed(ends):
                if self._classify(s, low, n, gs, seps, a, b, x_end and b == ng - 1, cands):
                    found = b
                    break
            a = found + 1 if found >= 0 else a + 1
        return run_end

    def _classify(self, s: str, low: str, n: int, gs: list, seps: list, a: int, b: int, x: bool,
                  cands: list) -> bool:  # fmt: skip
        start = gs[a][0]
        end = gs[b][1]
        d = "".join(s[gs[k][0] : gs[k][1]] for k in range(a, b + 1))
        ln = len(d)
        lens = [gs[k][1] - gs[k][0] for k in range(a, b + 1)]
        if x:
            if ln == 18 and _id18_ok(d, self._today):
                self._add(cands, low, n, start, end, ID, V_GB11643, 950, 990, 550)
                return True
            return False
        if ln == 18:
            if _id18_ok(d, self._today):
                self._add(cands, low, n, start, end, ID, V_GB11643, 950, 990, 550)
                return True
            if _uscc_ok(d, 0):
                self._add(cands, low, n, start, end, USCC, V_GB32100, 950, 990, 550)
                return True
        if ln == 15:
            if (
                d[:4] == "0086"
                and _mobile_ok(d[4:])
                and (lens == [15] or (lens[0] == 4 and _mobile_shape(lens[1:])))
            ):
                self._add(cands, low, n, start, end, MOBILE, V_MOBILE, 950, 990, 550)
                return True
            if _id15_ok(d, self._today) and not ((d[:2] == "34" or d[:2] == "37") and _luhn(d)):
                self._add(cands, low, n, start, end, ID, V_GB11643_15, 700, 950, 300)
                return True
        if (
            ln == 13
            and d[:2] == "86"
            and _mobile_ok(d[2:])
            and (lens == [13] or (lens[0] == 2 and _mobile_shape(lens[1:])))
        ):
            self._add(cands, low, n, start, end, MOBILE, V_MOBILE, 950, 990, 550)
            return True
        if (ln == 10 and lens == [3, 3, 4]) or (ln == 11 and lens == [1, 3, 3, 4] and d[0] == "1"):
            if _nanp_ok(d[-10:]) and seps[a] == seps[b - 1]:
                self._add(cands, low, n, start, end, PHONE, V_PHONE, 650, 900, 300)
                return True
        if ln == 11 and _mobile_ok(d) and _mobile_shape(lens):
            self._add(cands, low, n, start, end, MOBILE, V_MOBILE, 850, 980, 300)
            return True
        if ln >= 10 and d[0] == "0" and d[1] != "0":
            if self._landline(s, low, n, gs, seps, a, b, d, lens, cands):
                return True
        if 13 <= ln <= 19:
            if _luhn(d):
                if _card_network(d):
                    self._add(cands, low, n, start, end, CARD, V_LUHN, 800, 980, 300)
                else:
                    self._add(cands, low, n, start, end, CARD, V_LUHN, 400, 850, 300)
                return True
            if ln >= 16 and d[:2] == "62" and _decide(self._window(low, n, start, end), CARD) > 0:
                cands.append((start, end, 450, CARD, V_UNIONPAY))  # no Luhn: below the default floor
                return True
        if ln == 9:
            return self._nine(s, low, n, start, end, d, lens, cands)
        if a == 0 and d[:2] == "00" and 9 <= ln <= 17 and d[2] != "0":  # 00 prefix opens a run
            if d[2:4] == "86" and self._landline_area("0" + d[4:]):
                self._add(cands, low, n, start, end, LANDLINE, V_AREA, 900, 950, 550)
            else:
                self._add(cands, low, n, start, end, PHONE, V_PHONE, 600, 900, 300)
            return True
        if 8 <= ln <= 12:
            keys = self._window(low, n, start, end)
            phone = _phone_ctx(keys)
            if ln == 10 and phone and _nanp_ok(d):
                cands.append((start, end, 750, PHONE, V_PHONE))
                return True
            if (ln == 8 or ln == 10) and _decide(keys, PERMIT) > 0:
                cands.append((start, end, 850, PERMIT, V_PERMIT))
                return True
            if phone:  # "电话 09-7625400": a national number, the analyzer checks it by region
                cands.append((start, end, 750, PHONE, V_PHONE_NAT))
                return True
        return False

    def _landline_area(self, d: str) -> int:
        """Length of the area code (with its 0) if ``d`` is a mainland fixed-line number, else 0.

        Two-digit areas (010, 02x) have 8-digit local numbers, three-digit ones 7 or 8 (cities moved to
        8 at different times); local numbers never start with 0 or 1 (trunk and service prefixes).
        """
        n = len(d)
        if n < 11 or n > 12 or d[0] != "0":
            return 0
        if d[1:3] in self._area2:
            return 3 if n == 11 and d[3] > "1" else 0
        return 4 if d[1:4] in self._area3 and d[4] > "1" else 0

    def _landline(self, s: str, low: str, n: int, gs: list, seps: list, a: int, b: int, d: str, lens: list,
                  cands: list) -> bool:  # fmt: skip
        start = gs[a][0]
        end = gs[b][1]
        area = self._landline_area(d)
        if area:
            formatted = b > a and lens[0] == area
            if formatted:
                self._add(cands, low, n, start, end, LANDLINE, V_AREA, 750, 950, 300)
            else:
                self._add(cands, low, n, start, end, LANDLINE, V_AREA, 400, 850, 300)
            return True
        # an extension after a dash: 010-12345678-801
        if b - a == 2 and lens[2] <= 5 and seps[a] == "-" and seps[a + 1] == "-":
            head = d[: lens[0] + lens[1]]
            if self._landline_area(head) == lens[0]:
                self._add(cands, low, n, start, end, LANDLINE, V_AREA, 750, 950, 300)
                return True
        return False

    def _nine(self, s: str, low: str, n: int, start: int, end: int, d: str, lens: list, cands: list) -> bool:
        """Nine digits: a US SSN or ITIN (formatted 3-2-4, or bare in context), a passport number, or a
        national phone number in phone context ("09-7625400").

        A number right after one of its type that was raised by context, with only a list separator
        between ("taxpayer id 911-701234 91170-1234"), shares that context.
        """
        keys = self._window(low, n, start, end)
        formatted = lens == [3, 2, 4]
        if not formatted:
            if _decide(keys, PASSPORT) > 0:
                cands.append((start, end, 850, PASSPORT, V_PASSPORT))
                return True
            if _phone_ctx(keys):
                cands.append((start, end, 750, PHONE, V_PHONE_NAT))
                return True
        if _itin_ok(d):
            t, v = ITIN, V_ITIN
        elif _ssn_ok(d):
            t, v = SSN, V_SSN
        else:
            return False
        dec = _decide(keys, t)
        if dec == 0 and cands:
            prev = cands[-1]
            if prev[3] == t and prev[2] >= 850 and _listed(s, prev[1], start):
                dec = 1
        if formatted:
            score = 980 if dec > 0 else 300 if dec < 0 else 800
        else:
            score = 850 if dec > 0 else 300 if dec < 0 else 350
        cands.append((start, end, score, t, v))
        return True

    def _intl(self, s: str, low: str, n: int, start: int, p: int, cands: list) -> int:
        """``+CC ...`` (or ``(+CC)``): Chinese numbers are decided here, others go to libphonenumber."""
        gs: list[tuple[int, int]] = []
        total = 0
        k = p
        while True:
            a = k
            while k < n and _digit(s[k]):
                k += 1
            gs.append((a, k))
            total += k - a
            if total > 15:
                break
            q = k
            m = 0
            while q < n and m < 2 and s[q] in _PSEPS:
                q += 1
                m += 1
            if m and q < n and _digit(s[q]):
                k = q
                continue
            break
        digits = ""
        if s[p : p + 2] == "86":
            for g in range(len(gs)):
                digits += s[gs[g][0] : gs[g][1]]
                e = gs[g][1]
                r = digits[2:]
                if len(r) > 12:
                    break
                if _blocked_after(s, n, e) or (g + 1 < len(gs) and gs[g + 1][1] - gs[g + 1][0] <= 2):
                    continue
                glued = gs[0][1] - gs[0][0]
                if _mobile_ok(r) and (
                    (glued == 13 and g == 0)
                    or (glued == 2 and _mobile_shape([b - a for a, b in gs[1 : g + 1]]))
                ):
                    self._add(cands, low, n, start, e, MOBILE, V_MOBILE, 950, 990, 550)
                    return e
                if len(r) >= 9 and self._landline_area("0" + r):
                    self._add(cands, low, n, start, e, LANDLINE, V_AREA, 900, 950, 550)
                    return e
            digits = ""
        e = 0
        for g in range(len(gs)):
            if len(digits) + gs[g][1] - gs[g][0] > 15:
                break
            digits += s[gs[g][0] : gs[g][1]]
            e = gs[g][1]
        if len(digits) < 7 or _blocked_after(s, n, e):
            return 0
        self._add(cands, low, n, start, e, PHONE, V_PHONE, 800, 950, 300)
        return e

    def _paren(self, s: str, low: str, n: int, i: int, cands: list) -> int:
        """``(+86) ...``, ``(010) 12345678`` or ``(415) 555-0132``."""
        if i + 2 < n and s[i + 1] == "+" and _digit(s[i + 2]):
            k = i + 2
            while k < n and _digit(s[k]) and k - i < 6:
                k += 1
            return self._intl(s, low, n, i, i + 2, cands) if k < n and s[k] == ")" else 0
        k = i + 1
        while k < n and _digit(s[k]) and k - i <= 5:
            k += 1
        al = k - i - 1
        if (al != 3 and al != 4) or k >= n or s[k] != ")":
            return 0
        area = s[i + 1 : k]
        k += 1
        if k < n and (s[k] == " " or s[k] == "-" or s[k] == "\u00a0" or s[k] == "\u3000"):
            k += 1
        rest = ""
        e = k
        while k < n and _digit(s[k]):
            q = k
            while q < n and _digit(s[q]):
                q += 1
            rest += s[k:q]
            e = q
            if len(rest) < 8 and q + 1 < n and s[q] in _SEPS and _digit(s[q + 1]):
                k = q + 1
                continue
            break
        if not rest or _blocked_after(s, n, e):
            return 0
        if area[0] == "0":
            if self._landline_area(area + rest) == al:
                self._add(cands, low, n, i, e, LANDLINE, V_AREA, 800, 950, 300)
                return e
            return 0
        if al == 3 and len(rest) == 7 and _nanp_ok(area + rest):
            self._add(cands, low, n, i, e, PHONE, V_PHONE, 650, 900, 300)
            return e
        return 0

    def _alnum(self, s: str, low: str, n: int, i: int, j: int, cands: list) -> bool:
        """A mixed word: USCC, Chinese passport, travel permits, other passports (in context)."""
        ln = j - i
        if (j + 1 < n and s[j] == "-" and _word(s[j + 1])) or (
            i >= 2 and s[i - 1] == "-" and _word(s[i - 2])
        ):
            return False  # part of a longer code: "T20240920-1875", "JD-E12345678"
        if ln == 18 and _uscc_ok(s, i):
            self._add(cands, low, n, i, j, USCC, V_GB32100, 950, 990, 550)
            return True
        if ln < 6 or ln > 11:
            return False
        digits = 0
        for k in range(i, j):
            if _digit(s[k]):
                digits += 1
            elif not _upper(s[k]):
                return False
        a = s[i]
        b = s[i + 1]
        nl = 2 if _upper(a) and _upper(b) else 1 if _upper(a) else 0
        if nl and digits == ln - nl:
            nd = digits
            no_io = b != "I" and b != "O"
            cnpass = (nl == 1 and ((a in "EGS" and nd == 8) or (a in "DSP" and nd == 7))) or (
                nl == 2 and nd == 7 and ((a == "E" and no_io) or (b == "E" and a in "DSP"))
            )
            if cnpass:
                self._add(cands, low, n, i, j, CNPASS, V_CNPASS, 650, 950, 300)
                return True
            permit = (nl == 1 and ((a in "CLHMT" and nd == 8) or (a in "HM" and nd == 10))) or (
                nl == 2 and a == "C" and no_io and nd == 7
            )
            if permit:
                keys = self._window(low, n, i, j)
                if _decide(keys, PASSPORT) > 0 and _decide(keys, PERMIT) <= 0 and ln <= 9:
                    cands.append((i, j, 850, PASSPORT, V_PASSPORT))
                else:
                    dec = _decide(keys, PERMIT)
                    cands.append((i, j, 950 if dec > 0 else 300 if dec < 0 else 550, PERMIT, V_PERMIT))
                return True
        if ln <= 9 and digits >= 5 and _decide(self._window(low, n, i, j), PASSPORT) > 0:
            cands.append((i, j, 850, PASSPORT, V_PASSPORT))
            return True
        return False

    def _iban(self, s: str, low: str, n: int, i: int, cands: list) -> int:
        """Country code, check digits (not 00/01/99), the registry's BBAN length and character classes,
        in groups of 4 (joined by spaces or by dashes, one kind throughout) or unbroken, and mod 97."""
        if not (i + 4 < n and _upper(s[i]) and _upper(s[i + 1]) and _digit(s[i + 2]) and _digit(s[i + 3])):
            return 0
        classes = self._iban_formats.get(s[i : i + 2])
        if classes is None or s[i + 2 : i + 4] in ("00", "01", "99"):
            return 0
        length = len(classes) + 4
        chars: list[int] = []
        k = i
        sep = ""
        while k < n and len(chars) < length:
            c = s[k]
            if _digit(c) or _upper(c):
                chars.append(k)
                k += 1
            elif (
                (c == " " or c == "-")
                and sep in ("", c)
                and len(chars) % 4 == 0
                and k + 1 < n
                and _word(s[k + 1])
            ):
                sep = c
                k += 1
            else:
                break
        if len(chars) != length or (k < n and _word(s[k])):
            return 0
        if sep == "-" and k + 1 < n and s[k] == "-" and _word(s[k + 1]):
            return 0  # "AL47-2121-...-8741-X": part of a longer code
        for q in range(4, length):
            c = s[chars[q]]
            kind = classes[q - 4]
            if (kind == "n" and not _digit(c)) or (kind == "a" and not _upper(c)):
                return 0
        if not _iban_mod97(s, i, chars):
            return 0
        self._add(cands, low, n, i, k, IBAN, V_MOD97, 950, 990, 600)
        return k

    # --- dates of birth --------------------------------------------------------------------------

    def _month_at(self, low: str, n: int, q: int) -> tuple[int, int]:
        """A month name or abbreviation at ``q`` (an abbreviation may take a dot): (month, end)."""
        e = q
        while e < n and e - q < 10 and _alpha(low[e]):
            e += 1
        if e < n and _alpha(low[e]):
            return 0, q
        m = self._months.get(low[q:e], 0)
        if m and e - q <= 4 and e < n and low[e] == ".":
            e += 1
        return m, e

    def _birth(self, low: str, n: int, i: int, e: int, y: int, m: int, d: int, cands: list) -> int:
        if not _birth_ok(y, m, d, self._today) or _decide(self._window(low, n, i, e), DOB) <= 0:
            return 0
        cands.append((i, e, 850, DOB, V_DATE))
        return e

    def _date_num(self, s: str, low: str, n: int, i: int, cands: list) -> int:
        """1990-03-07, 1990/3/7, 1990.3.7, 1990年3月7日, 03/07/1990 (month first unless the first number
        cannot be a month, or dots: 07.03.1990 is day first, as in Europe), 7 March 1990."""
        k = i
        while k < n and _digit(s[k]) and k - i < 9:
            k += 1
        ln = k - i
        c = s[k] if k < n else ""
        y = m = d = e = 0
        if ln == 4 and (c == "-" or c == "/" or c == "." or c == "年"):
            m, k2 = _int_run(s, n, k + 1, 2)
            if m >= 0 and k2 < n and s[k2] == ("月" if c == "年" else c):
                d, k3 = _int_run(s, n, k2 + 1, 2)
                if d >= 0:
                    y = int(s[i:k])
                    if c != "年":
                        e = k3
                    elif k3 < n and (s[k3] == "日" or s[k3] == "号"):
                        e = k3 + 1
        elif ln == 1 or ln == 2:
            v1 = int(s[i:k])
            if c == "/" or c == "." or c == "-":
                v2, k2 = _int_run(s, n, k + 1, 2)
                if v2 >= 0 and k2 < n and s[k2] == c:
                    yv, k3 = _int_run(s, n, k2 + 1, 4)
                    if k3 - k2 == 5:
                        y, e = yv, k3
                        m, d = (v2, v1) if c == "." or v1 > 12 else (v1, v2)  # 07.03 is day first
            else:
                q = k
                if q + 1 < n and low[q : q + 2] in ("st", "nd", "rd", "th"):
                    q += 2
                if q + 1 < n and s[q] == " ":
                    mo, q = self._month_at(low, n, q + 1)
                    if mo:
                        if q < n and s[q] == ",":
                            q += 1
                        if q < n and s[q] == " ":
                            yv, q2 = _int_run(s, n, q + 1, 4)
                            if q2 - q == 5:
                                y, m, d, e = yv, mo, v1, q2
        if not e or (e < n and _word(s[e])):
            return 0
        return self._birth(low, n, i, e, y, m, d, cands)

    def _date_word(self, s: str, low: str, n: int, i: int, j: int, cands: list) -> int:
        """March 7, 1990 / Mar. 7 1990 / March 7th, 1990."""
        mo, q = self._month_at(low, n, i)
        if not mo or not (q < n and s[q] == " "):
            return 0
        d, q = _int_run(s, n, q + 1, 2)
        if d < 0:
            return 0
        if q + 1 < n and low[q : q + 2] in ("st", "nd", "rd", "th"):
            q += 2
        if q < n and s[q] == ",":
            q += 1
        if not (q < n and s[q] == " "):
            return 0
        y, e = _int_run(s, n, q + 1, 4)
        if e - q != 5 or (e < n and _word(s[e])):
            return 0
        return self._birth(low, n, i, e, y, mo, d, cands)

    # --- English names and street addresses ---------------------------------------------------------

    def _trigger(self, low: str, b: int) -> int:
        """Strength (2 strong, 1 weak, 0 none) of a name-introducing word ending right before ``b``."""
        if b == 0:
            return 0
        words = self._trig.get(low[b - 1])
        best = 0
        if words:
            for w, v in words:
                ln = len(w)
                if ln > b or v <= best:
                    continue
                for q in range(ln):
                    if low[b - 1 - q] != w[q]:
                        break
                else:
                    if _alpha(w[-1]) and b - ln > 0 and _alpha(low[b - ln - 1]):
                        continue
                    best = v
        return best

    def _person_en(self, s: str, low: str, n: int, i: int, cands: list) -> int:
        """Capitalised name tokens after "my name is", "Dear", "Regards," ..., or after a title ("Dr. Jane
        Doe" gives "Jane Doe": a title is no part of the name, as in NER conventions), or a common given
        name and a surname; a generational/professional suffix closes it and stays in the span."""
        if not _upper(s[i]):
            return 0
        b = i
        while b > 0 and i - b < 3 and (s[b - 1] == " " or s[b - 1] == "\n" or s[b - 1] == "\t"):
            b -= 1
        strength = self._trigger(low, b)
        k = i
        w = i + 1
        while w < n and _alpha(s[w]):
            w += 1
        if low[i:w] in self._titles:
            if w < n and s[w] == ".":
                w += 1
            if not (w + 1 < n and s[w] == " " and _upper(s[w + 1])):
                return 0
            k = w + 1
            strength = 2
        start = k
        end = 0
        tokens = 0
        given = False
        while tokens < 3 and k < n and _upper(s[k]):
            w = k + 1
            lower_seen = False
            while w < n and (
                _alpha(s[w]) or ((s[w] == "'" or s[w] == "-") and w + 1 < n and _alpha(s[w + 1]))
            ):
                if "a" <= s[w] <= "z":
                    lower_seen = True
                w += 1
            if tokens >= 2 and low[k:w] in self._name_suffixes:
                end = w + 1 if w < n and s[w] == "." else w
                break
            if w - k == 1:  # a middle initial: "John F. Kennedy"
                if tokens and w + 2 < n and s[w] == "." and s[w + 1] == " " and _upper(s[w + 2]):
                    k = w + 2
                    continue
                break
            if not lower_seen or low[k:w] in self._nonnames:
                break
            if tokens == 0:
                given = low[k:w] in self._given
            tokens += 1
            end = w
            if w + 1 < n and s[w] == " " and _upper(s[w + 1]):
                k = w + 1
                continue
            break
        if not tokens or (end < n and _word(s[end])):
            return 0
        if (
            not strength
            and end + 1 < n
            and s[end] == " "
            and self._word_ahead(self._name_after, low, n, end + 1)
        ):
            strength = 1  # "Jodi Thompson here"
        if strength:
            score = 850 if strength == 2 else 700
        elif given and tokens >= 2:
            score = 650
        else:
            return 0
        cands.append((start, end, score, PERSON, V_NAME))
        return end

    def _street(self, s: str, low: str, n: int, i: int, j: int, cands: list) -> int:
        """221B Baker Street / 350 5th Ave, Apt 4, New York, NY 10118."""
        k = i
        while k < j and _digit(s[k]):
            k += 1
        if k - i > 6 or not (k == j or (k + 1 == j and _upper(s[k]))):
            return 0
        p = j
        names = 0
        while names < 5:
            if not (p + 1 < n and s[p] == " "):
                return 0
            a = p + 1
            w = a
            if _upper(s[w]):
                w += 1
                while w < n and _alpha(s[w]):
                    w += 1
            elif _digit(s[w]):
                while w < n and _digit(s[w]):
                    w += 1
                if not (w + 1 < n and low[w : w + 2] in ("st", "nd", "rd", "th")):
                    return 0
                w += 2
            else:
                return 0
            if w < n and _word(s[w]):
                return 0
            if names and low[a:w] in self._suffixes:
                e = self._street_tail(s, low, n, w)
                self._add(cands, low, n, i, e, ADDRESS, V_STREET, 850, 950, 850)
                return e
            names += 1
            p = w
        return 0

    def _military(self, s: str, low: str, n: int, i: int, j: int, cands: list) -> int:
        """USPS military mail (Publication 28, section 23): "PSC 1234, Box 5678, APO AE 09123",
        "Unit 1234 Box 5678, DPO AA 34001", "USS Nimitz, FPO AP 96620"."""
        w = s[i:j]
        k = j
        if w == "PSC" or w == "CMR" or w == "Unit":
            if not (k + 1 < n and s[k] == " " and _digit(s[k + 1])):
                return 0
            k += 1
            q = k
            while k < n and _digit(s[k]) and k - q < 6:
                k += 1
            if k - q > 5:
                return 0
            if k < n and s[k] == ",":
                k += 1
            if not (s[k : k + 5] == " Box " and k + 5 < n and _digit(s[k + 5])):
                return 0
            k += 5
            q = k
            while k < n and _digit(s[k]) and k - q < 6:
                k += 1
            if k - q > 5:
                return 0
        elif w == "USS" or w == "USNS" or w == "USNV" or w == "USCGC":
            words = 0
            while words < 3 and k + 2 < n and s[k] == " " and _upper(s[k + 1]) and "a" <= s[k + 2] <= "z":
                k += 2
                while k < n and _alpha(s[k]):
                    k += 1
                words += 1
            if not words:
                return 0
        else:
            return 0
        if not (
            s[k : k + 2] == ", "
            and s[k + 2 : k + 5] in ("APO", "FPO", "DPO")
            and k + 5 < n
            and s[k + 5] == " "
        ):
            return 0
        if not (s[k + 6 : k + 8] in ("AA", "AE", "AP") and k + 8 < n and s[k + 8] == " "):
            return 0
        z = k + 9
        t = z
        while t < n and _digit(s[t]) and t - z < 6:
            t += 1
        if t - z != 5 or (t < n and _word(s[t])):
            return 0
        self._add(cands, low, n, i, t, ADDRESS, V_STREET, 850, 950, 850)
        return t

    def _street_tail(self, s: str, low: str, n: int, e: int) -> int:
        """Optional ", Apt 4B" and ", City, ST 12345" after the street."""
        q = e + 1 if e < n and s[e] == "," else e
        if q + 1 < n and s[q] == " ":
            a = q + 1
            w = a + 1 if s[a] == "#" else a
            if w == a:
                while w < n and _alpha(s[w]):
                    w += 1
            if w > a and low[a:w] in self._units:
                if w < n and s[w] == ".":
                    w += 1
                if w < n and s[w] == " ":
                    w += 1
                t = w
                while t < n and t - w < 8 and (_word(s[t]) or s[t] == "-"):
                    t += 1
                if t > w and _word(s[t - 1]) and (t == n or not _word(s[t])):
                    e = t
        if not (e + 1 < n and s[e] == "," and s[e + 1] == " "):
            return e
        w = e + 2
        city = 0
        for _ in range(3):
            if not (w + 1 < n and _upper(s[w]) and "a" <= s[w + 1] <= "z"):
                break
            w += 1
            while w < n and _alpha(s[w]):
                w += 1
            city = w
            if w + 2 < n and s[w] == " " and _upper(s[w + 1]) and "a" <= s[w + 2] <= "z":
                w += 1
                continue
            break
        if not city:
            return e
        q = city + 1 if city < n and s[city] == "," else city
        if not (q + 3 < n and s[q] == " " and s[q + 1 : q + 3] in self._states and s[q + 3] == " "):
            return e
        z = q + 4
        t = z
        while t < n and _digit(s[t]) and t - z < 6:
            t += 1
        if t - z != 5:
            return e
        if t + 4 < n and s[t] == "-" and all(_digit(s[u]) for u in range(t + 1, t + 5)):
            t += 5
        return e if t < n and _word(s[t]) else t

    # --- CJK: plates, names, addresses --------------------------------------------------------------

    def _cjk(self, s: str, low: str, n: int, i: int, f: int, cands: list) -> int:
        if f & F_PLATE:
            e = self._plate(s, low, n, i, cands)
            if e:
                return e
        if f & (F_SURNAME | F_COMPOUND):
            e = self._person_cn(s, low, n, i, f, cands)
            if e:
                return e
        if f & F_ADDR:
            return self._address_cn(s, low, n, i, cands)
        return 0

    def _plate(self, s: str, low: str, n: int, i: int, cands: list) -> int:
        """GA 36 plates: 粤B12345, 京A·AB123, 粤B·D12345 / 粤B·12345D (new energy), 粤B1234学 (special)."""
        k = i + 1
        if not (k < n and _plate_letter(s[k])):
            return 0
        k += 1
        if k < n and s[k] in _PLATE_SEPS:
            k += 1
        t = k
        digits = 0
        while t < n and t - k < 7 and (_digit(s[t]) or _plate_letter(s[t])):
            if _digit(s[t]):
                digits += 1
            t += 1
        ln = t - k
        ok = False
        if ln == 5:
            ok = digits >= 3  # at most two letters
        elif ln == 6:
            ok = (s[k] in _NEV_SMALL and all(_digit(s[q]) for q in range(k + 2, t))) or (
                digits == 5 and (s[t - 1] == "D" or s[t - 1] == "F")
            )
        elif ln == 4 and t < n and s[t] in _PLATE_SPECIAL:
            t += 1
            ok = True
        if not ok or (t < n and _word(s[t])):
            return 0
        self._add(cands, low, n, i, t, PLATE, V_PLATE, 850, 950, 300)
        return t

    def _word_at(self, table: dict, s: str, n: int, p: int) -> tuple[int, int]:
        """The longest word of ``table`` at ``p``: (length, value), else (0, 0)."""
        words = table.get(s[p]) if p < n else None
        if words:
            for w, v in words:
                if s.startswith(w, p):
                    return len(w), v
        return 0, 0

    def _word_ahead(self, table: dict, low: str, n: int, p: int) -> bool:
        """Whether a (folded) word of ``table`` starts at ``p`` and ends a word."""
        ln, _ = self._word_at(table, low, n, p)
        return ln > 0 and not (_alpha(low[p + ln - 1]) and p + ln < n and _alpha(low[p + ln]))

    @staticmethod
    def _ends_with(table: dict, s: str, q: int) -> bool:
        """Whether a word of ``table`` (stored reversed) ends right before ``q``."""
        words = table.get(s[q - 1]) if q > 0 else None
        if words:
            for w, _ in words:
                ln = len(w)
                if ln <= q and all(s[q - 1 - k] == w[k] for k in range(ln)):
                    return True
        return False

    def _person_cn(self, s: str, low: str, n: int, i: int, f: int, cands: list) -> int:
        """Surname + 1-2 given-name characters, after a context word or before an honorific."""
        slen = 0
        if f & F_COMPOUND:
            slen, _ = self._word_at(self._compound, s, n, i)
        if not slen and f & F_SURNAME:
            slen = 1
        if not slen:
            return 0
        flags = self._flags
        g = i + slen
        k = g
        while k < n and k - g < 2:
            c = s[k]
            fc = flags.get(c, 0)
            if not _cjk(c) or fc & F_NAME_STOP:
                break
            if fc & F_HONOR and self._word_at(self._honor, s, n, k)[0]:
                break
            k += 1
        if k == g:
            return 0
        after = (k < n and flags.get(s[k], 0) & F_HONOR and self._word_at(self._honor, s, n, k)[0] > 0) or (
            self._word_ahead(self._name_after, low, n, k)
        )
        b = i
        strength = self._trigger(low, b)
        while b > 0 and i - b < 3 and s[b - 1] in _NAME_GAP:
            b -= 1
            strength = max(strength, self._trigger(low, b))
        if strength == 1 and not after and k < n and _cjk(s[k]):
            strength = 0  # "我是高级会员": a weak introduction needs the name to end
        if not strength and not after:
            return 0
        cands.append((i, k, 850 if strength == 2 or after else 700, PERSON, V_SURNAME))
        return k

    def _address_cn(self, s: str, low: str, n: int, i: int, cands: list) -> int:
        """A chain of place names and markers (省/市/区/路/号/室 ...) with at least two markers."""
        ml, level = self._word_at(self._markers, s, n, i)
        if not ml:
            return 0
        flags = self._flags
        b = i
        while b > 0 and i - b < 6:
            c = s[b - 1]
            if not (_digit(c) or (_cjk(c) and not flags.get(c, 0) & F_ADDR_STOP)):
                break
            b -= 1
        for q in range(i, b, -1):  # start after the last "改成" / "寄到" / "位于" ...
            if self._ends_with(self._lead, s, q):
                b = q
                break
        if b == i or (b + 1 == i and not _digit(s[b])):
            return 0  # "回乡证号": a one-character name is no place
        markers = 1
        last = level
        end = i + ml
        prev = s[i:end]
        while end - b < 80:
            ml, level = self._word_at(self._markers, s, n, end)
            if ml:  # markers in a row: 北镇县, 兴安盟街, 3号楼; but 号号 is no address
                if s[end : end + ml] == prev:
                    break
                prev = s[end : end + ml]
                markers += 1
                end += ml
                last = level
                continue
            k = end
            while k < n and k - end < 10:
                c = s[k]
                if flags.get(c, 0) & F_ADDR:
                    ml, level = self._word_at(self._markers, s, n, k)
                    if ml:
                        break
                if not (
                    _digit(c) or _alpha(c) or c == "-" or (_cjk(c) and not flags.get(c, 0) & F_ADDR_STOP)
                ):
                    ml = 0
                    break
                k += 1
            else:
                ml = 0
            if not ml or k == end:
                break
            markers += 1
            prev = s[k : k + ml]
            end = k + ml
            last = level
        if last == LEVEL_HOUSE:
            t = end
            while t < n and _digit(s[t]) and t - end < 6:
                t += 1
            if t > end and not (t < n and _word(s[t])):
                end = t
        if markers < 2 or last < LEVEL_STREET or (end < n and _word(s[end]) and _word(s[end - 1])):
            return 0
        if end + 1 < n and s[end] == " ":  # a six-digit postcode after the address
            t = end + 1
            while t < n and _digit(s[t]) and t - end <= 7:
                t += 1
            if t - end == 7 and not (t < n and _word(s[t])):
                end = t
        base = 850 if last == LEVEL_HOUSE else 750 if markers >= 3 else 600
        self._add(cands, low, n, b, end, ADDRESS, V_ADDRESS, base, min(base + 100, 950), base)
        return end
