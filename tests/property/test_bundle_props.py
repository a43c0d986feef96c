"""Properties of evidence bundles (format 2) over random logs: honest bundles verify, every tamper of a
verified field is rejected, and any two conflicting signed checkpoints are reported as a fork.

What is *not* covered by the log's signature is left alone on purpose: the ``selection`` (informational),
an anchor's transaction details (checked on chain by ``--rpc``), and dropping whole items (a bundle of
fewer entries is still a true statement about those entries).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger import merkle
from ledger.bundle import BundleUnusable, build_bundle_v2, find_fork, verify_bundle
from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, SignedCheckpoint, sign_checkpoint
from ledger.entry import canonical_json_stdlib
from ledger.witness import WitnessSigner, WitnessVerifier, merge_signatures

ORIGIN = "appliance.example/props"
LOG = NoteSigner.from_private_bytes(ORIGIN, bytes(range(32)))
VERIFIER = NoteVerifier.from_vkey(LOG.vkey())
WITNESS = WitnessSigner.generate("witness.example/p")
WKEY = WitnessVerifier.from_vkey(WITNESS.vkey())
MAX = 40
SETTINGS = settings(max_examples=150, deadline=None)


@cache
def raws(n: int = MAX) -> tuple[bytes, ...]:
    out, prev = [], "0" * 64
    for seq in range(n):
        obj = {
            "action": ("record.read", "reply.checked")[seq % 2],
            "actor": "agent:3",
            "details": {"n": seq, "text": "中文 ✓"},
            "prev": prev,
            "request_id": f"req-{seq}",
            "seq": seq,
            "subject": [f"cust:{seq:016x}"],
            "time": f"2026-01-01T00:{seq // 60:02d}:{seq % 60:02d}.000000Z",
        }
        out.append(canonical_json_stdlib(obj))
        prev = merkle.leaf_hash(out[-1]).hex()
    return tuple(out)


LEAVES = [merkle.leaf_hash(r) for r in raws()]


@cache
def signed(size: int, fork_at: int | None = None) -> SignedCheckpoint:
    leaves = list(LEAVES[:size])
    if fork_at is not None:
        leaves[fork_at] = merkle.leaf_hash(b"rewritten %d" % fork_at)
    return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.root_hash(leaves), 1_767_225_600_000 + size), LOG)


@st.composite
def bundles(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(2, MAX))
    seqs = sorted(draw(st.sets(st.integers(0, size - 1), min_size=1, max_size=6)))
    others = sorted(draw(st.sets(st.integers(1, MAX), max_size=4)) - {size})
    anchored = [o for o in others if draw(st.booleans())]
    cp = signed(size)
    note = merge_signatures(cp.text, WITNESS.cosign(cp.body, 1_767_225_700) + "\n")
    entries = [(s, raws()[s], merkle.inclusion_proof(LEAVES[:size], s)) for s in seqs]
    consistency = []
    for o in others:
        lo, hi = sorted((o, size))
        consistency.append((signed(o).text, merkle.consistency_proof(LEAVES[:hi], lo)))
    anchors = [
        {
            "chain": "ethereum",
            "network": "1",
            "contract": "0x" + "12" * 20,
            "tree_size": a,
            "root": signed(a).checkpoint.root_hash.hex(),
            "tx": "0x" + f"{a:064x}",
            "block": a,
            "status": "confirmed",
            "time": "2026-01-01T00:00:00Z",
        }
        for a in anchored
    ]
    return build_bundle_v2(ORIGIN, note, entries, consistency, anchors, {"subject": None})


def _verdict(bundle: object) -> Any:
    try:
        return verify_bundle(json.loads(json.dumps(bundle)), VERIFIER, witnesses=[WKEY])
    except BundleUnusable:
        return None


@SETTINGS
@given(bundles())
def test_honest_bundles_verify(bundle: dict[str, Any]) -> None:
    report = verify_bundle(bundle, VERIFIER, witnesses=[WKEY])
    assert report.ok, report.reason
    assert report.fork is None and report.entries_checked == len(bundle["entries"])


def _flip_char(text: str, pos: int) -> str:
    pos %= len(text)
    return text[:pos] + chr(ord(text[pos]) ^ 1) + text[pos + 1 :]


def _flip_hex(h: str, bit: int) -> str:
    raw = bytearray.fromhex(h)
    raw[(bit // 8) % 32] ^= 1 << (bit % 8)
    return raw.hex()


TAMPERS = (
    "entry text",
    "leaf hash",
    "inclusion path",
    "seq",
    "swap entries",
    "duplicate entry",
    "checkpoint",
    "consistency checkpoint",
    "consistency path",
    "anchor size",
    "anchor root",
)


@SETTINGS
@given(bundles(), st.sampled_from(TAMPERS), st.integers(0, 10_000), st.integers(1, 5))
def test_every_tamper_of_a_verified_field_is_rejected(
    bundle: dict[str, Any], tamper: str, where: int, delta: int
) -> None:
    b = copy.deepcopy(bundle)
    entries, cons, anchors = b["entries"], b["consistency"], b["anchors"]
    e = entries[where % len(entries)]
    if tamper == "entry text":
        e["entry"] = _flip_char(e["entry"], where)
    elif tamper == "leaf hash":
        e["leaf_hash"] = _flip_hex(e["leaf_hash"], where)
    elif tamper == "inclusion path":
        assume(e["inclusion_path"])
        i = where % len(e["inclusion_path"])
        e["inclusion_path"][i] = _flip_hex(e["inclusion_path"][i], where)
    elif tamper == "seq":
        e["seq"] += delta
    elif tamper == "swap entries":
        assume(len(entries) > 1)
        i = where % (len(entries) - 1)
        entries[i], entries[i + 1] = entries[i + 1], entries[i]
    elif tamper == "duplicate entry":
        entries.insert(where % len(entries), copy.deepcopy(e))
    elif tamper == "checkpoint":
        b["checkpoint"] = _flip_char(b["checkpoint"], where)
    elif tamper == "consistency checkpoint":
        assume(cons)
        c = cons[where % len(cons)]
        c["checkpoint"] = _flip_char(c["checkpoint"], where)
    elif tamper == "consistency path":
        assume(cons and any(c["path"] for c in cons))
        c = next(c for c in cons[where % len(cons) :] + cons if c["path"])
        i = where % len(c["path"])
        c["path"][i] = _flip_hex(c["path"][i], where)
    elif tamper == "anchor size":
        assume(anchors)
        anchors[where % len(anchors)]["tree_size"] += delta
    elif tamper == "anchor root":
        assume(anchors)
        a = anchors[where % len(anchors)]
        a["root"] = _flip_hex(a["root"], where)
    report = _verdict(b)
    assert report is None or not report.ok, (tamper, report.reason)


@SETTINGS
@given(st.integers(2, MAX), st.data())
def test_one_size_two_roots_is_always_a_fork(size: int, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, size - 1))
    fork = find_fork(signed(size), signed(size, at))
    assert fork is not None and fork.prefix_root is None


@SETTINGS
@given(st.integers(3, MAX), st.data())
def test_a_rewritten_prefix_is_a_fork_when_the_proof_shows_it(new: int, data: st.DataObject) -> None:
    """The forked log proves its new tree from its own history; the honest older checkpoint disagrees."""
    old = data.draw(st.integers(1, new - 1).filter(lambda m: m & (m - 1) != 0))
    at = data.draw(st.integers(0, old - 1))
    forked_leaves = list(LEAVES[:new])
    forked_leaves[at] = merkle.leaf_hash(b"rewritten %d" % at)
    proof = merkle.consistency_proof(forked_leaves, old)
    fork = find_fork(signed(old), signed(new, at), proof)
    assert fork is not None and fork.prefix_root == merkle.root_hash(forked_leaves[:old])
    # ...and an honest pair never is.
    assert find_fork(signed(old), signed(new), merkle.consistency_proof(LEAVES[:new], old)) is None


@pytest.mark.parametrize("old", [1, 2, 4, 8, 16, 32])
def test_a_power_of_two_prefix_cannot_show_another_root(old: int) -> None:
    """RFC 9162 leaves the old root out of such proofs; the bundle is then merely invalid, not a fork."""
    forked = list(LEAVES[:MAX])
    forked[0] = merkle.leaf_hash(b"rewritten 0")
    assert find_fork(signed(old), signed(MAX, 0), merkle.consistency_proof(forked, old)) is None
