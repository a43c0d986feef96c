"""Witness cosigning (c2sp.org/tlog-cosignature, tlog-witness): byte layout, checks, state."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import merkle
from ledger.checkpoint import Checkpoint, NoteSigner, NoteVerifier, parse_checkpoint, sign_checkpoint
from ledger.errors import (
    CheckpointInvalid,
    ConsistencyUnproven,
    CosignatureInvalid,
    CosignatureMissing,
    LogSignatureInvalid,
    UnknownLog,
    WitnessConflict,
    WitnessRequestInvalid,
)
from ledger.witness import (
    Witness,
    WitnessSigner,
    WitnessVerifier,
    cosignatures,
    format_add_checkpoint,
    merge_signatures,
    parse_add_checkpoint,
    verify_cosignature,
)

ORIGIN = "appliance.example/witnessed"
LEAVES = [merkle.leaf_hash(bytes([i])) for i in range(40)]
SEED = bytes(range(32))


def checkpoint(
    signer: NoteSigner, size: int, leaves: list[bytes] = LEAVES, ts: int = 1_767_225_600_000
) -> str:
    return sign_checkpoint(
        Checkpoint(signer.name, size, merkle.root_hash(leaves[:size]), ts + size), signer
    ).text


@pytest.fixture
def log() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture
def witness(tmp_path: Path, log: NoteSigner) -> Witness:
    return Witness(
        WitnessSigner.generate("witness.example/w1"),
        tmp_path / "state.json",
        [NoteVerifier.from_vkey(log.vkey())],
    )


# -- byte layout ---------------------------------------------------------------------------------------------
def test_key_id_matches_a_published_witness_vkey() -> None:
    """A real cosignature/v1 vkey (from transparency-dev/formats' tests): our key id derivation agrees."""
    vkey = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    v = WitnessVerifier.from_vkey(vkey)
    assert v.key_hash.hex() == "da77ade7"
    assert v.vkey() == vkey


def test_cosignature_layout_follows_the_spec_byte_for_byte(log: NoteSigner) -> None:
    """Re-derive the line from c2sp.org/tlog-cosignature's text with nothing but hashlib and Ed25519."""
    w = WitnessSigner("witness.example/w1", Ed25519PrivateKey.from_private_bytes(SEED))
    text = checkpoint(log, 8)
    body = parse_checkpoint(text).body
    line = w.cosign(body, 1_679_315_147)
    name, b64 = line.removeprefix("\u2014 ").split(" ")
    raw = base64.b64decode(b64)
    pub = Ed25519PrivateKey.from_private_bytes(SEED).public_key()
    pub_raw = pub.public_bytes_raw()
    assert name == "witness.example/w1"
    assert raw[:4] == hashlib.sha256(b"witness.example/w1\n\x04" + pub_raw).digest()[:4]
    assert raw[4:12] == (1_679_315_147).to_bytes(8, "big")
    pub.verify(raw[12:], b"cosignature/v1\ntime 1679315147\n" + body)  # raises if not
    assert len(raw) == 4 + 8 + 64
    assert w.vkey() == f"witness.example/w1+{raw[:4].hex()}+" + base64.b64encode(b"\x04" + pub_raw).decode()


def test_known_answer_vector(vectors) -> None:  # type: ignore[no-untyped-def]
    """Pins the exact line for a fixed key, note and time (Ed25519 is deterministic)."""
    v = vectors("witness/cosignature_v1.json")
    w = WitnessSigner.from_skey(v["skey"])
    assert w.vkey() == v["vkey"]
    assert w.cosign(v["note_text"].encode(), v["time"]) == v["cosignature"]
    assert verify_cosignature(v["cosigned_note"], v["vkey"]) == v["time"]


def test_skeys_roundtrip_and_go_ed25519_note_keys_are_read(log: NoteSigner) -> None:
    w = WitnessSigner.generate("w.example/2")
    again = WitnessSigner.from_skey(w.skey())
    assert again.vkey() == w.vkey()
    # A 0x01 note key (what `note.GenerateKey` writes) becomes a cosigning key, as Go's
    # NewSignerForCosignatureV1 does: same seed, key id over 0x04.
    note_key = NoteSigner.generate("w.example/3")
    converted = WitnessSigner.from_skey(note_key.skey())
    assert converted.public_key.public_bytes_raw() == note_key.public_key.public_bytes_raw()
    assert converted.key_hash != note_key.key_hash
    assert base64.b64decode(converted.vkey().split("+", 2)[2])[:1] == b"\x04"
    with pytest.raises(CheckpointInvalid, match="PRIVATE"):
        WitnessSigner.from_skey("w+1234abcd+AAAA")
    with pytest.raises(CheckpointInvalid, match="key id"):
        WitnessSigner.from_skey(w.skey().replace(w.key_hash.hex(), "00000000"))


@pytest.mark.parametrize(
    ("vkey", "message"),
    [
        ("nonsense", "must look like"),
        ("w+zzzzzzzz+BA==", "must look like"),
        ("w+12345678+!!", "canonical base64"),
        ("w+12345678+" + base64.b64encode(b"\x04" + bytes(31)).decode(), "32-byte"),
    ],
)
def test_unusable_witness_keys(vkey: str, message: str) -> None:
    with pytest.raises(CheckpointInvalid, match=message):
        WitnessVerifier.from_vkey(vkey)


def test_a_log_key_is_not_taken_for_a_witness_key(log: NoteSigner) -> None:
    with pytest.raises(CheckpointInvalid, match="0x04"):
        WitnessVerifier.from_vkey(log.vkey())


def test_wrong_key_id_is_refused() -> None:
    vkey = WitnessSigner.generate("w.example").vkey()
    name, _, key = vkey.split("+", 2)
    with pytest.raises(CheckpointInvalid, match="does not match"):
        WitnessVerifier.from_vkey(f"{name}+00000000+{key}")


# -- verifying cosignatures --------------------------------------------------------------------------------
def test_verify_cosignature_and_tampering(witness: Witness, log: NoteSigner) -> None:
    text = checkpoint(log, 8)
    cosigned = text + witness.add_checkpoint(0, [], text)
    when = verify_cosignature(cosigned, witness.vkey())
    assert abs(when - __import__("time").time()) < 60
    with pytest.raises(CosignatureInvalid, match="not cosigned"):
        verify_cosignature(text, witness.vkey())
    other = WitnessSigner.generate("witness.example/w1")  # same name, another key
    with pytest.raises(CosignatureInvalid, match="not cosigned"):
        verify_cosignature(cosigned, other.vkey())
    lines = cosigned.split("\n")
    lines[1] = "9"  # the size
    with pytest.raises(CosignatureInvalid, match="does not verify"):
        verify_cosignature("\n".join(lines), witness.vkey())
    # The timestamp is signed too: moving it breaks the signature.
    sig = cosigned.rstrip("\n").split("\n")[-1]
    raw = bytearray(base64.b64decode(sig.split(" ")[-1]))
    raw[11] ^= 1
    forged = cosigned.replace(sig.split(" ")[-1], base64.b64encode(bytes(raw)).decode())
    with pytest.raises(CosignatureInvalid, match="does not verify"):
        verify_cosignature(forged, witness.vkey())


def test_cosignatures_reports_each_witness(witness: Witness, log: NoteSigner) -> None:
    text = checkpoint(log, 5)
    cosigned = text + witness.add_checkpoint(0, [], text)
    absent = WitnessVerifier.from_vkey(WitnessSigner.generate("w.example/absent").vkey())
    results = cosignatures(parse_checkpoint(cosigned), [WitnessVerifier.from_vkey(witness.vkey()), absent])
    assert results[0][1].name == "witness.example/w1"  # type: ignore[union-attr]
    assert isinstance(results[1][1], CosignatureMissing)


def test_merge_signatures_keeps_one_line_per_key(witness: Witness, log: NoteSigner) -> None:
    text = checkpoint(log, 5)
    first = witness.add_checkpoint(0, [], text)
    second_witness = WitnessSigner.generate("w.example/2")
    second = second_witness.cosign(parse_checkpoint(text).body, 1_700_000_000)
    merged = merge_signatures(merge_signatures(text, first), second + "\n")
    again = merge_signatures(merged, first)  # idempotent
    assert again.count("\u2014 ") == 3
    assert verify_cosignature(again, witness.vkey()) > 0
    assert verify_cosignature(again, second_witness.vkey()) == 1_700_000_000
    with pytest.raises(CheckpointInvalid):
        merge_signatures(text, "not a signature line")


# -- the add-checkpoint request ----------------------------------------------------------------------------
def test_request_body_roundtrip(log: NoteSigner) -> None:
    text = checkpoint(log, 13)
    proof = merkle.consistency_proof(LEAVES[:13], 8)
    body = format_add_checkpoint(8, proof, text)
    assert body.startswith(b"old 8\n") and b"\n\n" + text.encode() in body
    assert parse_add_checkpoint(body) == (8, proof, text)
    assert parse_add_checkpoint(format_add_checkpoint(0, [], text)) == (0, [], text)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"old 8\n", "empty line"),
        (b"old 08\n\nx", "old <size>"),
        (b"new 8\n\nx", "old <size>"),
        (b"old 8\nnot base64\n\nx", "proof line 1"),
        (b"old 8\n" + base64.b64encode(bytes(31)) + b"\n\nx", "proof line 1"),
        (
            b"old 8\n" + b"".join(base64.b64encode(bytes(32)) + b"\n" for _ in range(64)) + b"\nx",
            "at most 63",
        ),
        (b"\xff\n\n", "UTF-8"),
    ],
)
def test_malformed_requests(body: bytes, message: str) -> None:
    with pytest.raises(WitnessRequestInvalid, match=message):
        parse_add_checkpoint(body)


