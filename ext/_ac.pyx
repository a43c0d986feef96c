"""Compiled phrase-matching kernel: the C twin of ``policy/_ac_py.py``.

Same normalisation, same matches, same order; the twin's docstring explains the rules and the
structure here follows it function for function (hypothesis checks they agree on random Unicode and
random libraries). What differs is only the machinery:

- texts are read from the str's own buffer (PyUnicode_KIND / PyUnicode_DATA / PyUnicode_READ), no
  encoding, no copy;
- the per-character records the ``record`` callback returns are cached in a 64 Ki-entry table for the
  BMP (one load per character: a code point and its class packed in 32 bits, or an index into the
  expansions), astral characters in a dict; the callback runs once per distinct character;
- both normalisation passes work on one C buffer, the second compacting in place (it never writes
  ahead of what it reads), and the result becomes a str with one PyUnicode_FromKindAndData;
- the automaton's root is a dense BMP table; one bitmap sends characters that occur in no phrase
  straight back to the root, another sends characters that only start phrases straight to the
  root's edge (no failure walk); failure links are anchored (``policy.matcher._tables``), so inside
  an English word the scan idles at the root;
- a state is 16 bytes (its first edge inline: most states have one; its failure link; a flag for
  "reports"), so a 10,000-phrase library's states stay in L2, numbered depth first so a phrase's
  states share cache lines; states with a handful of edges search them in a row, states with many
  get a small open-addressing hash table (a quarter full);
- the scan is specialised per str kind (1, 2 or 4 bytes a character), collects hits as C structs,
  and ``find`` maps them through the origin array and sorts them in C before any tuple is built.
"""

from cpython.array cimport array, clone, resize
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DATA, PyUnicode_GET_LENGTH, PyUnicode_KIND
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t
from libc.stdlib cimport qsort
from libc.string cimport memcpy, memset

ctypedef unsigned int cp_t  # a code point; Py_UCS4 would make Cython treat arithmetic as str operations

cdef extern from "Python.h":
    cp_t _READ "PyUnicode_READ" (int kind, const void *data, Py_ssize_t index) nogil
    object PyUnicode_FromKindAndData(int kind, const void *buffer, Py_ssize_t size)

SEP = 1
CJK = 2
WORD = 4
LETTER = 8
CLAUSE = 16
LEFT = 1
RIGHT = 2
CHAIN_MIN = 3
CHAIN_GAP = 3

cdef enum:
    C_SEP = 1
    C_CJK = 2
    C_WORD = 4
    C_LETTER = 8
    C_CLAUSE = 16
    F_LEFT = 1
    F_RIGHT = 2
    K_CHAIN_MIN = 3
    K_CHAIN_GAP = 3
    BMP = 65536
    KEEP_SCRATCH = 1 << 22  # code points of scratch buffer a Normalizer keeps between calls

# A cached record: 0 unknown; DROPPED; bit 31 set: an expansion's index; else bit 30 set and
# (class << 21) | code point, which is also how one item of a record is packed.
cdef extern from *:
    """
    #define AC_UNKNOWN 0u
    #define AC_DROPPED 0xFFFFFFFFu
    #define AC_EXPANSION 0x80000000u
    #define AC_SINGLE 0x40000000u
    #define AC_ITEM 0x3FFFFFFu
    #define AC_CP 0x1FFFFFu
    #define AC_NO_CHAR 0xFFFFFFFFu
    #define AC_NO_EDGE 0x1FFFFFu
    #define AC_CHAR_BITS 0x1FFFFFu
    #define AC_REPORTS 0x200000u
    """
    # Compile-time constants (cdef enum is a signed int, too small for the high bits).
    const uint32_t UNKNOWN "AC_UNKNOWN"
    const uint32_t DROPPED "AC_DROPPED"
    const uint32_t EXPANSION "AC_EXPANSION"
    const uint32_t SINGLE "AC_SINGLE"
    const uint32_t ITEM "AC_ITEM"
    const uint32_t CP "AC_CP"
    const uint32_t NO_CHAR "AC_NO_CHAR"
    const uint32_t NO_EDGE "AC_NO_EDGE"
    const uint32_t CHAR_BITS "AC_CHAR_BITS"
    const uint32_t REPORTS "AC_REPORTS"

