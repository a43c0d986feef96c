"""Signed checkpoints: Go sumdb/note known answers, C2SP grammar, tamper rejection."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from ledger.checkpoint import (
    Checkpoint,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    add_cosignature,
    load_verifier,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from ledger.errors import CheckpointInvalid, LedgerError

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "checkpoint"
ORIGIN = "example.com/appliance-test"
ROOT = bytes(range(32))


def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text("utf-8"))


@pytest.fixture(scope="module")
def go() -> dict[str, Any]:
    return _load("go_sumdb_note.json")


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return _load("appliance_checkpoint.json")


@pytest.fixture(scope="module")
def log_signer() -> NoteSigner:
    return NoteSigner.generate(ORIGIN)


@pytest.fixture(scope="module")
def log_verifier(log_signer: NoteSigner) -> NoteVerifier:
    return NoteVerifier.from_vkey(log_signer.vkey())


def _signed(signer: NoteSigner, size: int = 5, ts: int = 1_767_225_600_000) -> str:
    return sign_checkpoint(Checkpoint(signer.name, size, ROOT, ts), signer).text


def _line_sig(line: str) -> bytes:
    """The signature bytes (without key id) of a signature line."""
    return base64.b64decode(line.split(" ")[2])[4:]


# -- Known answers from golang.org/x/mod/sumdb/note -------------------------------------------------


def test_go_signer_key_gives_go_key_hash_vkey_and_skey(go: dict[str, Any]) -> None:
    signer = NoteSigner.from_skey(go["peter"]["skey"])
    assert signer.name == "PeterNeumann"
    assert signer.key_hash.hex() == go["peter"]["key_hash"]
    assert signer.vkey() == go["peter"]["vkey"]
    assert signer.skey() == go["peter"]["skey"]


@pytest.mark.parametrize("who", ["peter", "enoch"])
def test_go_verifier_keys_parse_and_round_trip(go: dict[str, Any], who: str) -> None:
    verifier = NoteVerifier.from_vkey(go[who]["vkey"])
    assert verifier.name == go[who]["name"]
    assert verifier.key_hash.hex() == go[who]["key_hash"]
    assert verifier.vkey() == go[who]["vkey"]


def test_go_signature_line_is_reproduced_byte_for_byte(go: dict[str, Any]) -> None:
    signer = NoteSigner.from_skey(go["peter"]["skey"])
    assert signer.sign(go["text"].encode()) == go["peter_sig"]


@pytest.mark.parametrize("who", ["peter", "enoch"])
def test_go_signatures_verify_and_reject_a_changed_text(go: dict[str, Any], who: str) -> None:
    verifier = NoteVerifier.from_vkey(go[who]["vkey"])
    line = go[f"{who}_sig"]
    assert base64.b64decode(line.split(" ")[2])[:4] == verifier.key_hash
    assert verifier.verify(go["text"].encode(), _line_sig(line))
    assert not verifier.verify(go["text"].encode() + b"x\n", _line_sig(line))
    assert not verifier.verify(go["text"].encode(), _line_sig(line)[:-1])


def test_go_verifier_key_manglings_are_rejected(go: dict[str, Any]) -> None:
    # TestNewVerifier: every proper substring and every single-byte increment must fail.
    vkey = go["peter"]["vkey"]
    for i in range(len(vkey)):
        for j in range(i + 1, len(vkey) + 1):
            if (i, j) != (0, len(vkey)):
                with pytest.raises(CheckpointInvalid):
                    NoteVerifier.from_vkey(vkey[i:j])
    for i in range(len(vkey)):
        with pytest.raises(CheckpointInvalid):
            NoteVerifier.from_vkey(vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1 :])
    for reason, bad in go["bad_vkeys"].items():
        with pytest.raises(CheckpointInvalid):
            NoteVerifier.from_vkey(bad)
            pytest.fail(reason)


def test_go_signer_key_manglings_are_rejected(go: dict[str, Any]) -> None:
    skey = go["peter"]["skey"]
    for i in range(len(skey)):
        for j in range(i + 1, len(skey) + 1):
            if (i, j) != (0, len(skey)):
                with pytest.raises(CheckpointInvalid):
                    NoteSigner.from_skey(skey[i:j])
    for i in range(len(skey)):
        with pytest.raises(CheckpointInvalid):
            NoteSigner.from_skey(skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1 :])


def test_go_malformed_note_shapes_are_rejected(golden: dict[str, Any], go: dict[str, Any]) -> None:
    # TestOpen's bad messages, with our checkpoint in place of Go's free text.
    body, _, sig = golden["text"].partition("\n\n")
    for template in go["malformed_notes"]:
        with pytest.raises(CheckpointInvalid):
            parse_checkpoint(template.format(text=body + "\n", peter_sig=sig.rstrip("\n")))
    with pytest.raises(CheckpointInvalid, match="UTF-8"):
        parse_checkpoint(b"\xff" + golden["text"].encode())


# -- Regression vector and round trips ----------------------------------------------------------------


def test_golden_checkpoint_is_reproduced_and_verifies(golden: dict[str, Any]) -> None:
    signer = NoteSigner.from_private_bytes(golden["origin"], bytes.fromhex(golden["seed"]))
    assert signer.vkey() == golden["vkey"]
    cp = Checkpoint(
        golden["origin"], golden["tree_size"], bytes.fromhex(golden["root_hash"]), golden["timestamp_ms"]
    )
    assert sign_checkpoint(cp, signer).text == golden["text"]
    signed = verify_checkpoint(golden["text"], load_verifier(golden["vkey"]))
    assert signed.checkpoint == cp
    assert signed.body == cp.body()


def test_body_layout_is_origin_size_root_timestamp() -> None:
    cp = Checkpoint("log.example/a", 7, ROOT, 42)
    root64 = base64.b64encode(ROOT).decode()
    assert cp.body() == f"log.example/a\n7\n{root64}\ntimestamp 42\n".encode()


@given(
    origin=st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp")), min_size=1).filter(
        lambda s: "+" not in s and not any(c.isspace() for c in s)
    ),
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    ts=st.integers(0, 2**64 - 1),
)
def test_sign_parse_verify_round_trip(origin: str, size: int, root: bytes, ts: int) -> None:
    signer = NoteSigner.from_private_bytes(origin, bytes(32))
    signed = sign_checkpoint(Checkpoint(origin, size, root, ts), signer)
    again = verify_checkpoint(signed.text.encode("utf-8"), NoteVerifier(origin, signer.public_key))
    assert again == signed
    assert again.checkpoint == Checkpoint(origin, size, root, ts)
    assert again.signatures == (NoteSignature(origin, signer.key_hash, again.signatures[0].signature),)


def test_signer_seed_round_trip_and_repr_hides_the_key() -> None:
    signer = NoteSigner.generate("log.example")
    again = NoteSigner.from_private_bytes("log.example", signer.private_bytes())
    assert again.vkey() == signer.vkey()
    assert len(signer.private_bytes()) == 32
    assert signer.private_bytes().hex() not in repr(signer)
    assert signer.skey() not in repr(signer)


# -- Tampering ---------------------------------------------------------------------------------------------


def test_every_single_bit_flip_of_a_signed_checkpoint_is_rejected(golden: dict[str, Any]) -> None:
    verifier = load_verifier(golden["vkey"])
    raw = golden["text"].encode("utf-8")
    verify_checkpoint(raw, verifier)
    for pos in range(len(raw)):
        for bit in range(8):
            tampered = bytearray(raw)
            tampered[pos] ^= 1 << bit
            with pytest.raises(CheckpointInvalid):
                verify_checkpoint(bytes(tampered), verifier)
                pytest.fail(f"flip of bit {bit} at byte {pos} verified")


def test_a_root_with_stray_base64_bits_is_not_a_second_spelling_of_the_same_checkpoint(
    log_signer: NoteSigner,
) -> None:
    text = _signed(log_signer)
    root64 = base64.b64encode(ROOT).decode()  # ends in "8=": "9=" decodes to the same bytes
    assert base64.b64decode(root64[:-2] + "9=") == ROOT
    with pytest.raises(CheckpointInvalid, match="root hash"):
        parse_checkpoint(text.replace(root64, root64[:-2] + "9="))


def test_signature_by_another_key_with_the_log_name_is_rejected(log_verifier: NoteVerifier) -> None:
    impostor = NoteSigner.generate(ORIGIN)
    with pytest.raises(CheckpointInvalid, match="not signed by key"):
        verify_checkpoint(_signed(impostor), log_verifier)


def test_checkpoint_for_another_origin_is_rejected(log_signer: NoteSigner) -> None:
    other = NoteSigner.generate("other.example/log")
    text = _signed(other)
    with pytest.raises(CheckpointInvalid, match="origin"):
        verify_checkpoint(text, NoteVerifier("other.example/log-2", other.public_key))
    with pytest.raises(CheckpointInvalid, match="origin"):
        verify_checkpoint(text, NoteVerifier.from_vkey(log_signer.vkey()))


def test_a_log_signs_only_its_own_origin(log_signer: NoteSigner) -> None:
    with pytest.raises(CheckpointInvalid, match="origin"):
        sign_checkpoint(Checkpoint("other.example/log", 1, ROOT, 0), log_signer)


def test_failing_signature_by_the_log_key_is_rejected_even_with_valid_cosignatures(
    log_signer: NoteSigner, log_verifier: NoteVerifier
) -> None:
    text = add_cosignature(_signed(log_signer), NoteSigner.generate("witness.example"))
    forged = text.replace("\n5\n", "\n6\n", 1)
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        verify_checkpoint(forged, log_verifier)


# -- Cosignatures -------------------------------------------------------------------------------------


def test_cosignatures_keep_the_log_signature_valid(
    log_signer: NoteSigner, log_verifier: NoteVerifier
) -> None:
    witnesses = [NoteSigner.generate(f"witness{i}.example") for i in range(3)]
    text = _signed(log_signer)
    for w in witnesses:
        text = add_cosignature(text, w)
    signed = verify_checkpoint(text, log_verifier)
    assert [s.name for s in signed.signatures] == [ORIGIN] + [w.name for w in witnesses]
    for w in witnesses:
        assert signed.verified_by(NoteVerifier.from_vkey(w.vkey()))
    assert not signed.verified_by(NoteVerifier.from_vkey(NoteSigner.generate("witness0.example").vkey()))
    with pytest.raises(CheckpointInvalid, match="origin"):
        verify_checkpoint(text, NoteVerifier.from_vkey(witnesses[0].vkey()))


def test_cosigning_twice_with_one_key_replaces_its_line(log_signer: NoteSigner) -> None:
    witness = NoteSigner.generate("witness.example")
    once = add_cosignature(_signed(log_signer), witness)
    assert add_cosignature(once, witness) == once
    assert once.count("\u2014 witness.example ") == 1


def test_cosigning_requires_a_checkpoint(go: dict[str, Any]) -> None:
    with pytest.raises(CheckpointInvalid):
        add_cosignature(go["text"] + "\n" + go["peter_sig"] + "\n", NoteSigner.generate("w.example"))


# -- Grammar -------------------------------------------------------------------------------------------


def _with_body(signer: NoteSigner, body: str) -> str:
    return f"{body}\n{signer.sign(body.encode())}\n"


def test_unknown_extension_lines_are_kept_in_the_signed_body(
    log_signer: NoteSigner, log_verifier: NoteVerifier
) -> None:
    body = Checkpoint(ORIGIN, 3, ROOT, 9).body().decode() + "x-anchor eth:0xabc\n"
    text = _with_body(log_signer, body)
    signed = verify_checkpoint(text, log_verifier)
    assert signed.checkpoint == Checkpoint(ORIGIN, 3, ROOT, 9)
    assert signed.body == body.encode()
    with pytest.raises(CheckpointInvalid, match="does not verify"):
        verify_checkpoint(text.replace("0xabc", "0xabd"), log_verifier)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n", "lines"),
        (f"{ORIGIN}\n05\n{base64.b64encode(ROOT).decode()}\ntimestamp 1\n", "tree size"),
        (f"{ORIGIN}\n-5\n{base64.b64encode(ROOT).decode()}\ntimestamp 1\n", "tree size"),
        (f"{ORIGIN}\n 5\n{base64.b64encode(ROOT).decode()}\ntimestamp 1\n", "tree size"),
        (f"{ORIGIN}\n{2**64}\n{base64.b64encode(ROOT).decode()}\ntimestamp 1\n", "tree size"),
        (f"{ORIGIN}\n{'9' * 5000}\n{base64.b64encode(ROOT).decode()}\ntimestamp 1\n", "tree size"),
        (f"{ORIGIN}\n5\n{base64.b64encode(ROOT[:31]).decode()}\ntimestamp 1\n", "root hash"),
        (f"{ORIGIN}\n5\n{ROOT.hex()}\ntimestamp 1\n", "root hash"),
        (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\nx-other 1\n", "timestamp"),
        (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\ntimestamp 1\ntimestamp 2\n", "timestamp"),
        (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\ntimestamp 01\n", "timestamp"),
        (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\ntimestamp\n", "timestamp"),
        (f"{ORIGIN}\n5\n{base64.b64encode(ROOT).decode()}\n\ntimestamp 1\n", "empty extension"),
        (f"\n5\n{base64.b64encode(ROOT).decode()}\ntimestamp 1\n", "origin"),
    ],
)
def test_malformed_checkpoint_bodies_are_rejected(log_signer: NoteSigner, body: str, match: str) -> None:
    with pytest.raises(CheckpointInvalid, match=match):
        parse_checkpoint(_with_body(log_signer, body))


def test_malformed_signature_blocks_are_rejected(log_signer: NoteSigner) -> None:
    text = _signed(log_signer)
    body, sig_line = text[: text.index("\n\n") + 1], text[text.index("\n\n") + 2 : -1]
    name_and_b64 = sig_line[2:]
    b64 = name_and_b64.split(" ")[1]
    witness = NoteSigner.generate("w.example").sign(body.encode())
    bad = {
        "no blank line": body + sig_line + "\n",
        "no signature lines": body + "\n",
        "no final newline": body + "\n" + sig_line,
        "ASCII hyphen": body + "\n- " + name_and_b64 + "\n",
        "no space after dash": body + "\n\u2014" + name_and_b64 + "\n",
        "duplicate line": body + "\n" + sig_line + "\n" + sig_line + "\n",
        "empty name": body + "\n\u2014  " + b64 + "\n",
        "plus in name": body + "\n\u2014 a+b " + b64 + "\n",
        "unpadded base64": body + "\n\u2014 " + ORIGIN + " " + b64.rstrip("=") + "\n",
        "short signature": body + "\n\u2014 " + ORIGIN + " AAAAAA==\n",
        "not base64": body + "\n\u2014 " + ORIGIN + " !!!!\n",
        "trailing text line": body + "\n" + sig_line + "\nUnexpected line.\n",
        "CRLF": (body + "\n" + sig_line + "\n").replace("\n", "\r\n"),
        "lone surrogate": body.replace(ORIGIN, ORIGIN + "\ud800") + "\n" + sig_line + "\n",
        "too many signatures": body + "\n" + sig_line + "\n" + (witness + "\n") * 100,
    }
    for reason, note in bad.items():
        with pytest.raises(CheckpointInvalid):
            parse_checkpoint(note)
            pytest.fail(reason)
    # The spec requires accepting at least 16 signatures.
    many = "".join(NoteSigner.generate(f"w{i}.example").sign(body.encode()) + "\n" for i in range(16))
    assert len(parse_checkpoint(text + many).signatures) == 17


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": ""},
        {"origin": "a\nb"},
        {"origin": "a\rb"},
        {"tree_size": -1},
        {"tree_size": 2**64},
        {"tree_size": True},
        {"root_hash": ROOT[:31]},
        {"root_hash": ROOT.hex()},
        {"timestamp_ms": -1},
        {"timestamp_ms": 1.5},
    ],
)
def test_checkpoint_fields_are_validated(kwargs: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"origin": ORIGIN, "tree_size": 1, "root_hash": ROOT, "timestamp_ms": 0} | kwargs
    with pytest.raises(CheckpointInvalid):
        Checkpoint(**fields)


def test_checkpoint_root_is_normalised_to_bytes() -> None:
    assert type(Checkpoint(ORIGIN, 1, bytearray(ROOT), 0).root_hash) is bytes  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", "a b", "a+b", "a\u00a0b", "a\nb", 7])
def test_key_names_follow_the_note_rules(name: Any) -> None:
    with pytest.raises(CheckpointInvalid):
        NoteSigner.generate(name)
    with pytest.raises(CheckpointInvalid):
        NoteVerifier(name, Ed25519PrivateKey.generate().public_key())


def test_signing_needs_a_newline_terminated_text(log_signer: NoteSigner) -> None:
    with pytest.raises(CheckpointInvalid, match="newline"):
        log_signer.sign(b"no newline")


def test_errors_are_ledger_errors() -> None:
    assert issubclass(CheckpointInvalid, LedgerError)


# -- Loading an auditor's key ------------------------------------------------------------------------


def test_load_verifier_accepts_vkey_pem_and_hex(log_signer: NoteSigner) -> None:
    pem = log_signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = log_signer.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    loaded = [
        load_verifier(log_signer.vkey()),
        load_verifier(log_signer.vkey().encode() + b"\n", name="ignored.example"),
        load_verifier(pem, name=ORIGIN),
        load_verifier(pem.decode(), name=ORIGIN),
        load_verifier(raw.hex(), name=ORIGIN),
        load_verifier(raw.hex().upper() + "\n", name=ORIGIN),
    ]
    for verifier in loaded:
        assert (verifier.name, verifier.key_hash) == (ORIGIN, log_signer.key_hash)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"\xff\xfe", "not text"),
        ("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "PEM"),
        ("not a key", "verifier key"),
        ("ab" * 31, "verifier key"),
    ],
)
def test_load_verifier_rejects_garbage_with_a_reason(data: str | bytes, match: str) -> None:
    with pytest.raises(CheckpointInvalid, match=match):
        load_verifier(data, name=ORIGIN)


def test_load_verifier_needs_a_name_for_pem_and_hex_and_refuses_other_keys(log_signer: NoteSigner) -> None:
    pem = log_signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(CheckpointInvalid, match="name"):
        load_verifier(pem)
    with pytest.raises(CheckpointInvalid, match="name"):
        load_verifier(log_signer.private_bytes().hex())
    x25519 = (
        X25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(CheckpointInvalid, match="Ed25519"):
        load_verifier(x25519, name=ORIGIN)
    private_pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CheckpointInvalid, match="not a public key"):
        load_verifier(private_pem, name=ORIGIN)


def test_signer_seed_must_be_32_bytes() -> None:
    with pytest.raises(CheckpointInvalid, match="32 bytes"):
        NoteSigner.from_private_bytes(ORIGIN, bytes(31))