# -- the witness ---------------------------------------------------------------------------------------------
def test_witness_follows_a_growing_log(witness: Witness, log: NoteSigner, tmp_path: Path) -> None:
    line = witness.add_checkpoint(0, [], checkpoint(log, 8))
    assert line.startswith("\u2014 witness.example/w1 ") and line.endswith("\n")
    for old, new in ((8, 13), (13, 13), (13, 40)):
        text = checkpoint(log, new)
        proof = merkle.consistency_proof(LEAVES[:new], old) if old != new else []
        assert verify_cosignature(text + witness.add_checkpoint(old, proof, text), witness.vkey()) > 0
    head = witness.heads()[ORIGIN]
    assert (head.tree_size, head.root_hash) == (40, merkle.root_hash(LEAVES))
    # The state is on disk: a new witness process over the same file continues from it.
    again = Witness(witness.signer, tmp_path / "state.json", [NoteVerifier.from_vkey(log.vkey())])
    with pytest.raises(WitnessConflict) as conflict:
        again.add_checkpoint(13, [], checkpoint(log, 13))
    assert conflict.value.size == 40 and not conflict.value.fork
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600


def test_conflict_carries_the_witness_size(witness: Witness, log: NoteSigner) -> None:
    witness.add_checkpoint(0, [], checkpoint(log, 8))
    with pytest.raises(WitnessConflict, match="send a consistency proof from 8") as exc:
        witness.add_checkpoint(0, [], checkpoint(log, 13))
    assert exc.value.size == 8