cdef array _INT_TEMPLATE = array("i")


cdef inline cp_t _cls(uint32_t item) noexcept nogil:
    return (item >> 21) & 31


cdef inline bint _word(cp_t c) noexcept nogil:
    return 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122


cdef struct Scratch:
    uint32_t *items
    Py_ssize_t cap


cdef class Normalizer:
    """Normalises texts with per-character records from ``record(code point)``, cached here."""

    cdef object _record
    cdef uint32_t *_bmp
    cdef dict _astral
    cdef uint32_t *_exp_items
    cdef Py_ssize_t _exp_n, _exp_cap
    cdef int32_t *_exp_off
    cdef int32_t *_exp_len
    cdef Py_ssize_t _exps, _exps_cap
    cdef Scratch _scratch
    cdef bint _busy

    def __cinit__(self, record):
        self._record = record
        self._bmp = <uint32_t *>PyMem_Malloc(BMP * sizeof(uint32_t))
        if self._bmp == NULL:
            raise MemoryError()
        memset(self._bmp, 0, BMP * sizeof(uint32_t))
        self._astral = {}
        self._exp_items = NULL
        self._exp_n = self._exp_cap = 0
        self._exp_off = NULL
        self._exp_len = NULL
        self._exps = self._exps_cap = 0
        self._scratch.items = NULL
        self._scratch.cap = 0
        self._busy = False

    def __dealloc__(self):
        PyMem_Free(self._bmp)
        PyMem_Free(self._exp_items)
        PyMem_Free(self._exp_off)
        PyMem_Free(self._exp_len)
        PyMem_Free(self._scratch.items)

    cdef uint32_t _encode(self, cp_t c) except? 0:
        """Ask the callback what ``c`` becomes and pack the answer (an expansion is stored here)."""
        cdef list items = [(int(a), int(k)) for a, k in self._record(c)]
        cdef Py_ssize_t m = len(items), t
        if m == 0:
            return DROPPED
        for a, k in items:
            if not (0 <= a <= 0x10FFFF and 0 <= k <= 31):
                raise ValueError(f"record({c}) returned ({a}, {k}): not a code point and a class")
        if m == 1:
            return SINGLE | (<uint32_t>items[0][1] << 21) | <uint32_t>items[0][0]
        if self._exp_n + m > self._exp_cap:
            self._exp_cap = 2 * (self._exp_n + m) + 64
            self._exp_items = <uint32_t *>_grow(self._exp_items, self._exp_cap * sizeof(uint32_t))
        if self._exps == self._exps_cap:
            self._exps_cap = 2 * self._exps_cap + 64
            self._exp_off = <int32_t *>_grow(self._exp_off, self._exps_cap * sizeof(int32_t))
            self._exp_len = <int32_t *>_grow(self._exp_len, self._exps_cap * sizeof(int32_t))
        self._exp_off[self._exps] = <int32_t>self._exp_n
        self._exp_len[self._exps] = <int32_t>m
        for t in range(m):
            self._exp_items[self._exp_n + t] = (<uint32_t>items[t][1] << 21) | <uint32_t>items[t][0]
        self._exp_n += m
        self._exps += 1
        return EXPANSION | <uint32_t>(self._exps - 1)

    cdef uint32_t _lookup(self, cp_t c) except? 0:
        cdef uint32_t v
        if c < BMP:
            v = self._bmp[c]
            if v == UNKNOWN:
                v = self._encode(c)
                self._bmp[c] = v
            return v
        got = self._astral.get(c)
        if got is None:
            v = self._encode(c)
            self._astral[c] = v
            return v
        return <uint32_t>got

    def normalize(self, str text):
        """The normalised text and, per normalised character, its index in ``text``."""
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text), i, m = 0, cap = n + 16, t, e
        cdef int kind = PyUnicode_KIND(text)
        cdef const void *data = PyUnicode_DATA(text)
        cdef uint32_t v
        cdef cp_t c
        cdef Scratch own
        # The record callback is Python code, so another thread may normalise meanwhile: only one
        # call at a time borrows the kept buffer, the others bring their own.
        cdef Scratch *buf = &own if self._busy else &self._scratch
        cdef bint borrowed = not self._busy
        cdef uint32_t *items
        cdef array origin = clone(_INT_TEMPLATE, cap, False)
        cdef int32_t *org = <int32_t *>origin.data.as_voidptr
        own.items = NULL
        own.cap = 0
        self._busy = True
        try:
            items = _reserve(buf, cap)
            for i in range(n):
                c = _READ(kind, data, i)
                v = self._bmp[c] if c < BMP else UNKNOWN
                if v == UNKNOWN:
                    v = self._lookup(c)
                if v == DROPPED:
                    continue
                if not (v & EXPANSION):
                    if m == cap:
                        cap = 2 * cap
                        items = _reserve(buf, cap)
                        resize(origin, cap)
                        org = <int32_t *>origin.data.as_voidptr
                    items[m] = v & ITEM
                    org[m] = <int32_t>i
                    m += 1
                    continue
                e = v & ~EXPANSION
                if m + self._exp_len[e] > cap:
                    cap = 2 * cap + self._exp_len[e]
                    items = _reserve(buf, cap)
                    resize(origin, cap)
                    org = <int32_t *>origin.data.as_voidptr
                for t in range(self._exp_len[e]):
                    items[m] = self._exp_items[self._exp_off[e] + t]
                    org[m] = <int32_t>i
                    m += 1
            m = _gaps(items, org, m)
            resize(origin, m)
            return PyUnicode_FromKindAndData(4, items, m), origin
        finally:
            PyMem_Free(own.items)
            if borrowed:
                self._busy = False
                if self._scratch.cap > KEEP_SCRATCH:  # a huge text: do not hold its buffer for ever
                    PyMem_Free(self._scratch.items)
                    self._scratch.items = NULL
                    self._scratch.cap = 0


