"""Evidence bundles, format 2: witnesses, anchors, order, and fork evidence, on a real RFC 6962 tree."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from ledger import merkle
from ledger.bundle import (
    BUNDLE_FORMAT_V2,
    BundleUnusable,
    build_bundle_v2,
    find_fork,
    load_bundle,
    prefix_root,
    verify_bundle,
)
from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, SignedCheckpoint, sign_checkpoint
from ledger.entry import canonical_json_stdlib
from ledger.errors import EntryInvalid
from ledger.witness import WitnessSigner, WitnessVerifier, merge_signatures

ORIGIN = "appliance.example/ledger"


def make_entries(n: int) -> list[bytes]:
    raws: list[bytes] = []
    prev = "0" * 64
    for seq in range(n):
        obj = {
            "action": "record.read",
            "actor": "agent:7",
            "details": {"n": seq},
            "prev": prev,
            "request_id": None,
            "seq": seq,
            "subject": [f"cust:{seq:016x}"],
            "time": f"2026-01-01T00:00:{seq:02d}.000000Z",
        }
        raws.append(canonical_json_stdlib(obj))
        prev = merkle.leaf_hash(raws[-1]).hex()
    return raws


RAWS = make_entries(24)
LEAVES = [merkle.leaf_hash(r) for r in RAWS]
LOG = NoteSigner.generate(ORIGIN)
VERIFIER = NoteVerifier.from_vkey(LOG.vkey())
W1, W2, W3 = (WitnessSigner.generate(f"witness.example/w{i}") for i in (1, 2, 3))
WKEYS = [WitnessVerifier.from_vkey(w.vkey()) for w in (W1, W2, W3)]


def signed(size: int, leaves: list[bytes] = LEAVES, log: NoteSigner = LOG) -> SignedCheckpoint:
    return sign_checkpoint(
        Checkpoint(ORIGIN, size, merkle.root_hash(leaves[:size]), 1_767_225_600_000 + size), log
    )


def cosigned(size: int, *witnesses: WitnessSigner) -> str:
    s = signed(size)
    text = s.text
    for w in witnesses:
        text = merge_signatures(text, w.cosign(s.body, 1_767_225_700) + "\n")
    return text


def anchor(size: int, root: bytes | None = None, status: str = "confirmed") -> dict[str, Any]:
    return {
        "chain": "ethereum",
        "network": "31337",
        "contract": "0x" + "ab" * 20,
        "tree_size": size,
        "root": (root or merkle.root_hash(LEAVES[:size])).hex(),
        "tx": "0x" + f"{size:064x}",
        "block": 10 + size,
        "status": status,
        "time": "2026-01-01T00:00:00Z",
    }


def bundle(
    seqs: list[int] = [3, 7, 12],  # noqa: B006 - read only
    size: int = 16,
    checkpoint: str | None = None,
    others: tuple[int, ...] = (4, 9, 20),
    anchors: tuple[int, ...] = (9, 20),
) -> dict[str, Any]:
    entries = [(s, RAWS[s], merkle.inclusion_proof(LEAVES[:size], s)) for s in seqs]
    consistency = []
    for o in others:
        lo, hi = sorted((o, size))
        consistency.append((signed(o).text, merkle.consistency_proof(LEAVES[:hi], lo)))
    return build_bundle_v2(
        ORIGIN,
        checkpoint or cosigned(size, W1, W2),
        entries,
        consistency,
        [anchor(a) for a in anchors],
        {"subject": "cust:00", "action": None, "from": None, "to": None, "seqs": []},
    )


def check(b: dict[str, Any], **kw: Any) -> Any:
    return verify_bundle(b, VERIFIER, **kw)


def test_a_full_bundle_verifies_with_its_witnesses() -> None:
    b = bundle()
    assert b["format"] == BUNDLE_FORMAT_V2
    assert load_bundle(json.dumps(b)) == b
    report = check(b, witnesses=WKEYS[:2])
    assert report.ok, report.reason
    assert (report.entries_checked, report.consistency_checked, report.anchors_checked) == (3, 3, 2)
    assert [w.cosignature.timestamp for w in report.witnesses] == [1_767_225_700] * 2
    assert "witness cosignatures: 2, anchors matched: 2" in report.reason
    assert report.as_dict()["witnesses"][0]["ok"]


def test_witness_requirements() -> None:
    b = bundle()
    assert check(b).ok, "no witness asked for: none required"
    missing = check(b, witnesses=WKEYS)
    assert not missing.ok and "2 of the 3 trusted witnesses" in missing.reason and "w3" in missing.reason
    assert check(b, witnesses=WKEYS, min_witnesses=2).ok
    assert not check(b, witnesses=WKEYS, min_witnesses=3).ok
    with pytest.raises(BundleUnusable, match="4 witness cosignatures required"):
        check(b, witnesses=WKEYS, min_witnesses=4)
    # Unknown signers are listed, not trusted.
    report = check(bundle(checkpoint=cosigned(16, W1, W2, W3)), witnesses=WKEYS[:1])
    assert report.ok and len(report.unknown_signatures) == 2


def test_a_forged_cosignature_fails_whatever_the_count() -> None:
    text = cosigned(16, W1, W2)
    lines = text.split("\n")
    w2 = next(i for i, line in enumerate(lines) if "witness.example/w2" in line)
    blob = bytearray(base64.b64decode(lines[w2].split(" ")[-1]))
    blob[-1] ^= 1
    lines[w2] = lines[w2].rsplit(" ", 1)[0] + " " + base64.b64encode(bytes(blob)).decode()
    report = check(bundle(checkpoint="\n".join(lines)), witnesses=WKEYS[:2], min_witnesses=1)
    assert not report.ok and report.reason.startswith("cosignature:") and "w2" in report.reason


def test_reordered_or_duplicated_entries_are_rejected() -> None:
    b = bundle()
    b["entries"][0], b["entries"][1] = b["entries"][1], b["entries"][0]
    report = check(b)
    assert not report.ok and "entries[1].seq 3 does not follow" in report.reason
    b = bundle()
    b["entries"].append(copy.deepcopy(b["entries"][-1]))
    assert "duplicated or reordered" in check(b).reason
    with pytest.raises(EntryInvalid, match="seq order"):
        build_bundle_v2(ORIGIN, signed(16).text, [(7, RAWS[7], []), (3, RAWS[3], [])])


def test_truncated_files_are_unusable() -> None:
    data = json.dumps(bundle()).encode()
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(BundleUnusable, match="not JSON"):
            load_bundle(data[:cut])


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda a: a.update(root="00" * 32), "but the log signed root"),
        (lambda a: a.update(tree_size=11), "no checkpoint of that size"),
    ],
)
def test_anchors_must_match_signed_checkpoints(change: Any, fragment: str) -> None:
    b = bundle()
    change(b["anchors"][1])
    report = check(b)
    assert not report.ok and report.reason.startswith("anchors[1]") and fragment in report.reason
    assert report.fork is None


@pytest.mark.parametrize(
    ("change", "what"),
    [
        (lambda a: a.update(root="AB" * 32), "root"),
        (lambda a: a.update(tree_size=-1), "tree_size"),
        (lambda a: a.update(block="12"), "block"),
        (lambda a: a.pop("tx"), "missing tx"),
        (lambda a: a.update(extra=1), "unknown field"),
    ],
)
def test_unreadable_anchors_are_unusable(change: Any, what: str) -> None:
    b = bundle()
    change(b["anchors"][0])
    with pytest.raises(BundleUnusable, match=what):
        check(b)


def test_format_2_needs_its_fields() -> None:
    for key in ("anchors", "selection"):
        b = bundle()
        del b[key]
        with pytest.raises(BundleUnusable, match=f"missing {key}"):
            check(b)
    b = bundle()
    b["selection"] = []
    with pytest.raises(BundleUnusable, match="selection"):
        check(b)


def test_newer_checkpoints_are_proven_from_the_bundles() -> None:
    b = bundle(others=(20,), anchors=(20,))
    b["consistency"][0]["path"][0] = "00" * 32
    report = check(b)
    assert not report.ok and "prove size 16 is a prefix of size 20" in report.reason


# -- fork evidence ------------------------------------------------------------------------------------------
FORKED = [merkle.leaf_hash(b"rewritten history"), *LEAVES[1:]]


def test_two_roots_for_one_size_are_a_fork() -> None:
    b = bundle(others=(4, 9))
    b["consistency"].append({"checkpoint": signed(9, FORKED).text, "path": []})
    report = check(b)
    assert not report.ok and report.fork is not None
    assert report.reason.startswith("fork: the log signed two conflicting checkpoints of size 9")
    assert {report.fork.a.checkpoint.root_hash, report.fork.b.checkpoint.root_hash} == {
        merkle.root_hash(LEAVES[:9]),
        merkle.root_hash(FORKED[:9]),
    }


def test_a_proof_that_reproduces_the_new_root_but_not_the_old_is_a_fork() -> None:
    """The bundle's tree (FORKED) was rewritten below an older signed checkpoint of the true history."""
    entries = [(s, RAWS[s], merkle.inclusion_proof(FORKED[:16], s)) for s in (5,)]
    honest_old = signed(12)  # signed before the rewrite
    proof = merkle.consistency_proof(FORKED[:16], 12)  # what the forked log computes now
    b = build_bundle_v2(ORIGIN, signed(16, FORKED).text, entries, [(honest_old.text, proof)], [], {})
    report = check(b)
    assert report.fork is not None and report.fork.prefix_root == merkle.root_hash(FORKED[:12])
    assert "whose first 12 entries have root" in report.reason


