"""Compiled PII scanner: the C twin of ``appliance/masking/_scan_py.py``.

Same candidates, same scores, same order; the Python twin's docstring explains the rules and the
structure here follows it function for function (hypothesis checks they agree on random Unicode).
What is different is only how the text is read: the str's own buffer through PyUnicode_KIND /
PyUnicode_DATA / PyUnicode_READ, with no encoding and no copy, full-width digits and letters folded
on the fly (one code point for one, so offsets are the caller's). Lexicon words live in flat
code-point arrays bucketed by first character, and a 64 KiB table of flags answers "is this a
surname / marker / province" in one load. Candidates are C structs until the end of the pass, so a
message with no PII allocates nothing but the empty result list.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_FindChar, PyUnicode_KIND
from libc.stdlib cimport qsort
from libc.string cimport memcpy, memmove, memset

ctypedef unsigned int cp_t  # a code point; Py_UCS4 would make Cython treat arithmetic as str operations

cdef extern from "Python.h":
    unsigned int _READ "PyUnicode_READ" (int kind, const void *data, Py_ssize_t index) nogil

TYPES = (
    "CN_RESIDENT_ID", "CN_MOBILE", "CN_LANDLINE", "CN_USCC", "CN_PASSPORT", "CN_PERMIT", "CN_PLATE",
    "BANK_CARD", "IBAN", "US_SSN", "US_ITIN", "PHONE", "EMAIL", "IP_ADDRESS", "MAC_ADDRESS", "PASSPORT",
    "DATE_OF_BIRTH", "PERSON", "ADDRESS",
)
VALIDATORS = (
    "gb11643", "gb11643-15", "cn-mobile-prefix", "cn-area-code", "gb32100", "cn-passport-format",
    "cn-permit-format", "cn-plate-format", "luhn", "mod97", "ssn-ranges", "itin-ranges", "phone-candidate",
    "email-syntax", "ipaddress", "mac-format", "passport+context", "date+context", "surname+context",
    "name+context", "address-markers", "street-address", "unionpay-prefix", "phone-national",
)

cdef enum:
    ID, MOBILE, LANDLINE, USCC, CNPASS, PERMIT, PLATE, CARD, IBAN, SSN, ITIN, PHONE, EMAIL, IP, MAC
    PASSPORT, DOB, PERSON, ADDRESS
    LOWER = 19
    NKEYS = 20

cdef enum:
    V_GB11643, V_GB11643_15, V_MOBILE, V_AREA, V_GB32100, V_CNPASS, V_PERMIT, V_PLATE, V_LUHN, V_MOD97
    V_SSN, V_ITIN, V_PHONE, V_EMAIL, V_IP, V_MAC, V_PASSPORT, V_DATE, V_SURNAME, V_NAME, V_ADDRESS
    V_STREET, V_UNIONPAY, V_PHONE_NAT

cdef enum:
    F_CTX = 1
    F_SURNAME = 2
    F_COMPOUND = 4
    F_NAME_STOP = 8
    F_ADDR = 16
    F_ADDR_STOP = 32
    F_PLATE = 64
    F_HONOR = 128

cdef enum:
    BIG = 1 << 30
    WB = 20
    WA = 8
    LEVEL_ADMIN = 1
    LEVEL_STREET = 2
    LEVEL_HOUSE = 3
    BUCKETS = 256
    STACK_CANDS = 32
    STACK_GROUPS = 64

cdef int[17] _ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
cdef const char *_ID_CHECK = b"10X98765432"
cdef const char *_USCC_ALPHABET = b"0123456789ABCDEFGHJKLMNPQRTUWXY"
cdef int[17] _USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
cdef int[13] _MONTH_DAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
# GB 32100-2015 table 1: registration authority -> the organisation types it may issue.
_USCC_HEADS = {
    "1": "1239", "2": "19", "3": "1234569", "4": "19", "5": "1239", "6": "129", "7": "129", "8": "19",
    "9": "123", "A": "19", "N": "1239", "Y": "1",
}
cdef unsigned char _USCC_HEAD[128 * 128]
memset(_USCC_HEAD, 0, sizeof(_USCC_HEAD))
for _a, _types in _USCC_HEADS.items():
    for _t in _types:
        _USCC_HEAD[ord(_a) * 128 + ord(_t)] = 1

# The same folding as the twin's str.translate tables, built from the same ranges.
_FOLD = [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B),
         0xFF08, 0xFF09, 0xFF0B, 0xFF0D]
_LOWER = {**{c: c - 0xFEE0 for c in _FOLD}, **{c: c + 32 for c in range(0x41, 0x5B)},
          **{c: c - 0xFEE0 + 32 for c in range(0xFF21, 0xFF3B)}}


cdef struct Text:
    int kind
    const void *data
    Py_ssize_t n


cdef struct Cand:
    Py_ssize_t a
    Py_ssize_t b
    int score
    int t
    int v


cdef struct Buf:
    Cand *items
    Py_ssize_t n
    Py_ssize_t cap
    bint heap


cdef struct Groups:
    Py_ssize_t *gs  # start and end of each digit group
    cp_t *seps  # the separator after each group
    Py_ssize_t cap
    bint heap


cdef struct Words:
    cp_t *chars
    int *off
    int *length
    int *value
    int count
    int bucket[BUCKETS + 1]


# --- characters (all on folded code points; 0 stands for "outside the text") ------------------------

cdef inline bint _digit(cp_t c) noexcept nogil:
    return 48 <= c <= 57


cdef inline bint _upper(cp_t c) noexcept nogil:
    return 65 <= c <= 90


cdef inline bint _alpha(cp_t c) noexcept nogil:
    return 65 <= c <= 90 or 97 <= c <= 122


cdef inline bint _lower_letter(cp_t c) noexcept nogil:
    return 97 <= c <= 122


cdef inline bint _word(cp_t c) noexcept nogil:
    return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122


cdef inline bint _hex(cp_t c) noexcept nogil:
    return 48 <= c <= 57 or 65 <= c <= 70 or 97 <= c <= 102


cdef inline bint _cjk(cp_t c) noexcept nogil:
    return (0x3400 <= c <= 0x4DBF or 0x4E00 <= c <= 0x9FFF or 0xF900 <= c <= 0xFAFF
            or 0x20000 <= c <= 0x323AF)


cdef inline bint _plate_letter(cp_t c) noexcept nogil:
    return 65 <= c <= 90 and c != 73 and c != 79


cdef inline bint _is_sep(cp_t c) noexcept nogil:
    return c == 32 or c == 45 or c == 0xA0 or 0x2010 <= c <= 0x2013 or c == 0x3000


cdef inline bint _is_ws(cp_t c) noexcept nogil:
    return c == 32 or c == 0xA0 or c == 0x3000


cdef inline bint _is_psep(cp_t c) noexcept nogil:
    return c == 32 or c == 45 or c == 46 or c == 40 or c == 41 or c == 0xA0


cdef inline bint _stop_before(cp_t c) noexcept nogil:
    return (c == 0x3002 or c == 0xFF01 or c == 0xFF1F or c == 0xFF1B or c == 33 or c == 63 or c == 59
            or c == 10 or c == 13)


cdef inline bint _stop_after(cp_t c) noexcept nogil:
    return (_stop_before(c) or c == 0xFF0C or c == 44 or c == 46 or c == 0x3001 or c == 58
            or c == 0xFF1A)


cdef inline bint _name_gap(cp_t c) noexcept nogil:
    return c == 58 or c == 0xFF1A or c == 32 or c == 0x3000 or c == 0x662F or c == 0x4E3A


cdef inline bint _plate_sep(cp_t c) noexcept nogil:
    return c == 0xB7 or c == 0x2022 or c == 0x30FB or c == 32 or c == 45


cdef inline bint _plate_special(cp_t c) noexcept nogil:
    # 学 警 挂 港 澳 领
    return c == 0x5B66 or c == 0x8B66 or c == 0x6302 or c == 0x6E2F or c == 0x6FB3 or c == 0x9886


cdef inline bint _list_sep(cp_t c) noexcept nogil:
    return c == 32 or c == 0xA0 or c == 0x3000 or c == 44 or c == 0xFF0C or c == 0x3001


cdef inline bint _local(cp_t c) noexcept nogil:
    return _word(c) or c == 46 or c == 95 or c == 37 or c == 43 or c == 45


cdef inline cp_t _norm(cp_t c) noexcept nogil:
    if 0xFF08 <= c <= 0xFF5A:
        if (0xFF10 <= c <= 0xFF19 or 0xFF21 <= c <= 0xFF3A or 0xFF41 <= c <= 0xFF5A or c == 0xFF08
                or c == 0xFF09 or c == 0xFF0B or c == 0xFF0D):
            return c - 0xFEE0
    return c


cdef inline cp_t _ch(const Text *t, Py_ssize_t i) noexcept nogil:
    if i < 0 or i >= t.n:
        return 0
    return _norm(_READ(t.kind, t.data, i))


cdef inline cp_t _lo(const Text *t, Py_ssize_t i) noexcept nogil:
    cdef cp_t c = _ch(t, i)
    if 65 <= c <= 90:
        return c + 32
    return c


cdef inline bint _blocked_after(const Text *t, Py_ssize_t e) noexcept nogil:
    """A number ending before ``e`` would be carved out of something longer."""
    cdef cp_t c = _ch(t, e)
    if c == 45:  # "12345-ABC": one code
        return _alpha(_ch(t, e + 1))
    return _word(c) or c == 64 or ((c == 46 or c == 44) and _digit(_ch(t, e + 1)))


cdef inline bint _blocked_before(const Text *t, Py_ssize_t i) noexcept nogil:
    cdef cp_t c
    if i == 0:
        return False
    c = _ch(t, i - 1)
    if c == 45:
        return i >= 2 and _word(_ch(t, i - 2))
    return c == 64 or ((c == 46 or c == 44) and i >= 2 and _digit(_ch(t, i - 2)))


cdef inline int _int_run(const Text *t, Py_ssize_t k, int most, Py_ssize_t *end) noexcept nogil:
    """Exactly 1..``most`` digits at ``k``: the value (``end`` set past them), else -1."""
    cdef Py_ssize_t e = k
    cdef int v = 0
    while _digit(_ch(t, e)) and e - k <= most:
        if e - k < most:
            v = v * 10 + <int>(_ch(t, e) - 48)
        e += 1
    if e == k or e - k > most:
        end[0] = k
        return -1
    end[0] = e
    return v


cdef inline int _num(const char *d, int a, int b) noexcept nogil:
    cdef int v = 0
    while a < b:
        v = v * 10 + (d[a] - 48)
        a += 1
    return v


cdef bint _birth_ok(int y, int m, int d, int today) noexcept nogil:
    """A real calendar date from 1900-01-01 up to ``today`` (YYYYMMDD): someone's birth date."""
    if not (1900 <= y <= 9999 and 1 <= m <= 12 and d >= 1) or y * 10000 + m * 100 + d > today:
        return False
    if m == 2 and d == 29:
        return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    return d <= _MONTH_DAYS[m]