cdef uint32_t *_reserve(Scratch *buf, Py_ssize_t cap) except NULL:
    """``buf`` at least ``cap`` long. The kept buffer's pages stay mapped between calls: a fresh
    10 MB buffer per call costs more in page faults than the pass itself."""
    if cap > buf.cap:
        buf.items = <uint32_t *>_grow(buf.items, cap * sizeof(uint32_t))
        buf.cap = cap
    return buf.items


cdef void *_grow(void *p, size_t size) except NULL:
    cdef void *q = PyMem_Realloc(p, size)
    if q == NULL:
        raise MemoryError()
    return q


cdef inline bint _is_space(uint32_t c) noexcept nogil:
    """str.isspace() for one code point (the twin calls it), without the GIL."""
    return (
        9 <= c <= 13 or 0x1C <= c <= 0x20 or c == 0x85 or c == 0xA0 or c == 0x1680
        or 0x2000 <= c <= 0x200A or c == 0x2028 or c == 0x2029 or c == 0x202F or c == 0x205F
        or c == 0x3000
    )


cdef Py_ssize_t _gaps(uint32_t *items, int32_t *org, Py_ssize_t n) noexcept nogil:
    """Pass 2, in place: separator runs become one space or vanish; returns the new length."""
    cdef Py_ssize_t i = 0, j, k, p, q, r, o = 0, end, chain_end = -1, last_len = 0
    cdef int count, kind, chain_kind
    cdef Py_ssize_t x
    cdef bint space
    cdef cp_t last_cls = 0, gap
    while i < n:
        if _cls(items[i]) & C_SEP:
            j = i
            gap = 0
            while j < n and _cls(items[j]) & C_SEP:
                gap |= _cls(items[j])
                j += 1
            if o and j < n and i > chain_end:
                space = True
                if last_cls & C_CJK or _cls(items[j]) & C_CJK:
                    space = False
                    if gap & C_CLAUSE:
                        r = j
                        while r < n and not (_cls(items[r]) & C_SEP):
                            r += 1
                        space = last_len != 1 or r - j != 1
                if space:
                    org[o] = org[i]
                    items[o] = 32
                    o += 1
                    last_cls = C_SEP
            i = j
            continue
        k = i
        while k < n and not (_cls(items[k]) & C_SEP):
            k += 1
        if k - i == 1 and _cls(items[i]) & C_LETTER and i > chain_end:
            count = 1
            end = i
            p = k
            chain_kind = 0
            while p < n:
                q = p
                while q < n and _cls(items[q]) & C_SEP:
                    q += 1
                if q - p > K_CHAIN_GAP or q == n:
                    break
                # All gaps of a chain are spaces, or all hold punctuation (as the twin documents).
                kind = 1
                x = p
                while x < q:
                    if not _is_space(items[x] & CP):
                        kind = 2
                        break
                    x += 1
                if chain_kind and kind != chain_kind:
                    break
                chain_kind = kind
                r = q
                while r < n and not (_cls(items[r]) & C_SEP):
                    r += 1
                if r - q != 1 or not (_cls(items[q]) & C_LETTER):
                    break
                count += 1
                end = q
                p = r
            if count >= K_CHAIN_MIN:
                chain_end = end
        last_cls = _cls(items[k - 1])
        last_len = k - i
        while i < k:
            org[o] = org[i]
            items[o] = items[i] & CP
            o += 1
            i += 1
    return o


