"""Compiled Merkle kernels: the C twin of ``ledger/_merkle_py.py``.

Same functions, same results, same errors. SHA-256 is OpenSSL's, through the
EVP interface with the digest fetched once at import and one context reused
per call (the one-shot ``SHA256()``/``EVP_Digest()`` look the algorithm up on
every hash, which costs more than hashing 65 bytes). Each call gathers its
inputs as C pointers first, then hashes them all in one loop without the GIL
(handing the GIL back and forth per batch would make a busy process wait for
it again and again).
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc
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

cdef extern from *:
    int popcount "__builtin_popcountll" (unsigned long long x) nogil


cdef const EVP_MD *_SHA256 = EVP_MD_fetch(NULL, b"SHA256", NULL)
if _SHA256 is NULL:
    # An ImportError makes ledger._kernel fall back to the pure-Python twin.
    raise ImportError("OpenSSL offers no SHA-256 digest; the pure-Python Merkle kernels will be used")

cdef enum:
    HASH = 32
    MAX_DEPTH = 64  # a tree of fewer than 2**64 leaves has at most 64 perfect subtrees
    NOGIL_MIN = 16  # below this many hashes, keeping the GIL is cheaper than handing it off
cdef unsigned long long MAX_SIZE = 0xFFFFFFFFFFFFFFFF


cdef struct Span:
    const char *data
    size_t size


cdef struct Frontier:
    const unsigned char *root[MAX_DEPTH]  # subtree roots, largest first: in the caller's buffers or ours
    size_t size[MAX_DEPTH]
    Py_ssize_t depth  # how many roots there are
    Py_ssize_t kept  # the first `kept` roots were never popped: they are still the caller's objects


cdef inline bint _digest(EVP_MD_CTX *ctx, unsigned char prefix, const void *left, size_t left_size,
                         const void *right, size_t right_size, unsigned char *out) noexcept nogil:
    """``out = SHA-256(prefix || left || right)``; False if OpenSSL failed."""
    return (EVP_DigestInit_ex2(ctx, _SHA256, NULL) == 1
            and EVP_DigestUpdate(ctx, &prefix, 1) == 1
            and EVP_DigestUpdate(ctx, left, left_size) == 1
            and (right_size == 0 or EVP_DigestUpdate(ctx, right, right_size) == 1)
            and EVP_DigestFinal_ex(ctx, out, NULL) == 1)


cdef bint _hash_spans(EVP_MD_CTX *ctx, const Span *items, Py_ssize_t count,
                      unsigned char *dst) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(count):
        if not _digest(ctx, 0, items[i].data, items[i].size, NULL, 0, dst + HASH * i):
            return False
    return True


cdef bint _push_leaves(EVP_MD_CTX *ctx, Frontier *f, unsigned long long n, const unsigned char *src,
                       unsigned long long count, unsigned char *dst) noexcept nogil:
    """Add ``count`` leaf hashes from ``src`` to a tree of ``n`` leaves; write the new nodes to ``dst``."""
    cdef unsigned long long k, c
    cdef unsigned char *cur
    for k in range(count):
        memcpy(dst, src + HASH * k, HASH)
        cur = dst
        dst += HASH
        c = n + k
        while c & 1:  # each trailing 1 bit is a perfect subtree this leaf completes
            f.depth -= 1
            if not _digest(ctx, 1, f.root[f.depth], f.size[f.depth], cur, HASH, dst):
                return False
            cur = dst
            dst += HASH
            c >>= 1
        f.kept = min(f.kept, f.depth)
        f.root[f.depth] = cur
        f.size[f.depth] = HASH
        f.depth += 1
    return True


cdef int _view(object obj, Py_buffer *view, bytes prefix) except -1:
    """Borrow ``obj``'s bytes; anything the twin rejects fails with the twin's own error."""
    try:
        PyObject_GetBuffer(obj, view, PyBUF_SIMPLE)
    except (TypeError, BufferError):
        prefix + obj  # the twin's expression: raises its exact TypeError / BufferError
        raise
    return 0


cdef bytes _copy(object obj, bytes prefix):
    """An immutable copy of a bytes-like ``obj`` that we can read without the GIL."""
    cdef Py_buffer view
    _view(obj, &view, prefix)
    try:
        return PyBytes_FromStringAndSize(<const char *>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)


cdef EVP_MD_CTX *_new_ctx() except NULL:
    cdef EVP_MD_CTX *ctx = EVP_MD_CTX_new()
    if ctx is NULL:
        raise MemoryError("OpenSSL could not allocate a digest context")
    return ctx


def hash_leaves(items):
    """Concatenated RFC 6962 leaf hashes (32 bytes each) of ``items``, in order."""
    cdef list seq = list(items)  # our own snapshot: nobody else can change it while we hash
    cdef Py_ssize_t n = len(seq), i
    cdef bytes out = PyBytes_FromStringAndSize(NULL, HASH * n)
    cdef unsigned char *dst = <unsigned char *>PyBytes_AS_STRING(out)
    cdef bint ok
    cdef EVP_MD_CTX *ctx = NULL
    if n == 0:
        return out
    cdef Span *spans = <Span *>malloc(n * sizeof(Span))
    if spans is NULL:
        raise MemoryError()
    try:
        for i in range(n):
            item = seq[i]
            if type(item) is not bytes:  # bytearray, memoryview, ...: may change, so hash a copy
                item = seq[i] = _copy(item, b"\x00")
            spans[i].data = PyBytes_AS_STRING(item)
            spans[i].size = PyBytes_GET_SIZE(item)
        ctx = _new_ctx()
        if n >= NOGIL_MIN:
            with nogil:
                ok = _hash_spans(ctx, spans, n, dst)
        else:
            ok = _hash_spans(ctx, spans, n, dst)
        if not ok:
            raise RuntimeError("OpenSSL SHA-256 failed while hashing leaves")
        return out
    finally:
        EVP_MD_CTX_free(ctx)
        free(spans)


def extend_tree(frontier, size, leaf_hashes):
    """Append leaves to a post-order node sequence.

    ``frontier`` holds the roots of the perfect subtrees of the current tree of
    ``size`` leaves, largest (leftmost) first: one per set bit of ``size``.
    Returns the bytes to append to the post-order node file (each new leaf hash
    followed by the internal nodes it completes) and the new frontier.
    """
    if len(leaf_hashes) % HASH:
        raise ValueError("leaf_hashes must be a whole number of 32-byte hashes")
    if len(frontier) != bin(size).count("1"):
        raise ValueError(f"frontier of {len(frontier)} hashes does not fit a tree of size {size}")
    if size < 0:
        raise ValueError(f"tree size {size} is negative")
    cdef list old = list(frontier)
    cdef unsigned long long n = size, count
    cdef Py_ssize_t i, held = 0
    cdef Py_buffer leaves
    cdef Py_buffer views[MAX_DEPTH]
    cdef Frontier f
    cdef bytes out
    cdef unsigned char *base
    cdef bint ok
    cdef EVP_MD_CTX *ctx = NULL

    _view(leaf_hashes, &leaves, b"")
    try:
        count = leaves.len // HASH
        if n > MAX_SIZE - count:
            raise OverflowError(f"a tree of {size} + {count} leaves is beyond 2**64 - 1")
        f.depth = f.kept = len(old)
        while held < f.depth:
            _view(old[held], &views[held], b"\x01")
            f.root[held] = <const unsigned char *>views[held].buf
            f.size[held] = views[held].len
            held += 1
        # Leaf i is post-order node 2*i - popcount(i), so exactly this many nodes are new:
        out = PyBytes_FromStringAndSize(NULL, HASH * (2 * count + popcount(n) - popcount(n + count)))
        base = <unsigned char *>PyBytes_AS_STRING(out)
        ctx = _new_ctx()
        if count >= NOGIL_MIN:
            with nogil:
                ok = _push_leaves(ctx, &f, n, <const unsigned char *>leaves.buf, count, base)
        else:
            ok = _push_leaves(ctx, &f, n, <const unsigned char *>leaves.buf, count, base)
        if not ok:
            raise RuntimeError("OpenSSL SHA-256 failed while extending the tree")
        new_frontier = old[: f.kept]
        for i in range(f.kept, f.depth):
            new_frontier.append(out[f.root[i] - base : f.root[i] - base + HASH])
        return out, new_frontier
    finally:
        EVP_MD_CTX_free(ctx)
        while held:
            held -= 1
            PyBuffer_Release(&views[held])
        PyBuffer_Release(&leaves)
