"""Evidence bundles: a real RFC 6962 tree of chained entries, verified, then tampered field by field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.bundle import BUNDLE_FORMAT, BundleUnusable, build_bundle, load_bundle, verify_bundle
from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, sign_checkpoint
from ledger.entry import canonical_json_stdlib
from ledger.errors import EntryInvalid, LedgerError

ORIGIN = "appliance.example/ledger"
SIZE = 20
OLD_SIZE = 13


def make_entries(n: int, tweak: Callable[[int, dict[str, Any]], bytes] | None = None) -> list[bytes]:
    """``n`` canonical entries whose ``prev`` chains the leaf hashes; ``tweak`` may re-encode one."""
    raws: list[bytes] = []
    prev = "0" * 64
    for seq in range(n):
        obj = {
            "action": "record.read",
            "actor": "agent:7",
            "details": {"fields": ["email"], "n": seq},
            "prev": prev,
            "request_id": f"req-{seq:04d}",
            "seq": seq,
            "subject": [f"cust:{seq:016x}"],
            "time": f"2026-01-01T00:00:{seq:02d}.000000Z",
        }
        raw = tweak(seq, obj) if tweak else canonical_json_stdlib(obj)
        raws.append(raw)
        prev = merkle.leaf_hash(raw).hex()
    return raws


@dataclass
class Log:
    signer: NoteSigner
    raws: list[bytes]
    leaves: list[bytes]
    checkpoints: dict[int, str]

    @classmethod
    def build(cls, raws: list[bytes], sizes: tuple[int, ...] = (0, 1, 8, OLD_SIZE, SIZE)) -> Log:
        signer = NoteSigner.generate(ORIGIN)
        leaves = [merkle.leaf_hash(r) for r in raws]
        cps = {
            s: sign_checkpoint(
                Checkpoint(ORIGIN, s, merkle.root_hash(leaves[:s]), 1_767_225_600_000 + s), signer
            ).text
            for s in sizes
        }
        return cls(signer, raws, leaves, cps)

    @property
    def verifier(self) -> NoteVerifier:
        return NoteVerifier.from_vkey(self.signer.vkey())

    def bundle(self, seqs: list[int], size: int = SIZE, old: tuple[int, ...] = (OLD_SIZE,)) -> dict[str, Any]:
        leaves = self.leaves[:size]
        entries = [(s, self.raws[s], merkle.inclusion_proof(leaves, s)) for s in seqs]
        consistency = [(self.checkpoints[o], merkle.consistency_proof(leaves, o)) for o in old]
        return build_bundle(ORIGIN, self.checkpoints[size], entries, consistency)


ENTRY_KEYS = ("action", "actor", "details", "prev", "request_id", "seq", "subject", "time")
_SMALL_LOG = Log.build(make_entries(8), sizes=(8,))


@pytest.fixture(scope="module")
def log() -> Log:
    return Log.build(make_entries(SIZE))


def _fails(log: Log, bundle: dict[str, Any], field: str) -> None:
    report = verify_bundle(bundle, log.verifier)
    assert not report.ok
    assert report.reason.startswith(field), report.reason


def _flip(hex_hash: str, bit: int = 0) -> str:
    raw = bytearray.fromhex(hex_hash)
    raw[bit // 8] ^= 1 << (bit % 8)
    return raw.hex()


# -- Valid bundles --------------------------------------------------------------------------------------


def test_bundle_of_every_entry_verifies(log: Log) -> None:
    report = verify_bundle(log.bundle(list(range(SIZE))), log.verifier)
    assert report.ok, report.reason
    assert (report.entries_checked, report.consistency_checked) == (SIZE, 1)
    assert report.checkpoint is not None
    assert report.checkpoint.tree_size == SIZE
    assert report.checkpoint.root_hash == merkle.root_hash(log.leaves)


def test_build_bundle_writes_the_documented_format(log: Log) -> None:
    bundle = log.bundle([12])
    assert bundle == {
        "format": BUNDLE_FORMAT,
        "origin": ORIGIN,
        "checkpoint": log.checkpoints[SIZE],
        "entries": [
            {
                "seq": 12,
                "entry": log.raws[12].decode(),
                "leaf_hash": log.leaves[12].hex(),
                "inclusion_path": [h.hex() for h in merkle.inclusion_proof(log.leaves, 12)],
            }
        ],
        "consistency": [
            {
                "checkpoint": log.checkpoints[OLD_SIZE],
                "path": [h.hex() for h in merkle.consistency_proof(log.leaves, OLD_SIZE)],
            }
        ],
    }
    assert load_bundle(json.dumps(bundle)) == bundle


@pytest.mark.parametrize(
    ("seqs", "size", "old"),
    [
        ([], SIZE, (0, 1, 8, OLD_SIZE, SIZE)),
        ([19, 3, 4, 0], SIZE, ()),
        ([0], 1, (0, 1)),
        ([7, 5, 6], 8, (1, 8)),
        ([12], OLD_SIZE, (8,)),
    ],
)
def test_subsets_orders_and_sizes_verify(log: Log, seqs: list[int], size: int, old: tuple[int, ...]) -> None:
    report = verify_bundle(log.bundle(seqs, size, old), log.verifier)
    assert report.ok, report.reason
    assert (report.entries_checked, report.consistency_checked) == (len(seqs), len(old))


# -- Tampering: every failure is a report naming the field ------------------------------------------------


def test_changed_entry_byte_is_caught_by_its_leaf_hash(log: Log) -> None:
    bundle = log.bundle([3, 4])
    bundle["entries"][1]["entry"] = bundle["entries"][1]["entry"].replace("agent:7", "agent:8")
    _fails(log, bundle, "entries[1].leaf_hash")


def test_changed_entry_with_recomputed_leaf_hash_is_caught_by_the_inclusion_proof(log: Log) -> None:
    bundle = log.bundle([3, 4])
    entry = bundle["entries"][1]
    entry["entry"] = entry["entry"].replace("agent:7", "agent:8")
    entry["leaf_hash"] = merkle.leaf_hash(entry["entry"].encode()).hex()
    _fails(log, bundle, "entries[1].inclusion_path")


@pytest.mark.parametrize("bit", [0, 7, 128, 255])
def test_flipped_leaf_hash_is_caught(log: Log, bit: int) -> None:
    bundle = log.bundle([9])
    bundle["entries"][0]["leaf_hash"] = _flip(bundle["entries"][0]["leaf_hash"], bit)
    _fails(log, bundle, "entries[0].leaf_hash")


def test_every_flipped_inclusion_path_element_is_caught(log: Log) -> None:
    for seq in (0, 9, 16, 19):
        good = log.bundle([seq], old=())
        for i in range(len(good["entries"][0]["inclusion_path"])):
            for bit in (0, 100, 255):
                bundle = copy.deepcopy(good)
                path = bundle["entries"][0]["inclusion_path"]
                path[i] = _flip(path[i], bit)
                _fails(log, bundle, "entries[0].inclusion_path")


@pytest.mark.parametrize(
    "change",
    [
        lambda p: p[:-1],
        lambda p: [*p, p[0]],
        lambda p: p[::-1],
        lambda p: [],
    ],
    ids=["short", "long", "reversed", "empty"],
)
def test_reshaped_inclusion_path_is_caught(log: Log, change: Callable[[list[str]], list[str]]) -> None:
    bundle = log.bundle([9], old=())
    bundle["entries"][0]["inclusion_path"] = change(bundle["entries"][0]["inclusion_path"])
    _fails(log, bundle, "entries[0].inclusion_path")


def test_entry_listed_under_another_seq_is_caught(log: Log) -> None:
    bundle = log.bundle([9], old=())
    bundle["entries"][0]["seq"] = 10
    _fails(log, bundle, "entries[0].entry has seq 9")


def test_entry_beyond_the_checkpoint_is_caught(log: Log) -> None:
    bundle = log.bundle([], size=OLD_SIZE, old=())
    bundle["entries"] = log.bundle([15], old=())["entries"]
    _fails(log, bundle, "entries[0].seq 15 is not below")


@pytest.mark.parametrize("pos", [0, 30, 60, 80, -20, -2, -1])
def test_changed_checkpoint_is_caught(log: Log, pos: int) -> None:
    bundle = log.bundle([2])
    text = bundle["checkpoint"]
    pos %= len(text)
    bundle["checkpoint"] = text[:pos] + chr(ord(text[pos]) ^ 1) + text[pos + 1 :]
    _fails(log, bundle, "checkpoint:")


def test_checkpoint_of_another_key_is_caught(log: Log) -> None:
    other = Log.build(log.raws)
    _fails(other, log.bundle([2]), "checkpoint: checkpoint is not signed")


def test_bundle_origin_must_be_the_checkpoint_origin(log: Log) -> None:
    bundle = log.bundle([2])
    bundle["origin"] = "other.example/ledger"
    _fails(log, bundle, "origin")


def test_every_flipped_consistency_path_element_is_caught(log: Log) -> None:
    good = log.bundle([], old=(OLD_SIZE,))
    for i in range(len(good["consistency"][0]["path"])):
        bundle = copy.deepcopy(good)
        bundle["consistency"][0]["path"][i] = _flip(bundle["consistency"][0]["path"][i], 42)
        _fails(log, bundle, "consistency[0].path")


def test_consistency_with_a_wrong_old_checkpoint_is_caught(log: Log) -> None:
    bundle = log.bundle([], old=(8, OLD_SIZE))
    bundle["consistency"][1]["checkpoint"] = log.checkpoints[8]
    report = verify_bundle(bundle, log.verifier)
    assert not report.ok
    assert report.reason.startswith("consistency[1].path")
    assert report.consistency_checked == 1


def test_consistency_checkpoint_from_another_log_is_caught(log: Log) -> None:
    bundle = log.bundle([])
    bundle["consistency"][0]["checkpoint"] = Log.build(log.raws).checkpoints[OLD_SIZE]
    _fails(log, bundle, "consistency[0].checkpoint")


def test_consistency_checkpoint_newer_than_the_bundle_checkpoint_is_caught(log: Log) -> None:
    bundle = log.bundle([], size=OLD_SIZE, old=())
    bundle["consistency"] = [{"checkpoint": log.checkpoints[SIZE], "path": []}]
    _fails(log, bundle, "consistency[0].checkpoint has size 20")


def test_non_canonical_entry_is_caught_even_when_the_log_included_it() -> None:
    def spaced(seq: int, obj: dict[str, Any]) -> bytes:
        return json.dumps(obj, sort_keys=True).encode() if seq == 5 else canonical_json_stdlib(obj)

    bad = Log.build(make_entries(SIZE, spaced))
    _fails(bad, bad.bundle([5]), "entries[0].entry is not canonical")
    assert verify_bundle(bad.bundle([4, 6]), bad.verifier).ok


@pytest.mark.parametrize(
    "change",
    [{"pii": "alice@example.com"}, {"subject": 5}, {"details": 5}, {"seq": "5"}, {"prev": None}],
    ids=str,
)
def test_non_entry_json_is_caught_even_when_the_log_included_it(change: dict[str, Any]) -> None:
    def odd(seq: int, obj: dict[str, Any]) -> bytes:
        return canonical_json_stdlib({**obj, **change} if seq == 5 else obj)

    bad = Log.build(make_entries(SIZE, odd))
    _fails(bad, bad.bundle([5]), "entries[0].entry is not a ledger entry")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200)
@given(fields=st.dictionaries(st.sampled_from(ENTRY_KEYS), _JSON), text=st.text(max_size=20))
def test_any_entry_json_gives_a_report_never_an_exception(fields: dict[str, Any], text: str) -> None:
    log = _SMALL_LOG
    for entry in (json.dumps(fields), text):
        bundle = log.bundle([2], size=8, old=())
        bundle["entries"][0]["entry"] = entry
        bundle["entries"][0]["leaf_hash"] = merkle.leaf_hash(entry.encode("utf-8", "surrogatepass")).hex()
        try:
            report = verify_bundle(bundle, log.verifier)
        except BundleUnusable:
            continue  # a lone surrogate in the generated text
        assert not report.ok


def test_broken_hash_chain_is_caught_when_both_neighbours_are_present() -> None:
    def unlinked(seq: int, obj: dict[str, Any]) -> bytes:
        return canonical_json_stdlib({**obj, "prev": "ab" * 32} if seq == 7 else obj)

    bad = Log.build(make_entries(SIZE, unlinked))
    report = verify_bundle(bad.bundle([8, 7, 6]), bad.verifier)
    assert not report.ok
    assert report.reason.startswith("entries[1].entry prev is not the leaf hash of seq 6"), report.reason
    assert verify_bundle(bad.bundle([7, 8]), bad.verifier).ok  # the predecessor is not in the bundle


def test_every_byte_flip_of_a_serialised_bundle_is_unusable_or_invalid(log: Log) -> None:
    data = json.dumps(log.bundle([7], size=8, old=(1,))).encode()
    assert verify_bundle(load_bundle(data), log.verifier).ok
    for pos in range(len(data)):
        tampered = bytearray(data)
        tampered[pos] ^= 0x01
        try:
            bundle = load_bundle(bytes(tampered))
        except BundleUnusable:
            continue
        report = verify_bundle(bundle, log.verifier)
        assert not report.ok, f"flip at byte {pos} verified: {bytes(tampered)[max(0, pos - 20) : pos + 20]!r}"


# -- Unusable input ------------------------------------------------------------------------------------


def _mutations() -> dict[str, Callable[[dict[str, Any]], object]]:
    def setting(path: tuple[Any, ...], value: object) -> Callable[[dict[str, Any]], object]:
        def change(b: dict[str, Any]) -> object:
            target: Any = b
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            return b

        return change

    def deleting(*path: Any) -> Callable[[dict[str, Any]], object]:
        def change(b: dict[str, Any]) -> object:
            target: Any = b
            for key in path[:-1]:
                target = target[key]
            del target[path[-1]]
            return b

        return change

    return {
        "list": lambda b: [b],
        "string": lambda b: json.dumps(b),
        "none": lambda b: None,
        "no format": deleting("format"),
        "no origin": deleting("origin"),
        "no checkpoint": deleting("checkpoint"),
        "no entries": deleting("entries"),
        "no consistency": deleting("consistency"),
        "unknown field": setting(("extra",), 1),
        "other format": setting(("format",), "appliance-evidence-bundle/2"),
        "origin not text": setting(("origin",), 5),
        "checkpoint not text": setting(("checkpoint",), ["x"]),
        "entries not a list": setting(("entries",), {}),
        "entry not an object": setting(("entries", 0), "x"),
        "entry without path": deleting("entries", 0, "inclusion_path"),
        "seq is text": setting(("entries", 0, "seq"), "3"),
        "seq is bool": setting(("entries", 0, "seq"), True),
        "seq negative": setting(("entries", 0, "seq"), -1),
        "seq float": setting(("entries", 0, "seq"), 3.0),
        "entry not text": setting(("entries", 0, "entry"), {"seq": 3}),
        "entry lone surrogate": setting(("entries", 0, "entry"), "\ud800"),
        "leaf hash upper case": setting(("entries", 0, "leaf_hash"), "AB" * 32),
        "leaf hash short": setting(("entries", 0, "leaf_hash"), "ab" * 31),
        "leaf hash not hex": setting(("entries", 0, "leaf_hash"), "zz" * 32),
        "leaf hash bytes": setting(("entries", 0, "leaf_hash"), [0] * 32),
        "path not a list": setting(("entries", 0, "inclusion_path"), "ab" * 32),
        "path element bad": setting(("entries", 0, "inclusion_path", 0), "ab" * 33),
        "consistency not a list": setting(("consistency",), None),
        "consistency item without path": deleting("consistency", 0, "path"),
        "consistency path element bad": setting(("consistency", 0, "path", 0), 7),
    }


@pytest.mark.parametrize("name", sorted(_mutations()))
def test_structurally_bad_bundles_are_unusable(log: Log, name: str) -> None:
    bundle = _mutations()[name](log.bundle([3]))
    with pytest.raises(BundleUnusable) as info:
        verify_bundle(bundle, log.verifier)
    assert "\n" not in str(info.value)
    with pytest.raises(BundleUnusable):
        load_bundle(json.dumps(bundle))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"\xff\xfe\xfd", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b'{"format": 1, "format": 2}', "repeats the JSON key"),
    ],
)
def test_load_bundle_rejects_unreadable_files(data: bytes, match: str) -> None:
    with pytest.raises(BundleUnusable, match=match):
        load_bundle(data)


def test_unusable_is_a_ledger_error() -> None:
    assert issubclass(BundleUnusable, LedgerError)


def test_build_bundle_refuses_entries_that_are_not_text(log: Log) -> None:
    with pytest.raises(EntryInvalid, match="UTF-8"):
        build_bundle(ORIGIN, log.checkpoints[SIZE], [(0, b"\xff", [])])