cdef int32_t *_ints(object seq, Py_ssize_t bound) except NULL:
    """A C copy of an int sequence whose values must lie in [0, bound) (bound < 0: any int32)."""
    cdef Py_ssize_t n = len(seq), t
    cdef int32_t *out = <int32_t *>PyMem_Malloc((n + 1) * sizeof(int32_t))
    if out == NULL:
        raise MemoryError()
    for t in range(n):
        out[t] = seq[t]
        if bound >= 0 and not 0 <= out[t] < bound:
            PyMem_Free(out)
            raise ValueError(f"automaton tables: {out[t]} is out of range [0, {bound})")
    return out


cdef struct State:
    # 16 bytes, so the 70,000 states of a 10,000-phrase library stay in L2. ``w`` packs the first
    # edge's character (bits 0-20; NO_EDGE for none), REPORTS (some phrase ends here or along the
    # failure chain), the edge mode (bits 22-23) and its parameter (bits 24-31): ONE_EDGE: only the
    # inline edge; FEW: edges[aux + 1 : aux + param] too, searched in a row; HASHED: the open-addressing
    # table hash[aux : aux + 2**param], a quarter full.
    uint32_t w
    int32_t n0  # the first edge's target
    int32_t fail
    int32_t aux


cdef struct Edge:
    cp_t c
    int32_t next


cdef struct Tables:
    const State *st
    const Edge *ed
    const Edge *hash
    const int32_t *report  # first state along the failure chain (itself included) that ends a phrase
    const int32_t *root  # BMP code point -> state after the root (0: none)
    const uint8_t *alpha  # bit per BMP code point: it labels some edge
    const uint8_t *deep  # bit per BMP code point: it labels some edge below the root
    const int32_t *out_start
    const int32_t *out_phrase
    const int32_t *dict_link
    const int32_t *length
    const int32_t *flags


ctypedef fused char_t:
    uint8_t
    uint16_t
    uint32_t


cdef enum:
    HASHED = 5  # states with at least this many edges get a hash table
    ONE_EDGE = 0
    FEW = 1
    HASH = 2



cdef inline bint _bit(const uint8_t *bits, cp_t c) noexcept nogil:
    return bits[c >> 3] & (1 << (c & 7))


