"""Compiled twin of ``ledger/_chain_py.py``: encode a batch of entries into frames.

For each record: canonical JSON (through the ``dumps`` the caller passes, so
the bytes are the ones the ledger defines), SHA-256 leaf hash with the
previous entry's hash chained in as ``prev``, CRC-32, and the segment frame.
Everything lands in C buffers that become three bytes objects at the end:
keeping each encoded entry alive as its own object costs more than encoding it.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy


from ext._openssl cimport (
    EVP_MD,
    EVP_MD_CTX,
    EVP_MD_CTX_free,
    EVP_MD_CTX_new,
    EVP_MD_fetch,
    EVP_DigestFinal_ex,
    EVP_DigestInit_ex2,
    EVP_DigestUpdate,
)

cdef extern from "zlib.h" nogil:
    unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int len)


cdef const EVP_MD *_SHA256 = EVP_MD_fetch(NULL, b"SHA256", NULL)
if _SHA256 is NULL:
    raise ImportError("OpenSSL offers no SHA-256 digest; the pure-Python chain encoder will be used")

cdef const char *_HEX = b"0123456789abcdef"
cdef unsigned char _LEAF_PREFIX = 0


cdef inline void _put_u32(unsigned char *p, unsigned long v) noexcept nogil:
    p[0] = (v >> 24) & 0xFF
    p[1] = (v >> 16) & 0xFF
    p[2] = (v >> 8) & 0xFF
    p[3] = v & 0xFF


cdef inline void _put_u64(unsigned char *p, unsigned long long v) noexcept nogil:
    cdef int k
    for k in range(8):
        p[k] = (v >> (56 - 8 * k)) & 0xFF


def encode_chain(list fields, str prev, Py_ssize_t first_seq, str stamp, Py_ssize_t offset,
                 Py_ssize_t max_bytes, object dumps):
    cdef Py_ssize_t n = len(fields)
    cdef Py_ssize_t i, size, cap = 0, used = 0
    cdef unsigned char *buf = NULL
    cdef unsigned char *grown
    cdef unsigned char *leaf
    cdef const char *p
    cdef unsigned int dlen
    cdef char hexbuf[64]
    cdef int k
    leaves = PyBytes_FromStringAndSize(NULL, 32 * n)
    offsets = PyBytes_FromStringAndSize(NULL, 8 * n)
    cdef unsigned char *leaves_p = <unsigned char *> PyBytes_AS_STRING(leaves)
    cdef unsigned char *offsets_p = <unsigned char *> PyBytes_AS_STRING(offsets)
    cdef EVP_MD_CTX *ctx = EVP_MD_CTX_new()
    if ctx is NULL:
        raise MemoryError()
    try:
        for i in range(n):
            actor, action, subject, details, request_id = fields[i]
            raw = dumps({"action": action, "actor": actor, "details": details, "prev": prev,
                         "request_id": request_id, "seq": first_seq + i, "subject": subject, "time": stamp})
            size = PyBytes_GET_SIZE(raw)
            if size > max_bytes:
                raise ValueError(i, size)
            p = PyBytes_AS_STRING(raw)
            leaf = leaves_p + 32 * i
            if (EVP_DigestInit_ex2(ctx, _SHA256, NULL) != 1
                    or EVP_DigestUpdate(ctx, &_LEAF_PREFIX, 1) != 1
                    or EVP_DigestUpdate(ctx, p, size) != 1
                    or EVP_DigestFinal_ex(ctx, leaf, &dlen) != 1):
                raise RuntimeError("OpenSSL SHA-256 failed")
            if used + 8 + size > cap:
                cap = max(2 * cap, used + 8 + size, 1 << 16)
                grown = <unsigned char *> realloc(buf, cap)
                if grown is NULL:
                    raise MemoryError()
                buf = grown
            _put_u32(buf + used, size)
            _put_u32(buf + used + 4, crc32(0, <const unsigned char *> p, size))
            memcpy(buf + used + 8, p, size)
            used += 8 + size
            _put_u64(offsets_p + 8 * i, offset)
            offset += 8 + size
            for k in range(32):
                hexbuf[2 * k] = _HEX[leaf[k] >> 4]
                hexbuf[2 * k + 1] = _HEX[leaf[k] & 15]
            prev = hexbuf[:64].decode("ascii")
        frames = PyBytes_FromStringAndSize(<char *> buf, used) if used else b""
    finally:
        EVP_MD_CTX_free(ctx)
        free(buf)
    return frames, offsets, leaves, prev, offset


cdef extern from "Python.h":
    int PyUnicode_IS_ASCII(object o)
    int PyUnicode_KIND(object o)
    void *PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)
    Py_UCS4 PyUnicode_READ(int kind, void *data, Py_ssize_t index)
    long long PyLong_AsLongLongAndOverflow(object o, int *overflow) except? -1

cdef enum:
    MAX_DEPTH = 16
cdef long long MAX_SAFE_INT = 9007199254740991  # 2**53 - 1


cdef bint _str_ok(object s):
    cdef int kind
    cdef void *data
    cdef Py_ssize_t i, n
    cdef Py_UCS4 ch
    if PyUnicode_IS_ASCII(s):
        return True
    kind = PyUnicode_KIND(s)
    if kind == 1:  # Latin-1 holds no surrogates
        return True
    data = PyUnicode_DATA(s)
    n = PyUnicode_GET_LENGTH(s)
    for i in range(n):
        ch = PyUnicode_READ(kind, data, i)
        if 0xD800 <= ch <= 0xDFFF:
            return False
    return True


cdef bint _key_ok(object k):
    cdef Py_ssize_t i, n
    cdef Py_UCS4 ch
    if type(k) is not str or not PyUnicode_IS_ASCII(k):
        return False
    n = PyUnicode_GET_LENGTH(k)
    if n < 1 or n > 128:
        return False
    for i in range(n):
        ch = PyUnicode_READ(1, PyUnicode_DATA(k), i)
        if ch < 0x20 or ch > 0x7E:
            return False
    return True


cpdef bint plain_json(object value, int depth=1):
    """True only when ``value`` certainly passes ``ledger.entry``'s checks of entry values.

    A fast accept, never the authority: anything it does not accept goes to the
    Python validator, which raises the precise error (or accepts after all).
    """
    cdef int overflow = 0
    cdef long long x
    t = type(value)
    if t is str:
        return _str_ok(value)
    if t is int:
        x = PyLong_AsLongLongAndOverflow(value, &overflow)
        return overflow == 0 and -MAX_SAFE_INT <= x <= MAX_SAFE_INT
    if value is None or t is bool:
        return True
    if t is dict:
        if depth > MAX_DEPTH:
            return False
        for k, v in (<dict> value).items():
            if not _key_ok(k) or not plain_json(v, depth + 1):
                return False
        return True
    if t is list or t is tuple:
        if depth > MAX_DEPTH:
            return False
        for v in value:
            if not plain_json(v, depth + 1):
                return False
        return True
    return False