def test_find_fork_and_prefix_root() -> None:
    a, b = signed(12), signed(16)
    assert find_fork(a, b) is None and find_fork(a, a) is None
    assert find_fork(a, b, merkle.consistency_proof(LEAVES[:16], 12)) is None
    assert prefix_root(12, 16, merkle.consistency_proof(LEAVES[:16], 12), b.checkpoint.root_hash) == (
        a.checkpoint.root_hash
    )
    # A path that does not reproduce the newer root proves nothing, and a power-of-two prefix is not shown.
    assert prefix_root(12, 16, [bytes(32)] * 3, b.checkpoint.root_hash) is None
    assert prefix_root(8, 16, merkle.consistency_proof(LEAVES[:16], 8), b.checkpoint.root_hash) is None
    fork = find_fork(signed(9, FORKED), signed(9))
    assert fork is not None and "size 9" in fork.describe()
    assert fork.as_dict()["a"]["tree_size"] == 9


def test_a_checkpoint_signed_by_another_key_is_not_a_fork() -> None:
    b = bundle(others=(4,))
    b["consistency"].append({"checkpoint": signed(9, FORKED, NoteSigner.generate(ORIGIN)).text, "path": []})
    report = check(b)
    assert not report.ok and report.fork is None and "consistency[1].checkpoint" in report.reason