# --- checks on ASCII digit strings ------------------------------------------------------------------

cdef bint _province(const char *d) noexcept nogil:
    cdef int p = _num(d, 0, 2)
    return ((11 <= p <= 15) or (21 <= p <= 23) or (31 <= p <= 37) or (41 <= p <= 46) or (50 <= p <= 54)
            or (61 <= p <= 65) or p == 71 or (81 <= p <= 83))


cdef bint _id18_ok(const char *d, int today) noexcept nogil:
    cdef int total = 0, k
    cdef char last = d[17]
    if not _province(d) or not _birth_ok(_num(d, 6, 10), _num(d, 10, 12), _num(d, 12, 14), today):
        return False
    for k in range(17):
        total += (d[k] - 48) * _ID_WEIGHTS[k]
    if last == 120:  # x
        last = 88
    return _ID_CHECK[total % 11] == last


cdef bint _id15_ok(const char *d, int today) noexcept nogil:
    return _province(d) and _birth_ok(1900 + _num(d, 6, 8), _num(d, 8, 10), _num(d, 10, 12), today)


cdef int _uscc_value(char c) noexcept nogil:
    cdef int k
    for k in range(31):
        if _USCC_ALPHABET[k] == c:
            return k
    return -1


cdef bint _uscc_ok(const char *d) noexcept nogil:
    cdef int total = 0, k, v
    if d[0] < 0 or d[1] < 0 or not _USCC_HEAD[d[0] * 128 + d[1]]:
        return False
    if not (_digit(d[2]) and _digit(d[3]) and (_province(d + 2) or (d[2] == 49 and d[3] == 48))):
        return False
    for k in range(17):
        if 2 <= k < 8 and not _digit(d[k]):
            return False
        v = _uscc_value(d[k])
        if v < 0:
            return False
        total += v * _USCC_WEIGHTS[k]
    return d[17] == _USCC_ALPHABET[(31 - total % 31) % 31]


cdef bint _mobile_ok(const char *d, int n) noexcept nogil:
    cdef char a, b
    if n != 11 or d[0] != 49:
        return False
    a = d[1]
    b = d[2]
    if a == 51 or a == 56:
        return True
    if a == 52:
        return 53 <= b <= 57
    if a == 53 or a == 57:
        return b != 52
    if a == 54:
        return b == 50 or b == 53 or b == 54 or b == 55
    if a == 55:
        return (48 <= b <= 51) or (53 <= b <= 56) or (b == 52 and (d[3] == 48 or d[3] == 57))
    return False


cdef bint _mobile_shape(const int *lens, int nl) noexcept nogil:
    """How people group a mobile number: unbroken, 3-4-4, 3-8 or 7-4 (a 4-4-3 run is part of a card)."""
    if nl == 1:
        return lens[0] == 11
    if nl == 2:
        return (lens[0] == 3 and lens[1] == 8) or (lens[0] == 7 and lens[1] == 4)
    return nl == 3 and lens[0] == 3 and lens[1] == 4 and lens[2] == 4


cdef bint _luhn(const char *d, int n) noexcept nogil:
    cdef int total = 0, k, v
    cdef bint alt = False
    for k in range(n - 1, -1, -1):
        v = d[k] - 48
        if alt:
            v *= 2
            if v > 9:
                v -= 9
        total += v
        alt = not alt
    return total % 10 == 0


cdef bint _card_network(const char *d, int n) noexcept nogil:
    cdef int d2 = _num(d, 0, 2), d3 = _num(d, 0, 3), d4 = _num(d, 0, 4)
    if d[0] == 52:
        return n == 13 or n == 16 or n == 19
    if d[0] == 49:  # UATP
        return n == 15
    if d4 == 5019:  # Dankort
        return n == 16
    if 51 <= d2 <= 55 or 2221 <= d4 <= 2720:
        return n == 16
    if d2 == 34 or d2 == 37:
        return n == 15
    if 300 <= d3 <= 305 or d4 == 3095 or d2 == 36 or d2 == 38 or d2 == 39:
        return n >= 14
    if 3528 <= d4 <= 3589 or 2200 <= d4 <= 2204 or d2 == 62 or d4 == 6011 or 644 <= d3 <= 649 or d2 == 65:
        return n >= 16
    return (d4 == 5018 or d4 == 5020 or d4 == 5038 or d4 == 5893 or d4 == 6304 or d4 == 6759
            or 6761 <= d4 <= 6763)


cdef bint _ssn_ok(const char *d) noexcept nogil:
    cdef int area = _num(d, 0, 3), whole = _num(d, 0, 9)
    return (area != 0 and area != 666 and d[0] != 57 and _num(d, 3, 5) != 0 and _num(d, 5, 9) != 0
            and whole != 78051120 and whole != 219099999 and whole != 123456789)


cdef bint _itin_ok(const char *d) noexcept nogil:
    cdef int g
    if d[0] != 57:
        return False
    g = _num(d, 3, 5)
    return 50 <= g <= 65 or 70 <= g <= 88 or 90 <= g <= 92 or 94 <= g <= 99


cdef inline bint _nanp_ok(const char *d) noexcept nogil:
    return 50 <= d[0] <= 57 and 50 <= d[3] <= 57


# --- checks on the text -------------------------------------------------------------------------------