cdef inline uint32_t _hash(cp_t c) noexcept nogil:
    return (c * <uint32_t>0x9E3779B1) >> 15


cdef inline int32_t _edge(const Tables *t, int32_t s, cp_t c) noexcept nogil:
    """The goto edge of state ``s`` on ``c``, or -1."""
    cdef const State *st = &t.st[s]
    cdef uint32_t w = st.w, h, mask, mode = (w >> 22) & 3
    cdef int32_t lo, hi
    cdef const Edge *slot
    if (w & CHAR_BITS) == c:
        return st.n0
    if mode == ONE_EDGE:
        return -1
    if mode == HASH:
        mask = (<uint32_t>1 << (w >> 24)) - 1
        h = _hash(c) & mask
        while True:
            slot = &t.hash[st.aux + h]
            if slot.c == c:
                return slot.next
            if slot.c == NO_CHAR:
                return -1
            h = (h + 1) & mask
    lo = st.aux + 1
    hi = st.aux + <int32_t>(w >> 24)
    while lo < hi:
        if t.ed[lo].c == c:
            return t.ed[lo].next
        lo += 1
    return -1


cdef inline int32_t _step(const Tables *t, int32_t s, cp_t c, bint blocked) noexcept nogil:
    """The automaton's move from ``s`` on ``c``: goto, else follow failure links to the root, which
    only moves when not ``blocked`` (an ASCII letter or digit right after another)."""
    cdef int32_t nxt
    if c < BMP:
        if not _bit(t.alpha, c):
            return 0
        if not _bit(t.deep, c):  # only the root has an edge on c: every failure chain ends there
            return 0 if blocked else t.root[c]
    while s:
        nxt = _edge(t, s, c)
        if nxt >= 0:
            return nxt
        s = t.st[s].fail
    if blocked:
        return 0
    if c < BMP:
        return t.root[c]
    nxt = _edge(t, 0, c)
    return nxt if nxt > 0 else 0


cdef struct Hit:
    Py_ssize_t start
    Py_ssize_t end
    int32_t phrase


cdef struct Hits:
    Hit *items
    Py_ssize_t n
    Py_ssize_t cap


cdef int _run(const Tables *t, const char_t *data, Py_ssize_t n, Hits *hits) except -1:
    cdef Py_ssize_t j, start, k
    cdef int32_t state = 0, s, p, f
    cdef bint word, prev_word = False
    for j in range(n):
        word = _word(data[j])
        state = _step(t, state, data[j], word and prev_word)
        prev_word = word
        if not (t.st[state].w & REPORTS):
            continue
        s = t.report[state]
        while s:
            for k in range(t.out_start[s], t.out_start[s + 1]):
                p = t.out_phrase[k]
                start = j + 1 - t.length[p]
                f = t.flags[p]
                if f & F_LEFT and start > 0 and _word(data[start - 1]):
                    continue
                if f & F_RIGHT and j + 1 < n and _word(data[j + 1]):
                    continue
                if hits.n == hits.cap:
                    hits.cap = 2 * hits.cap + 64
                    hits.items = <Hit *>_grow(hits.items, hits.cap * sizeof(Hit))
                hits.items[hits.n].start = start
                hits.items[hits.n].end = j + 1
                hits.items[hits.n].phrase = p
                hits.n += 1
            s = t.dict_link[s]
    return 0


cdef list _tuples(const Hits *hits):
    cdef list out = []
    cdef Py_ssize_t k
    for k in range(hits.n):
        out.append((hits.items[k].phrase, hits.items[k].start, hits.items[k].end))
    return out


cdef int _by_span(const void *a, const void *b) noexcept nogil:
    cdef const Hit *x = <const Hit *>a
    cdef const Hit *y = <const Hit *>b
    if x.start != y.start:
        return -1 if x.start < y.start else 1
    if x.end != y.end:
        return -1 if x.end < y.end else 1
    return (x.phrase > y.phrase) - (x.phrase < y.phrase)


