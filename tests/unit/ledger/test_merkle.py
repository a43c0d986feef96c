"""ledger.merkle against Certificate Transparency: reference vectors, a live Rekor log, pymerkle interop.

Every expected hash here comes from a data file under tests/vectors/rfc6962/ fetched from a reference
implementation (see the README there): transparency-dev/merkle (Go), google/certificate-transparency
(C++) and sigstore-python's Rekor bundles. Nothing expected is computed by the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pymerkle
import pytest

from ledger.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

GO = "rfc6962/transparency-dev-merkle"
CPP = "rfc6962/google-certificate-transparency"
REKOR = ["rekor-v1-bundle_v3_no_signed_time.json", "rekor-v2-staging-rekor-v2.json"]


@dataclass(frozen=True)
class Reference:
    """The 8-leaf reference tree of testonly/constants.go (the same tree as the C++ kInputs)."""

    leaves: list[bytes]  # leaf hashes of LeafInputs()
    nodes: list[list[bytes]]  # NodeHashes()[level][index]
    roots: list[bytes]  # roots[n]: root of the first n leaves, roots[0] the empty tree


@pytest.fixture(scope="module")
def ref(vectors) -> Reference:
    constants = vectors(f"{GO}/constants.json")
    return Reference(
        leaves=[leaf_hash(bytes.fromhex(x)) for x in constants["leaf_inputs_hex"]],
        nodes=[_hexes(level) for level in constants["node_hashes_by_level"]],
        roots=_hexes(constants["root_hashes_by_size"]),
    )


def _hexes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def _b64s(values: list[str] | None) -> list[bytes]:
    return [base64.b64decode(v) for v in values or []]


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --------------------------------------------------------------------------------------------------------
# Hashing and roots


def test_empty_tree_root_is_sha256_of_nothing(ref, vectors):
    assert EMPTY_ROOT == ref.roots[0] == hashlib.sha256(b"").digest()
    assert root_hash([]) == ref.roots[0]
    assert EMPTY_ROOT.hex() == vectors(f"{GO}/rfc6962_test.json")["empty_root"]
    assert EMPTY_ROOT.hex() == vectors(f"{CPP}/merkle_tree_test.json")["empty_tree_hash"]


@pytest.mark.vectors("case", f"{GO}/rfc6962_test.json", "leaf_hashes")
def test_leaf_hash_known_answers(case):
    data = case["data_ascii"].encode() if "data_ascii" in case else bytes.fromhex(case["data_hex"])
    assert leaf_hash(data).hex() == case["hash"]


@pytest.mark.vectors("case", f"{GO}/rfc6962_test.json", "node_hashes")
def test_node_hash_known_answers(case):
    assert node_hash(case["left_ascii"].encode(), case["right_ascii"].encode()).hex() == case["hash"]


@pytest.mark.parametrize("data", [0, 3, [1, 2, 3], "abc", None], ids=repr)
def test_leaf_hash_of_a_non_bytes_value_raises_instead_of_coercing(data):
    """Regression: leaf_hash() runs bytes(data), so leaf_hash(3) silently hashed b"\\x00\\x00\\x00" (and
    leaf_hash(0) collided with leaf_hash(b"")), leaf_hash([1, 2, 3]) hashed b"\\x01\\x02\\x03"."""
    with pytest.raises(TypeError):
        leaf_hash(data)


def test_leaf_hashes_are_the_reference_level_zero_nodes(ref):
    assert ref.leaves == ref.nodes[0]


@pytest.mark.parametrize("level", [1, 2, 3])
def test_every_reference_subtree_hash(ref, level):
    width = 1 << level
    for j, expected in enumerate(ref.nodes[level]):
        assert node_hash(ref.nodes[level - 1][2 * j], ref.nodes[level - 1][2 * j + 1]) == expected
        assert root_hash(ref.leaves[j * width : (j + 1) * width]) == expected


@pytest.mark.parametrize("size", range(9))
def test_root_for_every_size_of_the_reference_tree(ref, size):
    assert root_hash(ref.leaves[:size]) == ref.roots[size]


def test_reference_roots_agree_across_go_and_cpp_sources(ref, vectors):
    go_verify = vectors(f"{GO}/verify_test.json")
    cpp = vectors(f"{CPP}/merkle_tree_test.json")
    constants = vectors(f"{GO}/constants.json")
    assert _hexes(go_verify["roots"]) == ref.roots[1:]
    assert _hexes(cpp["roots"]) == ref.roots[1:]
    assert go_verify["leaves_hex"] == cpp["inputs_hex"] == constants["leaf_inputs_hex"]


# --------------------------------------------------------------------------------------------------------
# Inclusion proofs: generation equals the references byte for byte, and verifies


def _check_reference_inclusion(ref: Reference, leaf_1_based: int, size: int, proof: list[bytes]) -> None:
    if leaf_1_based == 0:  # both sources list leaf 0 as the invalid entry
        with pytest.raises(ValueError, match="outside a tree"):
            inclusion_proof(ref.leaves[:size], leaf_1_based - 1)
        return
    index = leaf_1_based - 1
    assert inclusion_proof(ref.leaves[:size], index) == proof
    assert verify_inclusion(ref.leaves[index], index, size, proof, ref.roots[size])
    assert root_from_inclusion(ref.leaves[index], index, size, proof) == ref.roots[size]


@pytest.mark.vectors("case", f"{GO}/verify_test.json", "inclusion_proofs")
def test_inclusion_proof_equals_go_reference_and_verifies(ref, case):
    _check_reference_inclusion(ref, case["leaf"], case["size"], _hexes(case["proof"]))


@pytest.mark.vectors("case", f"{CPP}/merkle_tree_test.json", "paths")
def test_inclusion_proof_equals_cpp_reference_and_verifies(ref, case):
    _check_reference_inclusion(ref, case["leaf"], case["snapshot"], _hexes(case["path"]))


def _resolve(ref: Reference, case: dict[str, Any]) -> list[bytes]:
    """Turn a proof/proof_test.go node-ID proof into hashes, folding the ``rehash`` range as Go does."""
    hashes = [ref.nodes[level][index] for level, index in case["nodes"]]
    if case["rehash"]:
        begin, end = case["rehash"]
        folded = hashes[begin]
        for h in hashes[begin + 1 : end]:
            folded = node_hash(h, folded)
        hashes[begin:end] = [folded]
    return hashes


@pytest.mark.vectors("case", f"{GO}/proof_test.json", "inclusion")
def test_inclusion_proof_equals_go_node_id_table(ref, case):
    size, index = case["size"], case["index"]
    if case.get("wantErr"):
        with pytest.raises(ValueError, match="outside a tree"):
            inclusion_proof(ref.leaves[:size], index)
        return
    proof = _resolve(ref, case)
    assert inclusion_proof(ref.leaves[:size], index) == proof
    assert verify_inclusion(ref.leaves[index], index, size, proof, ref.roots[size])


@pytest.mark.parametrize("size", range(1, 9))
def test_every_inclusion_proof_of_the_reference_tree_verifies(ref, size):
    for index in range(size):
        proof = inclusion_proof(ref.leaves[:size], index)
        assert verify_inclusion(ref.leaves[index], index, size, proof, ref.roots[size])
        assert not verify_inclusion(ref.leaves[index], index, size, proof, ref.roots[size - 1])


@pytest.mark.vectors("probe", f"{GO}/testdata/inclusion/*/*.json")
def test_go_inclusion_probes(probe):
    """transparency-dev/merkle testdata: the happy path verifies, every corrupted probe is rejected."""
    leaf, root, proof = base64.b64decode(probe["leafHash"]), base64.b64decode(probe["root"]), probe["proof"]
    got = verify_inclusion(leaf, probe["leafIdx"], probe["treeSize"], _b64s(proof), root)
    assert got is (not probe["wantErr"]), probe["desc"]
    if not probe["wantErr"]:
        assert root_from_inclusion(leaf, probe["leafIdx"], probe["treeSize"], _b64s(proof)) == root


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
def test_go_probe_files_are_near_misses_of_their_happy_path(vectors, kind):
    """Guard on the stored data: each bad probe is its happy path with one change, so rejecting it means
    something (a bit-flip probe differs in exactly one bit; every probe differs somewhere)."""
    dirs: dict[str, dict[str, Any]] = {}
    for path in vectors(f"{GO}/MANIFEST.json"):
        if path.startswith(f"testdata/{kind}/"):
            _, _, number, name = path.split("/")
            dirs.setdefault(number, {})[name] = vectors(f"{GO}/{path}")
    assert len(dirs) == 5
    for number, probes in dirs.items():
        happy = probes.pop("happy-path.json")
        assert not happy["wantErr"]
        for name, probe in probes.items():
            assert probe["wantErr"], (number, name)
            assert {k: v for k, v in probe.items() if k != "desc"} != {
                k: v for k, v in happy.items() if k != "desc"
            }, (number, name)
            if name.startswith("modified-proof"):
                a, b = _b64s(happy["proof"]), _b64s(probe["proof"])
                flipped = sum(
                    bin(x ^ y).count("1")
                    for ha, hb in zip(a, b, strict=True)
                    for x, y in zip(ha, hb, strict=True)
                )
                assert flipped == 1, (number, name)


def test_go_verify_inclusion_invalid_probes(vectors):
    go = vectors(f"{GO}/verify_test.json")
    named = {
        "some": bytes.fromhex(go["sha256_some_hash"]),
        "empty-tree": bytes.fromhex(go["sha256_empty_tree_hash"]),
        "empty-bytes": b"",
    }
    probes = go["verify_inclusion_invalid_probes"]
    for index, size in probes["index_size"]:
        for leaf, root in probes["leaf_root_pairs"]:
            assert verify_inclusion(named[leaf], index, size, [], named[root]) is False


@pytest.mark.vectors("case", f"{GO}/verify_test.json", "verify_inclusion_single_entry", "cases")
def test_go_verify_inclusion_single_entry(case):
    named = {"hash": leaf_hash(b"data"), "empty": b""}
    assert verify_inclusion(named[case["leaf"]], 0, 1, [], named[case["root"]]) is (not case["wantErr"])


# --------------------------------------------------------------------------------------------------------
# Consistency proofs


def _check_reference_consistency(ref: Reference, old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(ref.leaves[:new], old) == proof
    assert verify_consistency(old, new, proof, ref.roots[old], ref.roots[new])


@pytest.mark.vectors("case", f"{GO}/verify_test.json", "consistency_proofs")
def test_consistency_proof_equals_go_reference_and_verifies(ref, case):
    _check_reference_consistency(ref, case["size1"], case["size2"], _hexes(case["proof"]))


@pytest.mark.vectors("case", f"{CPP}/merkle_tree_test.json", "proofs")
def test_consistency_proof_equals_cpp_reference_and_verifies(ref, case):
    _check_reference_consistency(ref, case["snapshot1"], case["snapshot2"], _hexes(case["proof"]))


@pytest.mark.vectors("case", f"{GO}/proof_test.json", "consistency")
def test_consistency_proof_equals_go_node_id_table(ref, case):
    old, new = case["size1"], case["size2"]
    if case.get("wantErr"):
        with pytest.raises(ValueError, match="no consistency proof"):
            consistency_proof(ref.leaves[:new], old)
        return
    _check_reference_consistency(ref, old, new, _resolve(ref, case))


@pytest.mark.parametrize("new", range(1, 9))
def test_every_consistency_proof_of_the_reference_tree_verifies(ref, new):
    for old in range(new + 1):
        proof = consistency_proof(ref.leaves[:new], old)
        assert verify_consistency(old, new, proof, ref.roots[old], ref.roots[new])
        if 0 < old < new:
            assert not verify_consistency(old, new, proof, ref.roots[old], ref.roots[new - 1])
            assert not verify_consistency(old, new, proof, ref.roots[old - 1], ref.roots[new])


@pytest.mark.vectors("probe", f"{GO}/testdata/consistency/*/*.json")
def test_go_consistency_probes(probe):
    root1, root2 = base64.b64decode(probe["root1"]), base64.b64decode(probe["root2"])
    got = verify_consistency(probe["size1"], probe["size2"], _b64s(probe["proof"]), root1, root2)
    assert got is (not probe["wantErr"]), probe["desc"]


@pytest.mark.vectors("case", f"{GO}/verify_test.json", "verify_consistency_table", "cases")
def test_go_verify_consistency_table(vectors, case):
    """Go's TestVerifyConsistency. Where Go accepts 12-byte placeholder roots ("don't care") for trivial
    sizes, we reject: our verifiers only accept 32-byte hashes, by design (see the deviations test)."""
    named = {
        "dc1": b"don't care 1",
        "dc2": b"don't care 2",
        "empty-tree": bytes.fromhex(vectors(f"{GO}/verify_test.json")["sha256_empty_tree_hash"]),
    }
    roots = named[case["root1"]], named[case["root2"]]
    proof = [named[p] for p in case["proof"]]
    expected = (not case["wantErr"]) and all(len(r) == 32 for r in roots)
    assert verify_consistency(case["size1"], case["size2"], proof, *roots) is expected


def test_deviations_from_go_are_only_stricter(ref):
    """Go/C++ accept `VerifyConsistency(0, n, any-root1, any-root2, [])`; we additionally require 32-byte
    roots and, for size1 == 0, root1 == the empty-tree hash."""
    assert verify_consistency(0, 5, [], EMPTY_ROOT, ref.roots[5])
    assert not verify_consistency(0, 5, [], ref.roots[1], ref.roots[5])
    assert not verify_consistency(0, 0, [], b"x", b"x")


def test_tree_size_is_not_bound_by_the_proof_alone(ref):
    """Inherent to RFC 6962 (Go's proof.VerifyInclusion behaves the same): the audit path of leaf 0 in a
    3-leaf tree has the shape of one in a 4-leaf tree, so only the signed tree head binds the size."""
    proof = inclusion_proof(ref.leaves[:3], 0)
    assert verify_inclusion(ref.leaves[0], 0, 4, proof, ref.roots[3])
    assert not verify_inclusion(ref.leaves[0], 0, 4, proof, ref.roots[4])


# --------------------------------------------------------------------------------------------------------
# A real proof from a live CT-style log (Sigstore Rekor)


@dataclass(frozen=True)
class Rekor:
    entry: dict[str, Any]
    leaf: bytes
    index: int
    size: int
    path: list[bytes]
    root: bytes


@pytest.fixture(params=REKOR)
def rekor(request, vectors) -> Rekor:
    entry = vectors(f"rfc6962/sigstore/{request.param}")["tlogEntry"]
    proof = entry["inclusionProof"]
    return Rekor(
        entry=entry,
        leaf=leaf_hash(base64.b64decode(entry["canonicalizedBody"])),
        index=int(proof["logIndex"]),
        size=int(proof["treeSize"]),
        path=_b64s(proof["hashes"]),
        root=base64.b64decode(proof["rootHash"]),
    )


def test_real_rekor_inclusion_proof_verifies(rekor):
    assert verify_inclusion(rekor.leaf, rekor.index, rekor.size, rekor.path, rekor.root)
    assert root_from_inclusion(rekor.leaf, rekor.index, rekor.size, rekor.path) == rekor.root


def test_rekor_checkpoint_signs_the_root_we_verify_against(rekor):
    proof = rekor.entry["inclusionProof"]
    _origin, size, root = proof["checkpoint"]["envelope"].split("\n")[:3]
    assert (int(size), base64.b64decode(root)) == (rekor.size, rekor.root)


def test_real_rekor_proof_with_any_single_bit_flipped_is_rejected(rekor):
    leaf, index, size, path, root = rekor.leaf, rekor.index, rekor.size, rekor.path, rekor.root
    for bit in range(256):
        assert not verify_inclusion(_flip(leaf, bit), index, size, path, root)
        assert not verify_inclusion(leaf, index, size, path, _flip(root, bit))
        for i in range(len(path)):
            tampered = [*path[:i], _flip(path[i], bit), *path[i + 1 :]]
            assert not verify_inclusion(leaf, index, size, tampered, root)
    for delta in (-1, 1):
        assert not verify_inclusion(leaf, index + delta, size, path, root)
    assert not verify_inclusion(leaf, index, size, path[:-1], root)
    assert not verify_inclusion(leaf, index, size, [*path, path[-1]], root)


def test_real_rekor_proof_of_a_tampered_entry_body_is_rejected(rekor):
    body = base64.b64decode(rekor.entry["canonicalizedBody"])
    for bit in (0, 8 * len(body) // 2, 8 * len(body) - 1):
        assert not verify_inclusion(
            leaf_hash(_flip(body, bit)), rekor.index, rekor.size, rekor.path, rekor.root
        )


# --------------------------------------------------------------------------------------------------------
# Malformed input: the verifiers answer False (root_from_inclusion None) and never raise.
# Any well-formed tree serves here; this one is not a known-answer vector.

TREE = [leaf_hash(b"entry %d" % i) for i in range(8)]
TREE_ROOTS = [root_hash(TREE[:n]) for n in range(9)]
I_INDEX, I_SIZE = 5, 8
I_PATH = inclusion_proof(TREE, I_INDEX)
I_ARGS = (TREE[I_INDEX], I_INDEX, I_SIZE, I_PATH, TREE_ROOTS[8])
C_OLD, C_NEW = 6, 8
C_PATH = consistency_proof(TREE, C_OLD)
C_ARGS = (C_OLD, C_NEW, C_PATH, TREE_ROOTS[6], TREE_ROOTS[8])


class _Explodes:
    """A path whose iteration raises, standing in for any broken caller-supplied sequence."""

    def __iter__(self) -> Iterator[bytes]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        raise RuntimeError("boom")


def _hash_junk(good: bytes) -> list[Any]:
    return [
        good[:31],
        good + b"\x00",
        b"",
        good.hex(),
        good.hex()[:32],
        None,
        0,
        1.5,
        list(good),  # bytes() of this would be the real hash: must not be coerced
        memoryview(good),
    ]


def _size_junk(good: int) -> list[Any]:
    return [-1, None, True, False, float(good), str(good), complex(good), [good], 2**70, -(2**70)]


def _path_junk(good: list[bytes]) -> list[Any]:
    return [
        None,
        "not a path",
        b"".join(good),  # iterates as ints
        42,
        [p.hex() for p in good],
        [list(p) for p in good],  # bytes() of these would be the real hashes: must not be coerced
        [memoryview(p) for p in good],
        [None] * len(good),
        [*good[:-1], good[-1][:31]],
        [*good[:-1], good[-1] + b"\x00"],
        [*good, b""],
        [b"", *good],
        good[:-1],
        [*good, good[-1]],
        [good[0], *good],
        [*good, EMPTY_ROOT],
        [*good, 7],
        {"path": good},
        _Explodes(),
    ]


def _inclusion_cases() -> Iterator[Any]:
    for pos, name, junks in [
        (0, "leaf", _hash_junk(I_ARGS[0])),
        (1, "index", [*_size_junk(I_INDEX), I_SIZE, I_SIZE + 1]),
        (2, "size", [*_size_junk(I_SIZE), 0, I_INDEX]),
        (3, "path", _path_junk(I_PATH)),
        (4, "root", _hash_junk(I_ARGS[4])),
    ]:
        for i, junk in enumerate(junks):
            args = list(I_ARGS)
            args[pos] = junk
            yield pytest.param(pos, args, id=f"{name}-{i}-{type(junk).__name__}")


@pytest.mark.parametrize(("pos", "args"), list(_inclusion_cases()))
def test_verify_inclusion_rejects_malformed_input(pos, args):
    assert verify_inclusion(*args) is False
    if pos < 4:  # leaf, index, size or path damaged: no root, or not the real one
        assert root_from_inclusion(*args[:4]) != TREE_ROOTS[8]


def _consistency_cases() -> Iterator[Any]:
    for pos, name, junks in [
        (0, "old_size", [*_size_junk(C_OLD), C_NEW + 1, C_OLD - 1, C_OLD + 1]),
        (1, "new_size", [*_size_junk(C_NEW), C_OLD - 1]),
        (2, "path", [*_path_junk(C_PATH), []]),
        (3, "old_root", _hash_junk(C_ARGS[3])),
        (4, "new_root", _hash_junk(C_ARGS[4])),
    ]:
        for i, junk in enumerate(junks):
            args = list(C_ARGS)
            args[pos] = junk
            yield pytest.param(args, id=f"{name}-{i}-{type(junk).__name__}")


@pytest.mark.parametrize("args", list(_consistency_cases()))
def test_verify_consistency_rejects_malformed_input(args):
    assert verify_consistency(*args) is False


@pytest.mark.parametrize(
    "path",
    [I_PATH[:-1], I_PATH[1:], [*I_PATH, I_PATH[-1]], [*I_PATH, EMPTY_ROOT], [EMPTY_ROOT, *I_PATH], []],
    ids=["drop-last", "drop-first", "dup-last", "append", "prepend", "empty"],
)
def test_root_from_inclusion_is_none_for_a_path_of_the_wrong_length(path):
    assert root_from_inclusion(TREE[I_INDEX], I_INDEX, I_SIZE, path) is None


def test_valid_baselines_of_the_malformed_input_tests():
    assert verify_inclusion(*I_ARGS) is True
    assert verify_consistency(*C_ARGS) is True


@pytest.mark.parametrize(
    "call",
    [
        # bools are ints in Python; accepted as sizes these would make the proofs below valid
        lambda: verify_inclusion(TREE[0], False, True, [], TREE[0]),
        lambda: verify_inclusion(TREE[1], True, 2, [TREE[0]], TREE_ROOTS[2]),
        lambda: verify_consistency(True, True, [], TREE_ROOTS[1], TREE_ROOTS[1]),
        lambda: verify_consistency(False, 1, [], EMPTY_ROOT, TREE_ROOTS[1]),
        lambda: verify_consistency(True, 2, [TREE[1]], TREE_ROOTS[1], TREE_ROOTS[2]),
    ],
    ids=["incl-index-size", "incl-index", "cons-equal", "cons-empty", "cons-old"],
)
def test_bool_sizes_are_rejected(call):
    assert call() is False


def test_int_baselines_of_the_bool_tests():
    assert verify_inclusion(TREE[0], 0, 1, [], TREE[0])
    assert verify_inclusion(TREE[1], 1, 2, [TREE[0]], TREE_ROOTS[2])
    assert verify_consistency(1, 1, [], TREE_ROOTS[1], TREE_ROOTS[1])
    assert verify_consistency(0, 1, [], EMPTY_ROOT, TREE_ROOTS[1])
    assert verify_consistency(1, 2, [TREE[1]], TREE_ROOTS[1], TREE_ROOTS[2])


@pytest.mark.parametrize("size", [2**64, 2**70, 2**200])
def test_huge_tree_sizes_are_rejected_without_raising(size):
    rng = random.Random(size)
    path = [rng.randbytes(32) for _ in range((size - 1).bit_length())]  # the right length for the size
    assert verify_inclusion(TREE[0], size - 1, size, path, TREE_ROOTS[8]) is False
    assert verify_inclusion(TREE[0], 0, size, path, TREE_ROOTS[8]) is False
    assert root_from_inclusion(TREE[0], size - 1, size, path) not in (None, TREE_ROOTS[8])
    assert verify_consistency(size - 1, size, path, TREE_ROOTS[8], TREE_ROOTS[8]) is False
    assert verify_consistency(3, size, path, TREE_ROOTS[3], TREE_ROOTS[8]) is False


def test_bytearray_hashes_are_accepted_like_bytes():
    args = (bytearray(I_ARGS[0]), I_INDEX, I_SIZE, [bytearray(p) for p in I_PATH], bytearray(I_ARGS[4]))
    assert verify_inclusion(*args) is True
    assert verify_consistency(
        C_OLD, C_NEW, [bytearray(p) for p in C_PATH], bytearray(TREE_ROOTS[6]), TREE_ROOTS[8]
    )


# --------------------------------------------------------------------------------------------------------
# Interop with pymerkle (InmemoryTree, sha256, default security = RFC 6962 0x00/0x01 prefixes)


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _rfc_subproof(
    m: int, start: int, end: int, complete: bool, mth: Callable[[int, int], bytes]
) -> list[bytes]:
    """RFC 6962 section 2.1.2 SUBPROOF(m, D[start:end], complete), written from the RFC."""
    if m == end - start:
        return [] if complete else [mth(start, end)]
    k = _largest_power_of_two_below(end - start)
    if m <= k:
        return [*_rfc_subproof(m, start, start + k, complete, mth), mth(start + k, end)]
    return [*_rfc_subproof(m - k, start + k, end, False, mth), mth(start, start + k)]


def _pymerkle_consistency_as_rfc(proof: Any, old: int, new: int) -> list[bytes]:
    """pymerkle 7 proves consistency with the hashes of a partition of [0, new) into subtrees (down to the
    first new leaf), not with RFC 6962's node list. Its own layout function names the ranges; we fold those
    subtree hashes into the RFC nodes and lay them out as RFC SUBPROOF does."""
    rule, subset, ranges = pymerkle.core._consistency_path_layout(old, new)
    assert (proof.rule, proof.subset, len(proof.path)) == (rule, subset, len(ranges))
    known = dict(zip(ranges, proof.path, strict=True))

    def mth(start: int, end: int) -> bytes:
        if (start, end) in known:
            return known[(start, end)]
        assert end - start > 1, f"pymerkle proof does not cover leaf {start}"
        k = _largest_power_of_two_below(end - start)
        return node_hash(mth(start, start + k), mth(start + k, end))

    return _rfc_subproof(old, 0, new, True, mth)


PYMERKLE_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 65, 127, 128, 129, 200]


@pytest.fixture(scope="module", params=PYMERKLE_SIZES, ids=[f"n={n}" for n in PYMERKLE_SIZES])
def pymerkle_tree(request) -> tuple[Any, list[bytes]]:
    rng = random.Random(request.param)
    entries = [rng.randbytes(rng.randrange(0, 64)) for _ in range(request.param)]
    tree = pymerkle.InmemoryTree(algorithm="sha256")
    for entry in entries:
        tree.append_entry(entry)
    return tree, [leaf_hash(e) for e in entries]


def test_pymerkle_same_leaf_hashes_and_roots(pymerkle_tree):
    tree, leaves = pymerkle_tree
    n = len(leaves)
    assert tree.get_size() == n
    assert [tree.get_leaf(i + 1) for i in range(n)] == leaves
    for size in range(1, n + 1):
        assert tree.get_root(size) == root_hash(leaves[:size])
    assert pymerkle.InmemoryTree(algorithm="sha256").get_root() == root_hash([]) == EMPTY_ROOT


def test_pymerkle_inclusion_proofs_verify_with_ours_and_ours_with_pymerkle(pymerkle_tree):
    tree, leaves = pymerkle_tree
    n = len(leaves)
    root = tree.get_root()
    for index in range(n):
        theirs = tree.prove_inclusion(index + 1)  # pymerkle counts leaves from one
        base, path = theirs.path[0], theirs.path[1:]  # its path starts with the leaf hash itself
        assert base == leaves[index]
        assert verify_inclusion(base, index, n, path, root)
        assert path == inclusion_proof(leaves, index)
        ours = pymerkle.InclusionProof("sha256", True, n, index + 1, theirs.rule, [leaves[index], *path])
        pymerkle.verify_inclusion(leaves[index], root_hash(leaves), ours, index=index + 1, size=n)


def test_pymerkle_consistency_proofs_verify_with_ours(pymerkle_tree):
    if not hasattr(pymerkle.core, "_consistency_path_layout"):
        pytest.skip("pymerkle no longer exposes the layout that names its consistency-path ranges")
    tree, leaves = pymerkle_tree
    n = len(leaves)
    new_root = tree.get_root()
    for old in range(1, n + 1):
        theirs = tree.prove_consistency(old)
        pymerkle.verify_consistency(root_hash(leaves[:old]), root_hash(leaves), theirs)  # our roots
        path = _pymerkle_consistency_as_rfc(theirs, old, n)
        assert verify_consistency(old, n, path, tree.get_root(old), new_root)
        assert path == consistency_proof(leaves, old)