cdef bint _ipv4_ok(const Text *t, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef int parts = 0, v
    cdef Py_ssize_t k = a, g
    while True:
        g = k
        v = 0
        while k < b and _digit(_ch(t, k)):
            if k - g < 4:
                v = v * 10 + <int>(_ch(t, k) - 48)
            k += 1
        if k == g or k - g > 3 or (k - g > 1 and _ch(t, g) == 48) or v > 255:
            return False
        parts += 1
        if k == b:
            return parts == 4
        if _ch(t, k) != 46 or parts == 4:
            return False
        k += 1


cdef bint _ipv6_ok(const Text *t, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    cdef Py_ssize_t starts[10]
    cdef Py_ssize_t ends[10]
    cdef int nparts = 1, groups, skip = -1, k, hi, lo
    cdef Py_ssize_t q, last_a, last_b
    cdef bint dotted = False, empty_first, empty_last
    starts[0] = a
    for q in range(a, b):
        if _ch(t, q) == 58:
            if nparts >= 9:
                return False
            ends[nparts - 1] = q
            starts[nparts] = q + 1
            nparts += 1
    ends[nparts - 1] = b
    if nparts < 3:
        return False
    groups = nparts
    last_a = starts[nparts - 1]
    last_b = ends[nparts - 1]
    for q in range(last_a, last_b):
        if _ch(t, q) == 46:
            dotted = True
            break
    if dotted:
        if not _ipv4_ok(t, last_a, last_b):
            return False
        groups += 1
    if groups > 9:
        return False
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
            break
        if ends[k] - starts[k] > 4:
            return False
        for q in range(starts[k], ends[k]):
            if not _hex(_ch(t, q)):
                return False
    return True


cdef Py_ssize_t _zone(const Text *t, Py_ssize_t e) noexcept nogil:
    """End of an IPv6 zone id ("%eth0") at ``e``, else ``e``."""
    cdef Py_ssize_t k
    cdef cp_t c
    if _ch(t, e) != 37:
        return e
    k = e + 1
    while True:
        c = _ch(t, k)
        if not (_word(c) or c == 46 or c == 95 or c == 45):
            break
        k += 1
    while k > e + 1 and _ch(t, k - 1) == 46:
        k -= 1
    return k if k > e + 1 else e


cdef Py_ssize_t _prefix(const Text *t, Py_ssize_t e, int most) noexcept nogil:
    """End of a CIDR prefix length ("/24", 0..``most``, no leading zero) at ``e``, else ``e``."""
    cdef Py_ssize_t q = e + 1, k = e + 1
    cdef int v = 0
    if not (_ch(t, e) == 47 and _digit(_ch(t, q))):
        return e
    while _digit(_ch(t, k)) and k - q < 4:
        v = v * 10 + <int>_ch(t, k) - 48
        k += 1
    if k - q > 3 or (k - q > 1 and _ch(t, q) == 48) or v > most:
        return e
    if _blocked_after(t, k) or _ch(t, k) == 47:
        return e
    return k


cdef Py_ssize_t _email_end(const Text *t, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t n = t.n, k = i, q, d, j, ls, last
    cdef int labels = 0
    while k < n and k - i <= 64 and _local(_ch(t, k)):
        k += 1
    if k >= n or _ch(t, k) != 64 or k - i > 64 or _ch(t, k - 1) == 46:
        return 0
    for q in range(i, k - 1):
        if _ch(t, q) == 46 and _ch(t, q + 1) == 46:
            return 0
    d = k + 1
    j = d
    last = d
    while True:
        ls = j
        while j < n and j - d < 255 and (_word(_ch(t, j)) or _ch(t, j) == 45):
            j += 1
        if j == ls or _ch(t, ls) == 45 or _ch(t, j - 1) == 45 or j - ls > 63:
            return 0
        labels += 1
        last = ls
        if _ch(t, j) == 46 and _word(_ch(t, j + 1)):
            j += 1
            continue
        break
    if labels < 2 or j - last < 2 or j - i > 254:
        return 0
    for q in range(last, j):
        if not _alpha(_ch(t, q)):
            return 0
    if _word(_ch(t, j)) or _ch(t, j) == 45:
        return 0
    return j


cdef bint _iban_mod97(const Text *t, const Py_ssize_t *chars, int m) noexcept nogil:
    cdef int r = 0, q
    cdef cp_t c
    for q in range(m):
        c = _ch(t, chars[(q + 4) % m])
        if _digit(c):
            r = (r * 10 + <int>c - 48) % 97
        else:
            r = (r * 100 + <int>c - 55) % 97
    return r == 1


cdef bint _phone_ctx(const int *keys) noexcept nogil:
    """Whether the nearest context word is a phone word (no lowering or other type's word nearer)."""
    cdef int r = keys[PHONE], q
    if r >= BIG or r > keys[LOWER]:
        return False
    for q in range(LOWER):
        if keys[q] < r and q != PHONE and q != MOBILE and q != LANDLINE:
            return False
    return True


cdef bint _listed(const Text *t, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Only a list separator (a space, a comma, "、") between ``a`` and ``b``."""
    cdef Py_ssize_t q
    if not (0 < b - a <= 2):
        return False
    for q in range(a, b):
        if not _list_sep(_ch(t, q)):
            return False
    return True


cdef inline int _decide(const int *keys, int t) noexcept nogil:
    cdef int r = keys[t], lo = keys[LOWER]
    if r < BIG and r <= lo:
        return 1
    if lo < BIG:
        return -1
    return 0


cdef int _grow_groups(Groups *g) except -1:
    cdef Py_ssize_t *gs = <Py_ssize_t *>PyMem_Malloc(sizeof(Py_ssize_t) * 4 * g.cap)
    cdef cp_t *seps = <cp_t *>PyMem_Malloc(sizeof(cp_t) * 2 * g.cap)
    if gs is NULL or seps is NULL:
        PyMem_Free(gs)
        PyMem_Free(seps)
        raise MemoryError()
    memcpy(gs, g.gs, sizeof(Py_ssize_t) * 2 * g.cap)
    memcpy(seps, g.seps, sizeof(cp_t) * g.cap)
    if g.heap:
        PyMem_Free(g.gs)
        PyMem_Free(g.seps)
    g.gs = gs
    g.seps = seps
    g.cap *= 2
    g.heap = True
    return 0


# --- word tables --------------------------------------------------------------------------------------

cdef int _build(Words *w, dict words) except -1:
    """Flatten ``words`` (word -> value) into buckets by first character, longest first."""
    items = sorted(words.items(), key=lambda x: (ord(x[0][0]) & (BUCKETS - 1), -len(x[0]), x[0]))
    cdef int count = len(items), total = 0, k, j, pos = 0, b
    for word, _ in items:
        total += len(word)
    w.count = count
    w.chars = <cp_t *>PyMem_Malloc(sizeof(cp_t) * (total + 1))
    w.off = <int *>PyMem_Malloc(sizeof(int) * (count + 1))
    w.length = <int *>PyMem_Malloc(sizeof(int) * (count + 1))
    w.value = <int *>PyMem_Malloc(sizeof(int) * (count + 1))
    if w.chars is NULL or w.off is NULL or w.length is NULL or w.value is NULL:
        raise MemoryError()
    memset(w.bucket, 0, sizeof(int) * (BUCKETS + 1))
    for k in range(count):
        word, value = items[k]
        w.off[k] = pos
        w.length[k] = len(word)
        w.value[k] = value
        for j in range(len(word)):
            w.chars[pos] = ord(word[j])
            pos += 1
        w.bucket[(ord(word[0]) & (BUCKETS - 1)) + 1] += 1
    for b in range(BUCKETS):
        w.bucket[b + 1] += w.bucket[b]
    return 0


cdef void _free_words(Words *w) noexcept:
    PyMem_Free(w.chars)
    PyMem_Free(w.off)
    PyMem_Free(w.length)
    PyMem_Free(w.value)
    w.chars = NULL
    w.off = NULL
    w.length = NULL
    w.value = NULL


cdef int _word_at(const Words *w, const Text *t, Py_ssize_t p, int *value, bint lowered=False) noexcept nogil:
    """The longest word at ``p`` (on folded, or ``lowered`` text): its length, its value in ``value``."""
    cdef cp_t c = _lo(t, p) if lowered else _ch(t, p)
    cdef int k, j, ln
    cdef const cp_t *s
    if c == 0 and p >= t.n:
        return 0
    for k in range(w.bucket[c & (BUCKETS - 1)], w.bucket[(c & (BUCKETS - 1)) + 1]):
        s = w.chars + w.off[k]
        ln = w.length[k]
        if s[0] != c or p + ln > t.n:
            continue
        for j in range(1, ln):
            if (_lo(t, p + j) if lowered else _ch(t, p + j)) != s[j]:
                break
        else:
            value[0] = w.value[k]
            return ln
    return 0


cdef bint _raw_ascii(const Text *t, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Whether text[a:b] is ASCII before any full-width folding (e-mail addresses are)."""
    cdef Py_ssize_t k
    for k in range(a, b):
        if _READ(t.kind, t.data, k) > 127:
            return False
    return True


cdef bint _eq(const Text *t, Py_ssize_t a, const char *lit, Py_ssize_t ln) noexcept nogil:
    """Whether the text at ``a`` is the ASCII ``lit`` of length ``ln``."""
    cdef Py_ssize_t k
    if a + ln > t.n:
        return False
    for k in range(ln):
        if _ch(t, a + k) != <cp_t>lit[k]:
            return False
    return True


cdef int _exact(const Words *w, const Text *t, Py_ssize_t a, Py_ssize_t b, bint lowered) noexcept nogil:
    """The value of the word equal to text[a:b] (``lowered``: on ASCII-lowered text), else 0."""
    cdef cp_t c
    cdef int k, j, ln = <int>(b - a)
    cdef const cp_t *s
    if ln <= 0:
        return 0
    c = _lo(t, a) if lowered else _ch(t, a)
    for k in range(w.bucket[c & (BUCKETS - 1)], w.bucket[(c & (BUCKETS - 1)) + 1]):
        s = w.chars + w.off[k]
        if w.length[k] != ln or s[0] != c:
            continue
        for j in range(1, ln):
            if (_lo(t, a + j) if lowered else _ch(t, a + j)) != s[j]:
                break
        else:
            return w.value[k]
    return 0


# --- candidates -----------------------------------------------------------------------------------------

cdef int _push(Buf *buf, Py_ssize_t a, Py_ssize_t b, int score, int t, int v) except -1:
    cdef Cand *grown
    if buf.n == buf.cap:
        if buf.heap:
            grown = <Cand *>PyMem_Realloc(buf.items, sizeof(Cand) * buf.cap * 2)
        else:
            grown = <Cand *>PyMem_Malloc(sizeof(Cand) * buf.cap * 2)
            if grown is not NULL:
                memcpy(grown, buf.items, sizeof(Cand) * buf.n)
        if grown is NULL:
            raise MemoryError()
        buf.items = grown
        buf.cap *= 2
        buf.heap = True
    buf.items[buf.n].a = a
    buf.items[buf.n].b = b
    buf.items[buf.n].score = score
    buf.items[buf.n].t = t
    buf.items[buf.n].v = v
    buf.n += 1
    return 0


cdef int _by_position(const void *x, const void *y) noexcept nogil:
    cdef const Cand *p = <const Cand *>x
    cdef const Cand *q = <const Cand *>y
    if p.a != q.a:
        return -1 if p.a < q.a else 1
    if p.b != q.b:
        return -1 if p.b < q.b else 1
    if p.score != q.score:
        return -1 if p.score < q.score else 1
    if p.t != q.t:
        return -1 if p.t < q.t else 1
    if p.v != q.v:
        return -1 if p.v < q.v else 1
    return 0


cdef int _by_priority(const void *x, const void *y) noexcept nogil:
    cdef const Cand *p = <const Cand *>x
    cdef const Cand *q = <const Cand *>y
    if p.score != q.score:
        return -1 if p.score > q.score else 1
    if p.a - p.b != q.a - q.b:
        return -1 if p.a - p.b < q.a - q.b else 1
    if p.a != q.a:
        return -1 if p.a < q.a else 1
    if p.t != q.t:
        return -1 if p.t < q.t else 1
    if p.v != q.v:
        return -1 if p.v < q.v else 1
    return 0


cdef list _resolve(Buf *buf):
    """Sorted, non-overlapping (type, start, end, score, validator): best score, then longest, wins."""
    cdef Py_ssize_t n = buf.n, k, m = 0, lo, hi, mid
    cdef Cand *c = buf.items
    cdef Cand *picked
    cdef list out = []
    if n == 0:
        return out
    qsort(c, n, sizeof(Cand), _by_position)
    for k in range(1, n):
        if c[k].a < c[k - 1].b:
            break
    else:
        for k in range(n):
            out.append((c[k].t, c[k].a, c[k].b, c[k].score, c[k].v))
        return out
    qsort(c, n, sizeof(Cand), _by_priority)
    picked = <Cand *>PyMem_Malloc(sizeof(Cand) * n)
    if picked is NULL:
        raise MemoryError()
    try:
        for k in range(n):
            lo = 0
            hi = m
            while lo < hi:  # first picked span starting at or after c[k].b
                mid = (lo + hi) // 2
                if picked[mid].a < c[k].b:
                    lo = mid + 1
                else:
                    hi = mid
            if lo > 0 and picked[lo - 1].b > c[k].a:
                continue
            memmove(picked + lo + 1, picked + lo, sizeof(Cand) * (m - lo))
            picked[lo] = c[k]
            m += 1
        for k in range(m):
            out.append((picked[k].t, picked[k].a, picked[k].b, picked[k].score, picked[k].v))
        return out
    finally:
        PyMem_Free(picked)


def _fold(str word):
    return word.translate(_LOWER)


def _check_words(str name, words, bint single=False):
    for w in words:
        if not isinstance(w, str) or not w or len(w) > 64:
            raise ValueError(f"{name}: {w!r} must be a non-empty string of at most 64 code points")
        if single and len(w) != 1:
            raise ValueError(f"{name}: {w!r} must be a single character")
        if any(ord(c) > 0xFFFF for c in w):
            raise ValueError(f"{name}: {w!r} has a character outside the Basic Multilingual Plane")


cdef class Scanner:
    """Finds PII candidates in one pass; build once from the lexicon, then call ``scan`` per text."""

    cdef unsigned char *flags
    cdef Words ctx, compound, trig, honor, markers, nonnames, suffixes, units, states, months
    cdef Words titles, name_suffixes, given, lead, name_after
    cdef unsigned char iban_len[26 * 26]  # BBAN length per country, 0 for none
    cdef char iban_classes[26 * 26][32]  # n / a / c per BBAN character
    cdef unsigned char area2[100]
    cdef unsigned char area3[1000]
    cdef int today

    def __cinit__(self, *args, **kwargs):
        self.flags = <unsigned char *>PyMem_Malloc(0x10000)
        if self.flags is NULL:
            raise MemoryError()
        memset(self.flags, 0, 0x10000)
        memset(self.iban_len, 0, sizeof(self.iban_len))
        memset(self.area2, 0, sizeof(self.area2))
        memset(self.area3, 0, sizeof(self.area3))

    def __dealloc__(self):
        PyMem_Free(self.flags)
        _free_words(&self.ctx)
        _free_words(&self.compound)
        _free_words(&self.trig)
        _free_words(&self.honor)
        _free_words(&self.markers)
        _free_words(&self.nonnames)
        _free_words(&self.suffixes)
        _free_words(&self.units)
        _free_words(&self.states)
        _free_words(&self.months)
        _free_words(&self.titles)
        _free_words(&self.name_suffixes)
        _free_words(&self.given)
        _free_words(&self.lead)
        _free_words(&self.name_after)

    def __init__(self, *, raising, lowering, surnames, compound_surnames, name_before, name_before_weak,
                 honorifics, name_stops, name_titles, name_after, name_suffixes, given_names, nonnames,
                 address_markers, address_stops, address_lead, street_suffixes, street_units, us_states,
                 plate_provinces, months,
                 iban_formats, cn_area_codes, today):
        if len(raising) != len(TYPES):
            raise ValueError(f"raising: need one tuple of words per type ({len(TYPES)}), got {len(raising)}")
        if len(address_markers) != 3:
            raise ValueError("address_markers: need (administrative, street, house) tuples")
        if len(months) != 12:
            raise ValueError("months: need the 12 month names, January first")
        if self.ctx.chars is not NULL:
            raise RuntimeError("Scanner is already initialised")
        ctx = {}
        for t, words in enumerate(raising):
            _check_words("raising", words)
            for w in words:
                ctx[_fold(w)] = ctx.get(_fold(w), 0) | (1 << t)
        _check_words("lowering", lowering)
        for w in lowering:
            ctx[_fold(w)] = ctx.get(_fold(w), 0) | (1 << LOWER)
        for w in ctx:
            self._flag(w[0], F_CTX)
        _build(&self.ctx, ctx)

        _check_words("surnames", surnames, True)
        for c in surnames:
            self._flag(c, F_SURNAME)
        _check_words("compound_surnames", compound_surnames)
        _build(&self.compound, {w: 1 for w in compound_surnames})
        for w in compound_surnames:
            self._flag(w[0], F_COMPOUND)
        trig = {}
        _check_words("name_before_weak", name_before_weak)
        for w in name_before_weak:
            trig[_fold(w)] = 1
        _check_words("name_before", name_before)
        for w in name_before:
            trig[_fold(w)] = 2
        _build(&self.trig, {w[::-1]: v for w, v in trig.items()})
        _check_words("honorifics", honorifics)
        _build(&self.honor, {w: 1 for w in honorifics})
        for w in honorifics:
            self._flag(w[0], F_HONOR)
        _check_words("name_stops", name_stops, True)
        for c in name_stops:
            self._flag(c, F_NAME_STOP)
        _check_words("name_titles", name_titles)
        _build(&self.titles, {_fold(w): 1 for w in name_titles})
        _check_words("name_after", name_after)
        _build(&self.name_after, {_fold(w): 1 for w in name_after})
        _check_words("name_suffixes", name_suffixes)
        _build(&self.name_suffixes, {_fold(w): 1 for w in name_suffixes})
        _check_words("given_names", given_names)
        _build(&self.given, {_fold(w): 1 for w in given_names})
        _check_words("nonnames", nonnames)
        _build(&self.nonnames, {_fold(w): 1 for w in nonnames})

        markers = {}
        for level, words in enumerate(address_markers, start=1):
            _check_words("address_markers", words)
            for w in words:
                markers[w] = level
                self._flag(w[0], F_ADDR)
        _build(&self.markers, markers)
        _check_words("address_stops", address_stops, True)
        for c in address_stops:
            self._flag(c, F_ADDR_STOP)
        _check_words("address_lead", address_lead)
        _build(&self.lead, {w[::-1]: 1 for w in address_lead})
        _check_words("street_suffixes", street_suffixes)
        _build(&self.suffixes, {_fold(w): 1 for w in street_suffixes})
        _check_words("street_units", street_units)
        _build(&self.units, {_fold(w): 1 for w in street_units})
        _check_words("us_states", us_states)
        _build(&self.states, {w: 1 for w in us_states})
        _check_words("plate_provinces", plate_provinces, True)
        for c in plate_provinces:
            self._flag(c, F_PLATE)
        _check_words("months", months)
        month_words = {}
        for m, w in enumerate(months, start=1):
            w = _fold(w)
            month_words[w] = m
            month_words[w[:3]] = m
            if w.startswith("sept"):
                month_words["sept"] = m
        _build(&self.months, month_words)
        _check_words("iban_formats", iban_formats)
        for w in iban_formats:
            if not (6 <= len(w) <= 36 and "A" <= w[0] <= "Z" and "A" <= w[1] <= "Z"
                    and all(c in "nac" for c in w[2:])):
                raise ValueError(f"iban_formats: {w!r} must be a country code and n/a/c per BBAN character")
            k = (ord(w[0]) - 65) * 26 + ord(w[1]) - 65
            self.iban_len[k] = len(w) - 2
            for j, c in enumerate(w[2:]):
                self.iban_classes[k][j] = ord(c)
        _check_words("cn_area_codes", cn_area_codes)
        for w in cn_area_codes:
            if not (2 <= len(w) <= 3 and w.isascii() and w.isdigit()):
                raise ValueError(f"cn_area_codes: {w!r} must be the 2 or 3 digits after the trunk 0")
            if len(w) == 2:
                self.area2[int(w)] = 1
            else:
                self.area3[int(w)] = 1
        if not (isinstance(today, int) and 19000101 <= today <= 99991231):
            raise ValueError(f"today: {today!r} must be a date as the integer YYYYMMDD")
        self.today = today

    cdef void _flag(self, str c, int f) noexcept:
        self.flags[ord(c)] |= f

    # --- the pass -------------------------------------------------------------------------------------

    def scan(self, str text not None):
        """Sorted, non-overlapping ``(type, start, end, score_milli, validator)`` for ``text``."""
        cdef Text t
        cdef Cand stack[STACK_CANDS]
        cdef Buf buf
        cdef Py_ssize_t i = 0, n, e
        cdef cp_t c
        cdef bint has_at
        cdef int f
        t.kind = PyUnicode_KIND(text)
        t.data = PyUnicode_DATA(text)
        t.n = n = len(text)
        buf.items = stack
        buf.n = 0
        buf.cap = STACK_CANDS
        buf.heap = False
        try:
            has_at = PyUnicode_FindChar(text, 64, 0, n, 1) >= 0
            while i < n:
                c = _ch(&t, i)
                if _word(c):
                    if i > 0 and _word(_ch(&t, i - 1)):
                        i += 1
                        continue
                    i = self._word(&t, i, has_at, &buf)
                    continue
                e = 0
                if c == 43:  # +
                    if _digit(_ch(&t, i + 1)) and (i == 0 or not _word(_ch(&t, i - 1))):
                        e = self._intl(&t, i, i + 1, &buf)
                elif c == 40:  # (
                    e = self._paren(&t, i, &buf)
                elif c == 58:  # :
                    if _ch(&t, i + 1) == 58 and (
                            i == 0 or (not _word(_ch(&t, i - 1)) and _ch(&t, i - 1) != 58)):
                        e = self._ipv6(&t, i, &buf)
                elif c < 0x10000:
                    f = self.flags[c]
                    if f & (F_PLATE | F_SURNAME | F_COMPOUND | F_ADDR):
                        e = self._cjk(&t, i, f, &buf)
                i = e if e else i + 1
            return _resolve(&buf)
        finally:
            if buf.heap:
                PyMem_Free(buf.items)

    # --- context ----------------------------------------------------------------------------------------

    cdef void _window(self, const Text *t, Py_ssize_t start, Py_ssize_t end, int *keys) noexcept:
        """Nearest context hit per type (and for lowering): distance * 256 - word length, or BIG."""
        cdef Py_ssize_t lo = start, hi = end, p
        cdef int k
        cdef cp_t c
        for k in range(NKEYS):
            keys[k] = BIG
        while lo > 0 and start - lo < WB and not _stop_before(_lo(t, lo - 1)):
            lo -= 1
        for p in range(lo, start):
            c = _lo(t, p)
            if c < 0x10000 and self.flags[c] & F_CTX:
                self._hits(t, p, start, keys, start - p)
        while hi < t.n and hi - end < WA and not _stop_after(_lo(t, hi)):
            hi += 1
        for p in range(end, hi):
            c = _lo(t, p)
            if c < 0x10000 and self.flags[c] & F_CTX:
                self._hits(t, p, hi, keys, -1 - (p - end))

    cdef void _hits(self, const Text *t, Py_ssize_t p, Py_ssize_t limit, int *keys, Py_ssize_t span) noexcept:
        cdef const Words *w = &self.ctx
        cdef cp_t c = _lo(t, p)
        cdef int k, j, ln, key, q
        cdef unsigned int mask
        cdef Py_ssize_t dist
        cdef const cp_t *s
        for k in range(w.bucket[c & (BUCKETS - 1)], w.bucket[(c & (BUCKETS - 1)) + 1]):
            s = w.chars + w.off[k]
            ln = w.length[k]
            if s[0] != c or p + ln > limit:
                continue
            for j in range(1, ln):
                if _lo(t, p + j) != s[j]:
                    break
            else:
                if _alpha(s[0]) and p > 0 and _alpha(_lo(t, p - 1)):
                    continue
                if _alpha(s[ln - 1]) and p + ln < t.n and _alpha(_lo(t, p + ln)):
                    continue
                dist = span - ln if span >= 0 else -1 - span
                key = <int>dist * 256 - ln
                mask = <unsigned int>w.value[k]
                for q in range(NKEYS):
                    if mask >> q & 1 and key < keys[q]:
                        keys[q] = key

    cdef int _add(self, const Text *t, Buf *buf, Py_ssize_t a, Py_ssize_t b, int ty, int v, int base, int up,
                  int down) except -1:
        cdef int keys[NKEYS]
        cdef int d
        self._window(t, a, b, keys)
        d = _decide(keys, ty)
        return _push(buf, a, b, up if d > 0 else (down if d < 0 else base), ty, v)

    # --- words --------------------------------------------------------------------------------------------

    cdef Py_ssize_t _word(self, const Text *t, Py_ssize_t i, bint has_at, Buf *buf) except -1:
        cdef Py_ssize_t n = t.n, e, j, k
        cdef cp_t c
        if has_at:
            e = _email_end(t, i)
            if e and _raw_ascii(t, i, e):
                self._add(t, buf, i, e, EMAIL, V_EMAIL, 900, 950, 900)
                return e
        j = i + 1
        while j < n and _word(_ch(t, j)):
            j += 1
        c = _ch(t, j)
        if j < n and j - i <= 4 and (c == 58 or c == 45 or c == 46):
            k = i
            while k < j and _hex(_ch(t, k)):
                k += 1
            if k == j:
                e = self._network(t, i, j, buf)
                if e:
                    return e
        if _digit(_ch(t, i)):
            e = self._date_num(t, i, buf)
            if e:
                return e
            e = self._street(t, i, j, buf)
            if e:
                return e
            k = i
            while k < j and _digit(_ch(t, k)):
                k += 1
            if k == j or (k + 1 == j and (_ch(t, k) == 88 or _ch(t, k) == 120)):
                return self._numeric(t, i, buf)
            self._alnum(t, i, j, buf)
            return j
        e = self._iban(t, i, buf)
        if e:
            return e
        if self._alnum(t, i, j, buf):
            return j
        e = self._military(t, i, j, buf)
        if e:
            return e
        e = self._date_word(t, i, j, buf)
        if e:
            return e
        e = self._person_en(t, i, buf)
        return e if e else j

    cdef Py_ssize_t _network(self, const Text *t, Py_ssize_t i, Py_ssize_t j, Buf *buf) except -1:
        cdef cp_t sep = _ch(t, j), p = _ch(t, i - 1) if i > 0 else 0
        cdef Py_ssize_t e = 0, a, q
        cdef int g
        if i > 0 and (p == 58 or p == 45 or p == 46):
            return 0
        if j - i == 2 and sep != 46:
            e = i + 17
            for g in range(6):
                a = i + 3 * g
                if (a + 2 > t.n or not (_hex(_ch(t, a)) and _hex(_ch(t, a + 1)))
                        or (g < 5 and _ch(t, a + 2) != sep)):
                    e = 0
                    break
            if e and (_word(_ch(t, e)) or _ch(t, e) == sep):
                e = 0
        elif j - i == 4 and sep == 46:
            e = i + 14
            for g in range(3):
                a = i + 5 * g
                if a + 4 > t.n or (g < 2 and _ch(t, a + 4) != 46):
                    e = 0
                    break
                for q in range(a, a + 4):
                    if not _hex(_ch(t, q)):
                        e = 0
                        break
                if not e:
                    break
            if e and (_word(_ch(t, e)) or (_ch(t, e) == 46 and _word(_ch(t, e + 1)))):
                e = 0
        if e and _raw_ascii(t, i, e):
            self._add(t, buf, i, e, MAC, V_MAC, 850, 950, 600)
            return e
        if sep == 58:
            return self._ipv6(t, i, buf)
        if sep == 46:
            return self._dotted(t, i, buf)
        return 0

    cdef Py_ssize_t _ipv6(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        cdef Py_ssize_t k = i, e, z
        cdef cp_t c
        while k < t.n and k - i < 46:
            c = _ch(t, k)
            if not (_hex(c) or c == 58 or c == 46):
                break
            k += 1
        if _word(_ch(t, k)):
            return 0
        e = k
        while e > i and _ch(t, e - 1) == 46:
            e -= 1
        if e - i >= 2 and _ch(t, e - 1) == 58 and _ch(t, e - 2) != 58:
            e -= 1
        if not _ipv6_ok(t, i, e) or not _raw_ascii(t, i, e):
            return 0
        if e == k:
            z = _prefix(t, _zone(t, e), 128)
            if _raw_ascii(t, e, z):
                e = z
        self._add(t, buf, i, e, IP, V_IP, 850, 950, 600)
        return e

    cdef Py_ssize_t _dotted(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        cdef int lens[4]
        cdef int ng = 0, ln = 0
        cdef Py_ssize_t k = i, g, e
        cdef bint ip
        cdef char d[16]
        if _blocked_before(t, i):
            return 0
        while True:
            g = k
            while _digit(_ch(t, k)) and k - g < 4:
                d[ln] = <char>_ch(t, k)
                ln += 1
                k += 1
            lens[ng] = <int>(k - g)
            ng += 1
            if ng < 4 and _ch(t, k) == 46 and _digit(_ch(t, k + 1)):
                k += 1
                continue
            break
        ip = ng == 4 and _ipv4_ok(t, i, k)
        if _blocked_after(t, k) and not (ip and _ch(t, k) == 64):  # "192.168.2.1@eth0"
            return 0
        if ip:
            if not _raw_ascii(t, i, k):
                return 0
            e = _prefix(t, k, 32)
            if not _raw_ascii(t, k, e):
                e = k
            self._add(t, buf, i, e, IP, V_IP, 750, 950, 300)
            return e
        if ng == 3 and lens[0] == 3 and lens[1] == 2 and lens[2] == 4:  # an SSN written 078.05.1123
            return k if self._nine(t, i, k, d, True, buf) else 0
        if ((ng == 3 and lens[0] == 3 and lens[1] == 3 and lens[2] == 4)
                or (ng == 4 and lens[0] == 1 and lens[1] == 3 and lens[2] == 3 and lens[3] == 4
                    and d[0] == 49)):
            if _nanp_ok(d + ln - 10):
                self._add(t, buf, i, k, PHONE, V_PHONE, 650, 900, 300)
                return k
        return 0

    cdef Py_ssize_t _numeric(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        """A run of digit groups joined by single separators: cut at spaces into classified numbers."""
        cdef Py_ssize_t gs_stack[2 * STACK_GROUPS]
        cdef cp_t seps_stack[STACK_GROUPS]
        cdef Groups g
        cdef Py_ssize_t ng = 0, p = i, q, run_end, last_ok, a, b, found, total, first
        cdef Py_ssize_t ends[24]
        cdef int nends, x_end = 0, r
        cdef cp_t c
        g.gs = gs_stack
        g.seps = seps_stack
        g.cap = STACK_GROUPS
        g.heap = False
        try:
            while True:
                if ng == g.cap:
                    _grow_groups(&g)
                q = p
                while _digit(_ch(t, q)):
                    q += 1
                c = _ch(t, q)
                if (c == 88 or c == 120) and not _word(_ch(t, q + 1)):
                    g.gs[2 * ng] = p
                    g.gs[2 * ng + 1] = q + 1
                    ng += 1
                    x_end = 1
                    p = q + 1
                    break
                g.gs[2 * ng] = p
                g.gs[2 * ng + 1] = q
                ng += 1
                if _is_sep(c) and _digit(_ch(t, q + 1)):
                    g.seps[ng - 1] = c
                    p = q + 1
                    continue
                p = q
                break
            run_end = p
            last_ok = ng - 2 if _blocked_after(t, run_end) else ng - 1
            first = a = 1 if _blocked_before(t, i) else 0
            while a <= last_ok:
                if a > first and (not _is_ws(g.seps[a - 1]) or g.gs[2 * a - 1] - g.gs[2 * a - 2] <= 2):
                    a += 1
                    continue
                total = 0
                nends = 0
                for b in range(a, last_ok + 1):
                    total += g.gs[2 * b + 1] - g.gs[2 * b]
                    if total > 20 or (b > a + 1 and g.gs[2 * b - 1] - g.gs[2 * b - 2] < 2):
                        break
                    if b == ng - 1 or (_is_ws(g.seps[b])
                                       and (b + 1 > last_ok or g.gs[2 * b + 3] - g.gs[2 * b + 2] > 2)):
                        ends[nends] = b
                        nends += 1
                found = -1
                while nends > 0:
                    nends -= 1
                    b = ends[nends]
                    r = self._classify(t, g.gs, g.seps, a, b, x_end and b == ng - 1, buf)
                    if r:
                        found = b
                        break
                a = found + 1 if found >= 0 else a + 1
            return run_end
        finally:
            if g.heap:
                PyMem_Free(g.gs)
                PyMem_Free(g.seps)

    cdef int _classify(self, const Text *t, const Py_ssize_t *gs, const cp_t *seps, Py_ssize_t a,
                       Py_ssize_t b, bint x, Buf *buf) except -1:
        cdef Py_ssize_t start = gs[2 * a], end = gs[2 * b + 1], k, q
        cdef char d[24]
        cdef int lens[24]
        cdef int ln = 0, nl = 0
        cdef int keys[NKEYS]
        cdef bint phone
        for k in range(a, b + 1):
            lens[nl] = <int>(gs[2 * k + 1] - gs[2 * k])
            nl += 1
            for q in range(gs[2 * k], gs[2 * k + 1]):
                d[ln] = <char>_ch(t, q)
                ln += 1
        d[ln] = 0
        if x:
            if ln == 18 and _id18_ok(d, self.today):
                self._add(t, buf, start, end, ID, V_GB11643, 950, 990, 550)
                return 1
            return 0
        if ln == 18:
            if _id18_ok(d, self.today):
                self._add(t, buf, start, end, ID, V_GB11643, 950, 990, 550)
                return 1
            if _uscc_ok(d):
                self._add(t, buf, start, end, USCC, V_GB32100, 950, 990, 550)
                return 1
        if ln == 15:
            if (d[0] == 48 and d[1] == 48 and d[2] == 56 and d[3] == 54 and _mobile_ok(d + 4, 11)
                    and ((nl == 1) or (lens[0] == 4 and _mobile_shape(lens + 1, nl - 1)))):
                self._add(t, buf, start, end, MOBILE, V_MOBILE, 950, 990, 550)
                return 1
            if _id15_ok(d, self.today) and not (
                    (_num(d, 0, 2) == 34 or _num(d, 0, 2) == 37) and _luhn(d, ln)):
                self._add(t, buf, start, end, ID, V_GB11643_15, 700, 950, 300)
                return 1
        if (ln == 13 and d[0] == 56 and d[1] == 54 and _mobile_ok(d + 2, 11)
                and ((nl == 1) or (lens[0] == 2 and _mobile_shape(lens + 1, nl - 1)))):
            self._add(t, buf, start, end, MOBILE, V_MOBILE, 950, 990, 550)
            return 1
        if ((ln == 10 and nl == 3 and lens[0] == 3 and lens[1] == 3 and lens[2] == 4)
                or (ln == 11 and nl == 4 and lens[0] == 1 and lens[1] == 3 and lens[2] == 3 and lens[3] == 4
                    and d[0] == 49)):
            if _nanp_ok(d + ln - 10) and seps[a] == seps[b - 1]:
                self._add(t, buf, start, end, PHONE, V_PHONE, 650, 900, 300)
                return 1
        if ln == 11 and _mobile_ok(d, ln) and _mobile_shape(lens, nl):
            self._add(t, buf, start, end, MOBILE, V_MOBILE, 850, 980, 300)
            return 1
        if ln >= 10 and d[0] == 48 and d[1] != 48:
            if self._landline(t, gs, seps, a, b, d, ln, lens, buf):
                return 1
        if 13 <= ln <= 19:
            if _luhn(d, ln):
                if _card_network(d, ln):
                    self._add(t, buf, start, end, CARD, V_LUHN, 800, 980, 300)
                else:
                    self._add(t, buf, start, end, CARD, V_LUHN, 400, 850, 300)
                return 1
            if ln >= 16 and d[0] == 54 and d[1] == 50:
                self._window(t, start, end, keys)
                if _decide(keys, CARD) > 0:
                    _push(buf, start, end, 450, CARD, V_UNIONPAY)
                    return 1
        if ln == 9:
            return self._nine(t, start, end, d,
                              nl == 3 and lens[0] == 3 and lens[1] == 2 and lens[2] == 4, buf)
        if a == 0 and ln >= 9 and ln <= 17 and d[0] == 48 and d[1] == 48 and d[2] != 48:
            if d[2] == 56 and d[3] == 54 and self._landline_00(d, ln):
                self._add(t, buf, start, end, LANDLINE, V_AREA, 900, 950, 550)
            else:
                self._add(t, buf, start, end, PHONE, V_PHONE, 600, 900, 300)
            return 1
        if 8 <= ln <= 12:
            self._window(t, start, end, keys)
            phone = _phone_ctx(keys)
            if ln == 10 and phone and _nanp_ok(d):
                _push(buf, start, end, 750, PHONE, V_PHONE)
                return 1
            if (ln == 8 or ln == 10) and _decide(keys, PERMIT) > 0:
                _push(buf, start, end, 850, PERMIT, V_PERMIT)
                return 1
            if phone:
                _push(buf, start, end, 750, PHONE, V_PHONE_NAT)
                return 1
        return 0

    cdef int _landline_area(self, const char *d, int n) noexcept:
        """Length of the area code (with its 0) if ``d`` is a mainland fixed-line number, else 0."""
        if n < 11 or n > 12 or d[0] != 48:
            return 0
        if self.area2[_num(d, 1, 3)]:
            return 3 if n == 11 and d[3] > 49 else 0
        return 4 if self.area3[_num(d, 1, 4)] and d[4] > 49 else 0

    cdef bint _landline_00(self, const char *d, int ln) noexcept:
        """``0086`` + a landline without its 0: check it as ``0`` + the rest."""
        cdef char z[24]
        z[0] = 48
        memcpy(z + 1, d + 4, ln - 4)
        return self._landline_area(z, ln - 3) != 0

    cdef int _landline(self, const Text *t, const Py_ssize_t *gs, const cp_t *seps, Py_ssize_t a,
                       Py_ssize_t b, const char *d, int ln, const int *lens, Buf *buf) except -1:
        cdef Py_ssize_t start = gs[2 * a], end = gs[2 * b + 1]
        cdef int area = self._landline_area(d, ln)
        if area:
            if b > a and lens[0] == area:
                self._add(t, buf, start, end, LANDLINE, V_AREA, 750, 950, 300)
            else:
                self._add(t, buf, start, end, LANDLINE, V_AREA, 400, 850, 300)
            return 1
        if b - a == 2 and lens[2] <= 5 and seps[a] == 45 and seps[a + 1] == 45:
            if self._landline_area(d, lens[0] + lens[1]) == lens[0]:
                self._add(t, buf, start, end, LANDLINE, V_AREA, 750, 950, 300)
                return 1
        return 0

    cdef int _nine(self, const Text *t, Py_ssize_t start, Py_ssize_t end, const char *d, bint formatted,
                   Buf *buf) except -1:
        cdef int keys[NKEYS]
        cdef int ty, v, dec, score
        cdef const Cand *prev
        self._window(t, start, end, keys)
        if not formatted:
            if _decide(keys, PASSPORT) > 0:
                _push(buf, start, end, 850, PASSPORT, V_PASSPORT)
                return 1
            if _phone_ctx(keys):
                _push(buf, start, end, 750, PHONE, V_PHONE_NAT)
                return 1
        if _itin_ok(d):
            ty, v = ITIN, V_ITIN
        elif _ssn_ok(d):
            ty, v = SSN, V_SSN
        else:
            return 0
        dec = _decide(keys, ty)
        if dec == 0 and buf.n > 0:  # a list shares its context: "taxpayer id 911-701234 91170-1234"
            prev = &buf.items[buf.n - 1]
            if prev.t == ty and prev.score >= 850 and _listed(t, prev.b, start):
                dec = 1
        if formatted:
            score = 980 if dec > 0 else (300 if dec < 0 else 800)
        else:
            score = 850 if dec > 0 else (300 if dec < 0 else 350)
        _push(buf, start, end, score, ty, v)
        return 1

    cdef Py_ssize_t _intl(self, const Text *t, Py_ssize_t start, Py_ssize_t p, Buf *buf) except -1:
        cdef Py_ssize_t ga[20]
        cdef Py_ssize_t gb[20]
        cdef int ng = 0, total = 0, m, g, nd = 0, glen
        cdef Py_ssize_t k = p, a, q, e
        cdef char digits[40]
        while True:
            a = k
            while _digit(_ch(t, k)):
                k += 1
            ga[ng] = a
            gb[ng] = k
            ng += 1
            total += <int>(k - a) if k - a < 100 else 100
            if total > 15:
                break
            q = k
            m = 0
            while m < 2 and _is_psep(_ch(t, q)):
                q += 1
                m += 1
            if m and _digit(_ch(t, q)):
                k = q
                continue
            break
        if _ch(t, p) == 56 and _ch(t, p + 1) == 54:
            for g in range(ng):
                glen = <int>(gb[g] - ga[g])
                if nd + glen - 2 > 12:
                    break
                for q in range(ga[g], gb[g]):
                    digits[nd] = <char>_ch(t, q)
                    nd += 1
                e = gb[g]
                if _blocked_after(t, e) or (g + 1 < ng and gb[g + 1] - ga[g + 1] <= 2):
                    continue
                if _mobile_ok(digits + 2, nd - 2) and self._intl_shape(ga, gb, g):
                    self._add(t, buf, start, e, MOBILE, V_MOBILE, 950, 990, 550)
                    return e
                if nd - 2 >= 9 and self._landline_86(digits, nd):
                    self._add(t, buf, start, e, LANDLINE, V_AREA, 900, 950, 550)
                    return e
        nd = 0
        e = 0
        for g in range(ng):
            glen = <int>(gb[g] - ga[g]) if gb[g] - ga[g] < 100 else 100
            if nd + glen > 15:
                break
            nd += glen
            e = gb[g]
        if nd < 7 or _blocked_after(t, e):
            return 0
        self._add(t, buf, start, e, PHONE, V_PHONE, 800, 950, 300)
        return e

    cdef bint _intl_shape(self, const Py_ssize_t *ga, const Py_ssize_t *gb, int g) noexcept:
        """+86 then a mobile grouped as people write it (see _mobile_shape), or all glued together."""
        cdef int lens[20]
        cdef int k
        if gb[0] - ga[0] == 13:
            return g == 0
        if gb[0] - ga[0] != 2:
            return False
        for k in range(1, g + 1):
            lens[k - 1] = <int>(gb[k] - ga[k])
        return _mobile_shape(lens, g)

    cdef bint _landline_86(self, const char *digits, int nd) noexcept:
        cdef char z[24]
        z[0] = 48
        memcpy(z + 1, digits + 2, nd - 2)
        return self._landline_area(z, nd - 1) != 0

    cdef Py_ssize_t _paren(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        cdef Py_ssize_t k = i + 1, q, e
        cdef int al, nr = 0
        cdef char d[40]
        cdef cp_t c
        if _ch(t, i + 1) == 43 and _digit(_ch(t, i + 2)):
            k = i + 2
            while _digit(_ch(t, k)) and k - i < 6:
                k += 1
            return self._intl(t, i, i + 2, buf) if _ch(t, k) == 41 else 0
        while _digit(_ch(t, k)) and k - i <= 5:
            d[k - i - 1] = <char>_ch(t, k)
            k += 1
        al = <int>(k - i - 1)
        if (al != 3 and al != 4) or _ch(t, k) != 41:
            return 0
        k += 1
        c = _ch(t, k)
        if c == 32 or c == 45 or c == 0xA0 or c == 0x3000:
            k += 1
        e = k
        while _digit(_ch(t, k)):
            q = k
            while _digit(_ch(t, q)):
                if al + nr < 32:
                    d[al + nr] = <char>_ch(t, q)
                nr += 1
                q += 1
            e = q
            if nr < 8 and _is_sep(_ch(t, q)) and _digit(_ch(t, q + 1)):
                k = q + 1
                continue
            break
        if nr == 0 or _blocked_after(t, e):
            return 0
        if d[0] == 48:
            if al + nr <= 32 and self._landline_area(d, al + nr) == al:
                self._add(t, buf, i, e, LANDLINE, V_AREA, 800, 950, 300)
                return e
            return 0
        if al == 3 and nr == 7 and _nanp_ok(d):
            self._add(t, buf, i, e, PHONE, V_PHONE, 650, 900, 300)
            return e
        return 0

    cdef int _alnum(self, const Text *t, Py_ssize_t i, Py_ssize_t j, Buf *buf) except -1:
        cdef Py_ssize_t ln = j - i, k
        cdef char d[18]
        cdef int nl, nd, dec, digits = 0
        cdef int keys[NKEYS]
        cdef cp_t a, b, c
        cdef bint cnpass, permit, no_io
        if ((_ch(t, j) == 45 and _word(_ch(t, j + 1)))
                or (i >= 2 and _ch(t, i - 1) == 45 and _word(_ch(t, i - 2)))):
            return 0
        if ln == 18:
            for k in range(18):
                d[k] = <char>_ch(t, i + k)
            if _uscc_ok(d):
                self._add(t, buf, i, j, USCC, V_GB32100, 950, 990, 550)
                return 1
        if ln < 6 or ln > 11:
            return 0
        for k in range(i, j):
            c = _ch(t, k)
            if _digit(c):
                digits += 1
            elif not _upper(c):
                return 0
        a = _ch(t, i)
        b = _ch(t, i + 1)
        nl = (2 if _upper(b) else 1) if _upper(a) else 0
        if nl and digits == ln - nl:
            nd = digits
            no_io = b != 73 and b != 79
            cnpass = ((nl == 1 and (((a == 69 or a == 71 or a == 83) and nd == 8)
                                    or ((a == 68 or a == 83 or a == 80) and nd == 7)))
                      or (nl == 2 and nd == 7 and ((a == 69 and no_io)
                                                   or (b == 69 and (a == 68 or a == 83 or a == 80)))))
            if cnpass:
                self._add(t, buf, i, j, CNPASS, V_CNPASS, 650, 950, 300)
                return 1
            permit = ((nl == 1 and (((a == 67 or a == 76 or a == 72 or a == 77 or a == 84) and nd == 8)
                                    or ((a == 72 or a == 77) and nd == 10)))
                      or (nl == 2 and a == 67 and no_io and nd == 7))
            if permit:
                self._window(t, i, j, keys)
                if _decide(keys, PASSPORT) > 0 and _decide(keys, PERMIT) <= 0 and ln <= 9:
                    _push(buf, i, j, 850, PASSPORT, V_PASSPORT)
                else:
                    dec = _decide(keys, PERMIT)
                    _push(buf, i, j, 950 if dec > 0 else (300 if dec < 0 else 550), PERMIT, V_PERMIT)
                return 1
        if ln <= 9 and digits >= 5:
            self._window(t, i, j, keys)
            if _decide(keys, PASSPORT) > 0:
                _push(buf, i, j, 850, PASSPORT, V_PASSPORT)
                return 1
        return 0

    cdef Py_ssize_t _iban(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        cdef Py_ssize_t chars[40]
        cdef int length, m = 0, country, q
        cdef char kind
        cdef Py_ssize_t k = i
        cdef cp_t c, sep = 0
        if not (i + 4 < t.n and _upper(_ch(t, i)) and _upper(_ch(t, i + 1)) and _digit(_ch(t, i + 2))
                and _digit(_ch(t, i + 3))):
            return 0
        country = (_ch(t, i) - 65) * 26 + _ch(t, i + 1) - 65
        if not self.iban_len[country]:
            return 0
        if _ch(t, i + 2) == 48 and (_ch(t, i + 3) == 48 or _ch(t, i + 3) == 49):
            return 0
        if _ch(t, i + 2) == 57 and _ch(t, i + 3) == 57:
            return 0
        length = self.iban_len[country] + 4
        while k < t.n and m < length:
            c = _ch(t, k)
            if _digit(c) or _upper(c):
                chars[m] = k
                m += 1
                k += 1
            elif (c == 32 or c == 45) and (sep == 0 or c == sep) and m % 4 == 0 and _word(_ch(t, k + 1)):
                sep = c
                k += 1
            else:
                break
        if m != length or _word(_ch(t, k)):
            return 0
        if sep == 45 and _ch(t, k) == 45 and _word(_ch(t, k + 1)):
            return 0
        for q in range(4, length):
            c = _ch(t, chars[q])
            kind = self.iban_classes[country][q - 4]
            if (kind == 110 and not _digit(c)) or (kind == 97 and not _upper(c)):
                return 0
        if not _iban_mod97(t, chars, m):
            return 0
        self._add(t, buf, i, k, IBAN, V_MOD97, 950, 990, 600)
        return k

    # --- dates of birth --------------------------------------------------------------------------------

    cdef int _month_at(self, const Text *t, Py_ssize_t q, Py_ssize_t *end) noexcept:
        cdef Py_ssize_t e = q
        cdef int m
        while e < t.n and e - q < 10 and _alpha(_lo(t, e)):
            e += 1
        if _alpha(_lo(t, e)):
            end[0] = q
            return 0
        m = _exact(&self.months, t, q, e, True)
        if m and e - q <= 4 and _lo(t, e) == 46:
            e += 1
        end[0] = e
        return m

    cdef Py_ssize_t _birth(self, const Text *t, Py_ssize_t i, Py_ssize_t e, int y, int m, int d,
                           Buf *buf) except -1:
        cdef int keys[NKEYS]
        if not _birth_ok(y, m, d, self.today):
            return 0
        self._window(t, i, e, keys)
        if _decide(keys, DOB) <= 0:
            return 0
        _push(buf, i, e, 850, DOB, V_DATE)
        return e

    cdef bint _ordinal(self, const Text *t, Py_ssize_t q) noexcept:
        cdef cp_t a = _lo(t, q), b = _lo(t, q + 1)
        if q + 1 >= t.n:
            return False
        return ((a == 115 and b == 116) or (a == 110 and b == 100) or (a == 114 and b == 100)
                or (a == 116 and b == 104))

    cdef Py_ssize_t _date_num(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        cdef Py_ssize_t k = i, k2, k3, q, q2, n = t.n
        cdef int ln, y = 0, m = 0, d = 0, v1, v2, yv, mo
        cdef Py_ssize_t e = 0
        cdef cp_t c, want
        while _digit(_ch(t, k)) and k - i < 9:
            k += 1
        ln = <int>(k - i)
        c = _ch(t, k)
        if ln == 4 and (c == 45 or c == 47 or c == 46 or c == 0x5E74):
            m = _int_run(t, k + 1, 2, &k2)
            want = 0x6708 if c == 0x5E74 else c
            if m >= 0 and _ch(t, k2) == want:
                d = _int_run(t, k2 + 1, 2, &k3)
                if d >= 0:
                    y = _int_run(t, i, 4, &q)
                    if c != 0x5E74:
                        e = k3
                    elif _ch(t, k3) == 0x65E5 or _ch(t, k3) == 0x53F7:
                        e = k3 + 1
        elif ln == 1 or ln == 2:
            v1 = _int_run(t, i, 2, &q)
            if c == 47 or c == 46 or c == 45:
                v2 = _int_run(t, k + 1, 2, &k2)
                if v2 >= 0 and _ch(t, k2) == c:
                    yv = _int_run(t, k2 + 1, 4, &k3)
                    if k3 - k2 == 5:
                        y = yv
                        e = k3
                        if c == 46 or v1 > 12:
                            m, d = v2, v1
                        else:
                            m, d = v1, v2
            else:
                q = k
                if self._ordinal(t, q):
                    q += 2
                if q + 1 < n and _ch(t, q) == 32:
                    mo = self._month_at(t, q + 1, &q)
                    if mo:
                        if _ch(t, q) == 44:
                            q += 1
                        if _ch(t, q) == 32:
                            yv = _int_run(t, q + 1, 4, &q2)
                            if q2 - q == 5:
                                y, m, d, e = yv, mo, v1, q2
        if not e or _word(_ch(t, e)):
            return 0
        return self._birth(t, i, e, y, m, d, buf)

    cdef Py_ssize_t _date_word(self, const Text *t, Py_ssize_t i, Py_ssize_t j, Buf *buf) except -1:
        cdef Py_ssize_t q, e
        cdef int mo, d, y
        mo = self._month_at(t, i, &q)
        if not mo or _ch(t, q) != 32:
            return 0
        d = _int_run(t, q + 1, 2, &q)
        if d < 0:
            return 0
        if self._ordinal(t, q):
            q += 2
        if _ch(t, q) == 44:
            q += 1
        if _ch(t, q) != 32:
            return 0
        y = _int_run(t, q + 1, 4, &e)
        if e - q != 5 or _word(_ch(t, e)):
            return 0
        return self._birth(t, i, e, y, mo, d, buf)

    # --- English names and street addresses ------------------------------------------------------------

    cdef int _trigger(self, const Text *t, Py_ssize_t b) noexcept:
        cdef const Words *w = &self.trig
        cdef cp_t c
        cdef int k, q, ln, best = 0
        cdef const cp_t *s
        if b == 0:
            return 0
        c = _lo(t, b - 1)
        for k in range(w.bucket[c & (BUCKETS - 1)], w.bucket[(c & (BUCKETS - 1)) + 1]):
            s = w.chars + w.off[k]
            ln = w.length[k]
            if s[0] != c or ln > b or w.value[k] <= best:
                continue
            for q in range(1, ln):
                if _lo(t, b - 1 - q) != s[q]:
                    break
            else:
                if _alpha(s[ln - 1]) and b - ln > 0 and _alpha(_lo(t, b - ln - 1)):
                    continue
                best = w.value[k]
        return best

    cdef Py_ssize_t _person_en(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        cdef Py_ssize_t b = i, k = i, end = 0, w, n = t.n, start
        cdef int strength, tokens = 0, score
        cdef bint lower_seen, given = False
        cdef cp_t c
        if not _upper(_ch(t, i)):
            return 0
        while b > 0 and i - b < 3:
            c = _ch(t, b - 1)
            if not (c == 32 or c == 10 or c == 9):
                break
            b -= 1
        strength = self._trigger(t, b)
        w = i + 1
        while _alpha(_ch(t, w)):
            w += 1
        if _exact(&self.titles, t, i, w, True):
            if _ch(t, w) == 46:
                w += 1
            if not (w + 1 < n and _ch(t, w) == 32 and _upper(_ch(t, w + 1))):
                return 0
            k = w + 1
            strength = 2
        start = k
        while tokens < 3 and k < n and _upper(_ch(t, k)):
            w = k + 1
            lower_seen = False
            while w < n:
                c = _ch(t, w)
                if not (_alpha(c) or ((c == 39 or c == 45) and _alpha(_ch(t, w + 1)))):
                    break
                if _lower_letter(c):
                    lower_seen = True
                w += 1
            if tokens >= 2 and _exact(&self.name_suffixes, t, k, w, True):
                end = w + 1 if _ch(t, w) == 46 else w
                break
            if w - k == 1:
                if tokens and w + 2 < n and _ch(t, w) == 46 and _ch(t, w + 1) == 32 and _upper(_ch(t, w + 2)):
                    k = w + 2
                    continue
                break
            if not lower_seen or _exact(&self.nonnames, t, k, w, True):
                break
            if tokens == 0:
                given = _exact(&self.given, t, k, w, True) != 0
            tokens += 1
            end = w
            if _ch(t, w) == 32 and _upper(_ch(t, w + 1)):
                k = w + 1
                continue
            break
        if not tokens or _word(_ch(t, end)):
            return 0
        if (not strength and end + 1 < n and _ch(t, end) == 32
                and self._word_ahead(&self.name_after, t, end + 1)):
            strength = 1
        if strength:
            score = 850 if strength == 2 else 700
        elif given and tokens >= 2:
            score = 650
        else:
            return 0
        _push(buf, start, end, score, PERSON, V_NAME)
        return end

    cdef Py_ssize_t _street(self, const Text *t, Py_ssize_t i, Py_ssize_t j, Buf *buf) except -1:
        cdef Py_ssize_t k = i, p, a, w, e, n = t.n
        cdef int names = 0
        while k < j and _digit(_ch(t, k)):
            k += 1
        if k - i > 6 or not (k == j or (k + 1 == j and _upper(_ch(t, k)))):
            return 0
        p = j
        while names < 5:
            if not (p + 1 < n and _ch(t, p) == 32):
                return 0
            a = p + 1
            w = a
            if _upper(_ch(t, w)):
                w += 1
                while _alpha(_ch(t, w)):
                    w += 1
            elif _digit(_ch(t, w)):
                while _digit(_ch(t, w)):
                    w += 1
                if not self._ordinal(t, w):
                    return 0
                w += 2
            else:
                return 0
            if _word(_ch(t, w)):
                return 0
            if names and _exact(&self.suffixes, t, a, w, True):
                e = self._street_tail(t, w)
                self._add(t, buf, i, e, ADDRESS, V_STREET, 850, 950, 850)
                return e
            names += 1
            p = w
        return 0

    cdef Py_ssize_t _military(self, const Text *t, Py_ssize_t i, Py_ssize_t j, Buf *buf) except -1:
        """USPS military mail: "PSC 1234, Box 5678, APO AE 09123", "USS Nimitz, FPO AP 96620"."""
        cdef Py_ssize_t k = j, q, z, tt, n = t.n, ln = j - i
        cdef int words = 0
        if ((ln == 3 and (_eq(t, i, b"PSC", 3) or _eq(t, i, b"CMR", 3)))
                or (ln == 4 and _eq(t, i, b"Unit", 4))):
            if not (k + 1 < n and _ch(t, k) == 32 and _digit(_ch(t, k + 1))):
                return 0
            k += 1
            q = k
            while _digit(_ch(t, k)) and k - q < 6:
                k += 1
            if k - q > 5:
                return 0
            if _ch(t, k) == 44:
                k += 1
            if not (_eq(t, k, b" Box ", 5) and _digit(_ch(t, k + 5))):
                return 0
            k += 5
            q = k
            while _digit(_ch(t, k)) and k - q < 6:
                k += 1
            if k - q > 5:
                return 0
        elif ((ln == 3 and _eq(t, i, b"USS", 3))
              or (ln == 4 and (_eq(t, i, b"USNS", 4) or _eq(t, i, b"USNV", 4)))
              or (ln == 5 and _eq(t, i, b"USCGC", 5))):
            while (words < 3 and k + 2 < n and _ch(t, k) == 32 and _upper(_ch(t, k + 1))
                   and _lower_letter(_ch(t, k + 2))):
                k += 2
                while _alpha(_ch(t, k)):
                    k += 1
                words += 1
            if not words:
                return 0
        else:
            return 0
        if not (_eq(t, k, b", ", 2) and (_eq(t, k + 2, b"APO", 3) or _eq(t, k + 2, b"FPO", 3)
                                          or _eq(t, k + 2, b"DPO", 3)) and k + 5 < n and _ch(t, k + 5) == 32):
            return 0
        if not ((_eq(t, k + 6, b"AA", 2) or _eq(t, k + 6, b"AE", 2) or _eq(t, k + 6, b"AP", 2))
                and k + 8 < n and _ch(t, k + 8) == 32):
            return 0
        z = k + 9
        tt = z
        while _digit(_ch(t, tt)) and tt - z < 6:
            tt += 1
        if tt - z != 5 or _word(_ch(t, tt)):
            return 0
        self._add(t, buf, i, tt, ADDRESS, V_STREET, 850, 950, 850)
        return tt

    cdef Py_ssize_t _street_tail(self, const Text *t, Py_ssize_t e) noexcept:
        cdef Py_ssize_t q, a, w, tt, city = 0, z, u, n = t.n
        cdef int words
        cdef bint digits4
        q = e + 1 if _ch(t, e) == 44 else e
        if q + 1 < n and _ch(t, q) == 32:
            a = q + 1
            w = a + 1 if _ch(t, a) == 35 else a
            if w == a:
                while _alpha(_ch(t, w)):
                    w += 1
            if w > a and _exact(&self.units, t, a, w, True):
                if _ch(t, w) == 46:
                    w += 1
                if _ch(t, w) == 32:
                    w += 1
                tt = w
                while tt < n and tt - w < 8 and (_word(_ch(t, tt)) or _ch(t, tt) == 45):
                    tt += 1
                if tt > w and _word(_ch(t, tt - 1)) and not _word(_ch(t, tt)):
                    e = tt
        if not (_ch(t, e) == 44 and _ch(t, e + 1) == 32):
            return e
        w = e + 2
        for words in range(3):
            if not (_upper(_ch(t, w)) and _lower_letter(_ch(t, w + 1))):
                break
            w += 1
            while _alpha(_ch(t, w)):
                w += 1
            city = w
            if _ch(t, w) == 32 and _upper(_ch(t, w + 1)) and _lower_letter(_ch(t, w + 2)):
                w += 1
                continue
            break
        if not city:
            return e
        q = city + 1 if _ch(t, city) == 44 else city
        if not (q + 3 < n and _ch(t, q) == 32 and _exact(&self.states, t, q + 1, q + 3, False)
                and _ch(t, q + 3) == 32):
            return e
        z = q + 4
        tt = z
        while _digit(_ch(t, tt)) and tt - z < 6:
            tt += 1
        if tt - z != 5:
            return e
        if tt + 4 < n and _ch(t, tt) == 45:
            digits4 = True
            for u in range(tt + 1, tt + 5):
                if not _digit(_ch(t, u)):
                    digits4 = False
                    break
            if digits4:
                tt += 5
        return e if _word(_ch(t, tt)) else tt

    # --- CJK: plates, names, addresses -----------------------------------------------------------------

    cdef Py_ssize_t _cjk(self, const Text *t, Py_ssize_t i, int f, Buf *buf) except -1:
        cdef Py_ssize_t e
        if f & F_PLATE:
            e = self._plate(t, i, buf)
            if e:
                return e
        if f & (F_SURNAME | F_COMPOUND):
            e = self._person_cn(t, i, f, buf)
            if e:
                return e
        if f & F_ADDR:
            return self._address_cn(t, i, buf)
        return 0

    cdef Py_ssize_t _plate(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        cdef Py_ssize_t k = i + 1, tt, q
        cdef int digits = 0, ln
        cdef bint ok = False, tail
        cdef cp_t c
        if not _plate_letter(_ch(t, k)):
            return 0
        k += 1
        if _plate_sep(_ch(t, k)):
            k += 1
        tt = k
        while tt - k < 7:
            c = _ch(t, tt)
            if not (_digit(c) or _plate_letter(c)):
                break
            if _digit(c):
                digits += 1
            tt += 1
        ln = <int>(tt - k)
        if ln == 5:
            ok = digits >= 3
        elif ln == 6:
            tail = True
            for q in range(k + 2, tt):
                if not _digit(_ch(t, q)):
                    tail = False
                    break
            c = _ch(t, k)
            ok = ((65 <= c <= 75 and c != 73 and tail)
                  or (digits == 5 and (_ch(t, tt - 1) == 68 or _ch(t, tt - 1) == 70)))
        elif ln == 4 and _plate_special(_ch(t, tt)):
            tt += 1
            ok = True
        if not ok or _word(_ch(t, tt)):
            return 0
        self._add(t, buf, i, tt, PLATE, V_PLATE, 850, 950, 300)
        return tt

    cdef bint _honor_at(self, const Text *t, Py_ssize_t k) noexcept:
        cdef int v
        cdef cp_t c = _ch(t, k)
        if c >= 0x10000 or not (self.flags[c] & F_HONOR):
            return False
        return _word_at(&self.honor, t, k, &v) > 0

    cdef bint _word_ahead(self, const Words *w, const Text *t, Py_ssize_t p) noexcept:
        """Whether a (folded) word of ``w`` starts at ``p`` and ends a word."""
        cdef int v, ln
        if p >= t.n:
            return False
        ln = _word_at(w, t, p, &v, True)
        return ln > 0 and not (_alpha(_lo(t, p + ln - 1)) and p + ln < t.n and _alpha(_lo(t, p + ln)))

    cdef bint _ends_with(self, const Words *w, const Text *t, Py_ssize_t q) noexcept:
        """Whether a word of ``w`` (stored reversed) ends right before ``q``."""
        cdef cp_t c
        cdef int k, j, ln
        cdef const cp_t *s
        if q <= 0:
            return False
        c = _ch(t, q - 1)
        for k in range(w.bucket[c & (BUCKETS - 1)], w.bucket[(c & (BUCKETS - 1)) + 1]):
            s = w.chars + w.off[k]
            ln = w.length[k]
            if s[0] != c or ln > q:
                continue
            for j in range(1, ln):
                if _ch(t, q - 1 - j) != s[j]:
                    break
            else:
                return True
        return False

    cdef Py_ssize_t _person_cn(self, const Text *t, Py_ssize_t i, int f, Buf *buf) except -1:
        cdef int slen = 0, v, strength, fc
        cdef Py_ssize_t g, k, b
        cdef cp_t c
        cdef bint after
        if f & F_COMPOUND:
            slen = _word_at(&self.compound, t, i, &v)
        if not slen and f & F_SURNAME:
            slen = 1
        if not slen:
            return 0
        g = i + slen
        k = g
        while k < t.n and k - g < 2:
            c = _ch(t, k)
            fc = self.flags[c] if c < 0x10000 else 0
            if not _cjk(c) or fc & F_NAME_STOP:
                break
            if fc & F_HONOR and _word_at(&self.honor, t, k, &v):
                break
            k += 1
        if k == g:
            return 0
        after = self._honor_at(t, k) or self._word_ahead(&self.name_after, t, k)
        b = i
        strength = self._trigger(t, b)
        while b > 0 and i - b < 3 and _name_gap(_ch(t, b - 1)):
            b -= 1
            strength = max(strength, self._trigger(t, b))
        if strength == 1 and not after and _cjk(_ch(t, k)):
            strength = 0
        if not strength and not after:
            return 0
        _push(buf, i, k, 850 if strength == 2 or after else 700, PERSON, V_SURNAME)
        return k

    cdef bint _same(self, const Text *t, Py_ssize_t a, Py_ssize_t b, int ln) noexcept:
        cdef int k
        for k in range(ln):
            if _ch(t, a + k) != _ch(t, b + k):
                return False
        return True

    cdef inline bint _place_char(self, cp_t c) noexcept:
        return _digit(c) or (_cjk(c) and not (c < 0x10000 and self.flags[c] & F_ADDR_STOP))

    cdef Py_ssize_t _address_cn(self, const Text *t, Py_ssize_t i, Buf *buf) except -1:
        cdef int ml, level, markers = 1, last, base, v
        cdef Py_ssize_t b = i, end, k, tt, q, pm, n = t.n
        cdef int pl
        cdef cp_t c
        ml = _word_at(&self.markers, t, i, &level)
        if not ml:
            return 0
        while b > 0 and i - b < 6:
            if not self._place_char(_ch(t, b - 1)):
                break
            b -= 1
        q = i
        while q > b:
            if self._ends_with(&self.lead, t, q):
                b = q
                break
            q -= 1
        if b == i or (b + 1 == i and not _digit(_ch(t, b))):
            return 0
        last = level
        end = i + ml
        pm = i
        pl = ml
        while end - b < 80:
            ml = _word_at(&self.markers, t, end, &level)
            if ml:
                if ml == pl and self._same(t, end, pm, ml):
                    break
                pm = end
                pl = ml
                markers += 1
                end += ml
                last = level
                continue
            k = end
            while True:
                if not (k < n and k - end < 10):
                    ml = 0
                    break
                c = _ch(t, k)
                if c < 0x10000 and self.flags[c] & F_ADDR:
                    ml = _word_at(&self.markers, t, k, &level)
                    if ml:
                        break
                if not (_digit(c) or _alpha(c) or c == 45 or self._place_char(c)):
                    ml = 0
                    break
                k += 1
            if not ml or k == end:
                break
            markers += 1
            pm = k
            pl = ml
            end = k + ml
            last = level
        if last == LEVEL_HOUSE:
            tt = end
            while _digit(_ch(t, tt)) and tt - end < 6:
                tt += 1
            if tt > end and not _word(_ch(t, tt)):
                end = tt
        if markers < 2 or last < LEVEL_STREET or (_word(_ch(t, end)) and _word(_ch(t, end - 1))):
            return 0
        if end + 1 < n and _ch(t, end) == 32:
            tt = end + 1
            while _digit(_ch(t, tt)) and tt - end <= 7:
                tt += 1
            if tt - end == 7 and not _word(_ch(t, tt)):
                end = tt
        base = 850 if last == LEVEL_HOUSE else (750 if markers >= 3 else 600)
        self._add(t, buf, b, end, ADDRESS, V_ADDRESS, base, min(base + 100, 950), base)
        return end