cdef class Automaton:
    """An Aho-Corasick automaton over code points, read from the flat tables ``policy.matcher`` builds."""

    cdef Tables _t
    cdef State *_st
    cdef Edge *_ed
    cdef Edge *_hash
    cdef int32_t *_report
    cdef int32_t *_root
    cdef uint8_t *_alpha
    cdef uint8_t *_deep
    cdef int32_t *_out_start
    cdef int32_t *_out_phrase
    cdef int32_t *_dict
    cdef int32_t *_len
    cdef int32_t *_flags
    cdef Py_ssize_t _states

    def __init__(self, *, edge_start, edge_char, edge_next, fail, out_start, out_phrase, dict_link,
                 phrase_len, phrase_flags):
        cdef Py_ssize_t s, e, states = len(fail), edges = len(edge_char), slots = 0, lo, hi
        cdef int bits
        cdef cp_t c
        cdef uint32_t h, mask
        if len(edge_start) != states + 1 or len(out_start) != states + 1 or len(dict_link) != states:
            raise ValueError("automaton tables disagree on the number of states")
        if len(edge_next) != edges or len(phrase_len) != len(phrase_flags):
            raise ValueError("automaton tables disagree on the number of edges or phrases")
        self._states = states
        self._out_start = _ints(out_start, len(out_phrase) + 1)
        self._out_phrase = _ints(out_phrase, len(phrase_len))
        self._dict = _ints(dict_link, states)
        self._len = _ints(phrase_len, -1)
        self._flags = _ints(phrase_flags, -1)
        self._report = <int32_t *>PyMem_Malloc((states + 1) * sizeof(int32_t))
        self._st = <State *>PyMem_Malloc((states + 1) * sizeof(State))
        self._ed = <Edge *>PyMem_Malloc((edges + 1) * sizeof(Edge))
        self._root = <int32_t *>PyMem_Malloc(BMP * sizeof(int32_t))
        self._alpha = <uint8_t *>PyMem_Malloc(BMP // 8)
        self._deep = <uint8_t *>PyMem_Malloc(BMP // 8)
        if (self._st == NULL or self._ed == NULL or self._root == NULL or self._alpha == NULL
                or self._deep == NULL or self._report == NULL):
            raise MemoryError()
        memset(self._root, 0, BMP * sizeof(int32_t))
        memset(self._alpha, 0, BMP // 8)
        memset(self._deep, 0, BMP // 8)
        for e in range(edges):
            self._ed[e].c = edge_char[e]
            self._ed[e].next = edge_next[e]
            if self._ed[e].c > 0x10FFFF or not 0 < self._ed[e].next < states:
                raise ValueError(f"automaton tables: edge {e} is out of range")
        for s in range(states):
            lo = edge_start[s]
            hi = edge_start[s + 1]
            if not (0 <= lo <= hi <= edges) or not 0 <= fail[s] < states:
                raise ValueError(f"automaton tables: state {s} is out of range")
            if self._out_start[s] > self._out_start[s + 1]:
                raise ValueError(f"automaton tables: outputs of state {s} are out of order")
            self._report[s] = s if self._out_start[s] < self._out_start[s + 1] else self._dict[s]
            self._st[s].w = (self._ed[lo].c if hi > lo else NO_EDGE) | (REPORTS if self._report[s] else 0)
            self._st[s].n0 = self._ed[lo].next if hi > lo else -1
            self._st[s].fail = fail[s]
            self._st[s].aux = <int32_t>lo
            if hi - lo >= HASHED:
                bits = 2
                while (1 << bits) < 4 * (hi - lo):
                    bits += 1
                self._st[s].w |= (<uint32_t>HASH << 22) | (<uint32_t>bits << 24)
                self._st[s].aux = <int32_t>slots
                slots += 1 << bits
            elif hi - lo >= 2:
                self._st[s].w |= (<uint32_t>FEW << 22) | (<uint32_t>(hi - lo) << 24)
        self._hash = <Edge *>PyMem_Malloc((slots + 1) * sizeof(Edge))
        if self._hash == NULL:
            raise MemoryError()
        for e in range(slots + 1):
            self._hash[e].c = NO_CHAR
            self._hash[e].next = -1
        for s in range(states):
            lo = edge_start[s]
            hi = edge_start[s + 1]
            for e in range(lo, hi):
                c = self._ed[e].c
                if (self._st[s].w >> 22) & 3 == HASH:
                    mask = (<uint32_t>1 << (self._st[s].w >> 24)) - 1
                    h = _hash(c) & mask
                    while self._hash[self._st[s].aux + h].c != NO_CHAR:
                        h = (h + 1) & mask
                    self._hash[self._st[s].aux + h] = self._ed[e]
                if c < BMP:
                    self._alpha[c >> 3] |= 1 << (c & 7)
                    if s:
                        self._deep[c >> 3] |= 1 << (c & 7)
                    else:
                        self._root[c] = self._ed[e].next
        self._t.st = self._st
        self._t.ed = self._ed
        self._t.hash = self._hash
        self._t.report = self._report
        self._t.root = self._root
        self._t.alpha = self._alpha
        self._t.deep = self._deep
        self._t.out_start = self._out_start
        self._t.out_phrase = self._out_phrase
        self._t.dict_link = self._dict
        self._t.length = self._len
        self._t.flags = self._flags

    def __dealloc__(self):
        PyMem_Free(self._st)
        PyMem_Free(self._ed)
        PyMem_Free(self._hash)
        PyMem_Free(self._report)
        PyMem_Free(self._root)
        PyMem_Free(self._alpha)
        PyMem_Free(self._deep)
        PyMem_Free(self._out_start)
        PyMem_Free(self._out_phrase)
        PyMem_Free(self._dict)
        PyMem_Free(self._len)
        PyMem_Free(self._flags)

    cdef int _collect(self, str text, Hits *hits) except -1:
        cdef Py_ssize_t n = PyUnicode_GET_LENGTH(text)
        cdef int kind = PyUnicode_KIND(text)
        cdef const void *data = PyUnicode_DATA(text)
        if self._states == 0 or n == 0:
            return 0
        if kind == 1:
            _run(&self._t, <const uint8_t *>data, n, hits)
        elif kind == 2:
            _run(&self._t, <const uint16_t *>data, n, hits)
        else:
            _run(&self._t, <const uint32_t *>data, n, hits)
        return 0

    def scan(self, str text):
        """Every occurrence ``(phrase, start, end)`` in ``text`` (already normalised) that respects the
        phrase's word boundaries, by end position."""
        cdef Hits hits
        hits.items = NULL
        hits.n = hits.cap = 0
        try:
            self._collect(text, &hits)
            return _tuples(&hits)
        finally:
            PyMem_Free(hits.items)

    def find(self, str text, origin):
        """``scan``, mapped through ``origin`` to original ``(phrase, start, end)``, sorted by
        (start, end, phrase)."""
        cdef Hits hits
        cdef Py_ssize_t k, n = PyUnicode_GET_LENGTH(text)
        cdef const int32_t[::1] org
        if not (isinstance(origin, array) and (<array>origin).ob_descr.typecode == b"i"):
            origin = array("i", origin)
        if len(origin) != n:
            raise ValueError(f"origin has {len(origin)} entries for a text of {n} characters")
        if n == 0:
            return []
        org = origin
        hits.items = NULL
        hits.n = hits.cap = 0
        try:
            self._collect(text, &hits)
            for k in range(hits.n):
                hits.items[k].start = org[hits.items[k].start]
                hits.items[k].end = org[hits.items[k].end - 1] + 1
            qsort(hits.items, hits.n, sizeof(Hit), _by_span)
            return _tuples(&hits)
        finally:
            PyMem_Free(hits.items)
