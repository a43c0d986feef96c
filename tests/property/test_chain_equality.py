"""The compiled chain encoder and its Python twin produce the same bytes."""

from __future__ import annotations

import hashlib
import json
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import _chain_py
from ledger.entry import canonical_json, canonical_json_stdlib

try:
    from ext import _chain as _chain_c
except ImportError:  # pragma: no cover - no compiler at install time
    _chain_c = None

IMPLS = [_chain_py, _chain_c]


@pytest.fixture(params=IMPLS, ids=["py", "c"])
def kernel(request):
    if request.param is None:
        pytest.skip("ext._chain is not built (run `make build`)")
    return request.param


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=40))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=8),
            inner,
            max_size=4,
        ),
    ),
    max_leaves=12,
)
records = st.lists(
    st.tuples(
        st.sampled_from(["agent:k1", 'admin:"quoted"\\']),
        st.sampled_from(["record.read", "reply.checked"]),
        st.lists(st.sampled_from(["cust:0123456789abcdef", "case:fedcba9876543210"]), max_size=3),
        st.dictionaries(
            st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=8),
            values,
            max_size=5,
        ),
        st.one_of(st.none(), st.just("req_1")),
    ),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(fields=records, first=st.integers(0, 2**40), offset=st.integers(16, 2**40))
def test_compiled_and_python_encoders_agree(fields, first, offset):
    args = (fields, "0" * 64, first, "2026-11-24T00:00:00.000000Z", offset, 65536, canonical_json)
    expected = _chain_py.encode_chain(*args)
    if _chain_c is not None:
        assert _chain_c.encode_chain(*args) == expected
    # And the stdlib encoder gives the very same bytes (the auditor's re-derivation).
    assert _chain_py.encode_chain(*args[:-1], canonical_json_stdlib) == expected


def test_frames_chain_and_offsets_are_what_the_segment_format_says(kernel):
    fields = [("agent:k1", "record.read", [], {"i": i}, None) for i in range(5)]
    frames, offsets, leaves, prev, end = kernel.encode_chain(
        fields, "0" * 64, 10, "2026-11-24T00:00:00.000000Z", 16, 65536, canonical_json
    )
    pos, expected_prev = 0, "0" * 64
    for i in range(5):
        length, crc = struct.unpack_from(">II", frames, pos)
        raw = frames[pos + 8 : pos + 8 + length]
        assert zlib.crc32(raw) == crc
        entry = json.loads(raw)
        assert entry["seq"] == 10 + i and entry["prev"] == expected_prev
        leaf = hashlib.sha256(b"\x00" + raw).digest()
        assert leaves[32 * i : 32 * i + 32] == leaf
        assert struct.unpack_from(">Q", offsets, 8 * i)[0] == 16 + pos
        expected_prev = leaf.hex()
        pos += 8 + length
    assert prev == expected_prev and end == 16 + pos == 16 + len(frames)


def test_oversized_entry_raises_with_its_index_and_size(kernel):
    fields = [("agent:k1", "record.read", [], {"x": "y" * n}, None) for n in (1, 500)]
    with pytest.raises(ValueError) as info:
        kernel.encode_chain(fields, "0" * 64, 0, "t", 16, 300, canonical_json)
    index, size = info.value.args
    assert index == 1 and size > 300


def test_empty_batch(kernel):
    assert kernel.encode_chain([], "ab" * 32, 3, "t", 99, 100, canonical_json) == (
        b"",
        b"",
        b"",
        "ab" * 32,
        99,
    )


awkward = st.recursive(
    st.one_of(
        scalars,
        st.floats(allow_nan=False),
        st.integers(),
        st.text(),
        st.binary(max_size=3),
        st.sampled_from(["\ud800", "a\udfffb", "é", "\u4e8c"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(st.one_of(st.text(max_size=130), st.integers(), st.just("")), inner, max_size=3),
    ),
    max_leaves=10,
)


def _python_accepts(value) -> bool:
    from ledger.entry import EntryInvalid, _check_value

    try:
        _check_value(value, "details", 1)
    except EntryInvalid:
        return False
    return True


@pytest.mark.skipif(_chain_c is None, reason="ext._chain is not built (run `make build`)")
@settings(max_examples=400, deadline=None)
@given(value=awkward)
def test_compiled_fast_accept_agrees_with_the_python_validator(value):
    assert _chain_c.plain_json(value) == _python_accepts(value)


@pytest.mark.skipif(_chain_c is None, reason="ext._chain is not built (run `make build`)")
def test_fast_accept_edges():
    deep = {}
    cur = deep
    for _ in range(15):
        cur["k"] = {}
        cur = cur["k"]
    assert _chain_c.plain_json(deep) == _python_accepts(deep) is True
    cur["k"] = {}
    assert _chain_c.plain_json(deep) == _python_accepts(deep) is False
    for v in (2**53 - 1, -(2**53 - 1), True, None, ("t",), {"k" * 128: 1}):
        assert _chain_c.plain_json({"v": v}) and _python_accepts({"v": v})
    for v in (2**53, 2**64, 0.5, b"x", {"k" * 129: 1}, {"\x7f": 1}, {1: 1}, "\udc00"):
        assert not _chain_c.plain_json({"v": v}) and not _python_accepts({"v": v})