def test_a_fork_is_refused_and_kept_as_evidence(witness: Witness, log: NoteSigner, tmp_path: Path) -> None:
    witness.add_checkpoint(0, [], checkpoint(log, 8))
    forked = [merkle.leaf_hash(b"rewritten"), *LEAVES[1:]]
    text = checkpoint(log, 8, forked)
    with pytest.raises(WitnessConflict, match="forked") as exc:
        witness.add_checkpoint(8, [], text)
    assert exc.value.fork
    # Growing from the fork: the proof cannot link it to what the witness cosigned.
    text13 = checkpoint(log, 13, forked)
    with pytest.raises(ConsistencyUnproven):
        witness.add_checkpoint(8, merkle.consistency_proof(forked[:13], 8), text13)
    kept = [json.loads(line) for line in (tmp_path / "conflicts.jsonl").read_text().splitlines()]
    assert [k["kind"] for k in kept] == ["fork", "inconsistent"]
    assert kept[0]["checkpoint"] == text and kept[0]["cosigned"]["tree_size"] == 8
    assert witness.heads()[ORIGIN].tree_size == 8, "nothing refused changes the state"


def test_refusals(witness: Witness, log: NoteSigner) -> None:
    text = checkpoint(log, 8)
    with pytest.raises(UnknownLog, match="no log"):
        witness.add_checkpoint(0, [], checkpoint(NoteSigner.generate("other.example/log"), 8))
    impostor = NoteSigner.generate(ORIGIN)
    with pytest.raises(LogSignatureInvalid):
        witness.add_checkpoint(0, [], checkpoint(impostor, 8))
    with pytest.raises(WitnessRequestInvalid, match="larger"):
        witness.add_checkpoint(9, [], text)
    with pytest.raises(WitnessRequestInvalid, match="empty when the old size is 0"):
        witness.add_checkpoint(0, [LEAVES[0]], text)
    with pytest.raises(WitnessRequestInvalid, match="checkpoint"):
        witness.add_checkpoint(0, [], "not a note")
    assert witness.heads() == {}


def test_concurrent_submissions_never_roll_back(witness: Witness, log: NoteSigner) -> None:
    """The spec's race: check and persist are one step, so the state only grows."""
    witness.add_checkpoint(0, [], checkpoint(log, 4))
    results: list[int] = []

    def submit(new: int) -> None:
        text = checkpoint(log, new)
        try:
            witness.add_checkpoint(4, merkle.consistency_proof(LEAVES[:new], 4), text)
            results.append(new)
        except WitnessConflict:
            pass

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(5, 40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1, "only the first submission from size 4 can win"
    assert witness.heads()[ORIGIN].tree_size == results[0]
