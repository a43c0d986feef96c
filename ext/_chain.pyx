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


cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_MD:
        pass
    ctypedef struct EVP_MD_CTX:
        pass
    EVP_MD *EVP_MD_fetch(void *libctx, const char *algorithm, const char *properties)
    EVP_MD_CTX *EVP_MD_CTX_new()
    void EVP_MD_CTX_free(EVP_MD_CTX *ctx)
    int EVP_DigestInit_ex2(EVP_MD_CTX *ctx, const EVP_MD *md, const void *params)
    int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *data, size_t count)
    int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *size)

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
