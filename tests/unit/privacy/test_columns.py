"""Encrypted columns: slot layout per segment, nulls and validity masks, histogram indicators, bounds,
incremental append (never re-encrypting), save/load with digests, tampering, and the Paillier kind."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.privacy import (
    CiphertextInvalid,
    EncryptedColumn,
    HEParameters,
    KeyRing,
    KeyUnavailable,
    PaillierColumn,
    PublicContexts,
    QueryInvalid,
    SecretContexts,
    decode_paillier,
    encrypt_column,
    encrypt_paillier_column,
    load_column,
)

TEST_PARAMS = HEParameters(paillier_bits=1024)
SLOTS_CKKS = 4096


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[PublicContexts, SecretContexts]:
    ring = KeyRing.generate(tmp_path_factory.mktemp("ring"), None, TEST_PARAMS)
    return ring.public(), ring.secret()


def decrypted(
    secret: SecretContexts, col: EncryptedColumn, which: str = "values", bucket: int = 0
) -> dict[Any, np.ndarray]:
    """Segment key -> the plaintext slots of its rows (what the custodian would see)."""
    ctx = secret.scheme(col.scheme)
    out = {}
    for seg in col.segments:
        cts = {
            "values": seg.values,
            "validity": seg.validity or (),
            "indicators": seg.indicators[bucket] if seg.indicators else (),
        }[which]
        flat = np.concatenate([ctx.decrypt(ct) for ct in cts]) if cts else np.zeros(0)
        assert np.all(np.abs(flat[seg.rows :]) < 1e-3)  # unused slots hold zeros
        out[seg.key] = flat[: seg.rows]
    return out


def test_rows_are_packed_per_segment_in_slot_order(keys: tuple[PublicContexts, SecretContexts]) -> None:
    public, secret = keys
    rng = np.random.default_rng(1)
    n = 9000
    values = rng.normal(0, 100, n)
    ids = rng.permutation(50_000)[:n]
    region = rng.choice(np.array(["EU", "US", None], dtype=object), n)
    tier = rng.integers(1, 3, n)
    col = encrypt_column(public, "bal", values, ids, {"tier": tier, "region": region})
    assert col.visible == ("region", "tier") and col.rows == n
    assert {s.key for s in col.segments} == {(r, t) for r in ("EU", "US", None) for t in (1, 2)}
    by_id = dict(zip(ids.tolist(), values.tolist(), strict=True))
    for key, slots in decrypted(secret, col).items():
        seg = col.by_key[key]
        in_segment = [i for i, r, t in zip(ids.tolist(), region, tier.tolist(), strict=True) if (r, t) == key]
        assert seg.row_ids.tolist() == in_segment  # input order within the segment
        assert len(seg.values) == math.ceil(seg.rows / SLOTS_CKKS)
        assert np.allclose(slots, [by_id[i] for i in in_segment], atol=1e-5)
    assert col.bound == 512.0  # the power of two above max |x| ~ 400; only that is disclosed
    assert not col.nullable


def test_nulls_encrypt_as_zero_with_an_encrypted_validity_mask(
    keys: tuple[PublicContexts, SecretContexts],
) -> None:
    public, secret = keys
    x = np.array([1.5, np.nan, -2.0, np.nan, 4.0])
    col = encrypt_column(public, "x", x, np.arange(5), {})
    assert col.nullable
    assert np.allclose(decrypted(secret, col)[()], [1.5, 0, -2.0, 0, 4.0], atol=1e-6)
    assert np.allclose(decrypted(secret, col, "validity")[()], [1, 0, 1, 0, 1], atol=1e-6)
    masked = encrypt_column(public, "y", np.array([1.0, 2.0]), np.arange(2), {}, nullable=True)
    assert masked.nullable and masked.segments[0].validity is not None
    plain = encrypt_column(public, "z", np.array([1.0, 2.0]), np.arange(2), {})
    assert plain.segments[0].validity is None
    with pytest.raises(QueryInvalid, match=r"has nulls .* nullable=True"):
        encrypt_column(public, "x", x, np.arange(5), {}, nullable=False)


def test_histogram_buckets_are_encrypted_indicators(keys: tuple[PublicContexts, SecretContexts]) -> None:
    public, secret = keys
    age = np.array([17.0, 18.0, 29.0, 30.0, 64.0, 65.0, np.nan])
    col = encrypt_column(public, "age", age, np.arange(7), {}, scheme="bfv", buckets=[18, 30, 65])
    assert list(decrypted(secret, col, "indicators", 0)[()]) == [0, 1, 1, 0, 0, 0, 0]
    assert list(decrypted(secret, col, "indicators", 1)[()]) == [0, 0, 0, 1, 1, 0, 0]
    with pytest.raises(QueryInvalid, match="strictly increasing"):
        encrypt_column(public, "age", age, np.arange(7), {}, buckets=[30, 18])


@pytest.mark.parametrize(
    ("kwargs", "values", "message"),
    [
        ({"scheme": "bfv"}, [1.0, 2.5], "not an integer"),
        ({"kind": "flag"}, [0.0, 2.0], "is not 0 or 1"),
        ({"bound": 10.0}, [1.0, -11.0], "exceeds the declared bound"),
        ({"bound": -1.0}, [1.0, 2.0], "positive finite"),
        ({}, [1.0, math.inf], "infinite values"),
        ({"scheme": "paillier"}, [1.0, 2.0], "scheme 'paillier'"),
    ],
)
def test_bad_values_are_refused_at_encryption(
    keys: tuple[PublicContexts, SecretContexts], kwargs: dict[str, Any], values: list[float], message: str
) -> None:
    with pytest.raises(QueryInvalid, match=message):
        encrypt_column(keys[0], "c", np.array(values), np.arange(len(values)), {}, **kwargs)


def test_row_shapes_are_checked(keys: tuple[PublicContexts, SecretContexts]) -> None:
    public = keys[0]
    with pytest.raises(QueryInvalid, match="row ids repeat"):
        encrypt_column(public, "c", np.array([1.0, 2.0]), np.array([3, 3]), {})
    with pytest.raises(QueryInvalid, match="equal length"):
        encrypt_column(public, "c", np.array([1.0, 2.0]), np.array([3]), {})
    with pytest.raises(QueryInvalid, match="has 1 values for 2 rows"):
        encrypt_column(public, "c", np.array([1.0, 2.0]), np.array([1, 2]), {"r": np.array(["a"])})
    with pytest.raises(QueryInvalid, match="not categorical"):
        encrypt_column(public, "c", np.array([1.0, 2.0]), np.array([1, 2]), {"r": np.array([0.5, 1.5])})


def test_append_fills_the_last_ciphertext_and_never_re_encrypts(
    keys: tuple[PublicContexts, SecretContexts],
) -> None:
    public, secret = keys
    n = SLOTS_CKKS + 100
    rng = np.random.default_rng(2)
    x = rng.normal(10, 3, n)
    region = np.array(["EU"] * n)
    col = encrypt_column(public, "x", x, np.arange(n), {"region": region}, bound=64.0)
    eu = col.by_key[("EU",)]
    assert len(eu.values) == 2
    more = rng.normal(10, 3, 300)
    new_region = np.array(["EU"] * 250 + ["US"] * 50)
    grown = col.append(public, more, np.arange(n, n + 300), {"region": new_region})
    eu2 = grown.by_key[("EU",)]
    assert eu2.values[0] is eu.values[0]  # the full ciphertext is the very same object
    assert eu2.values[1] is not eu.values[1] and len(eu2.values) == 2  # the partial one was filled
    assert grown.by_key[("US",)].rows == 50
    assert col.rows == n and grown.rows == n + 300  # the old column is unchanged
    slots = decrypted(secret, grown)
    assert np.allclose(slots[("EU",)], np.concatenate([x, more[:250]]), atol=1e-6)
    assert np.allclose(slots[("US",)], more[250:], atol=1e-6)
    with pytest.raises(QueryInvalid, match="already has 1 of the appended row ids"):
        grown.append(public, np.array([1.0]), np.array([5]), {"region": np.array(["EU"])})
    with pytest.raises(QueryInvalid, match="exactly those visible attributes"):
        grown.append(public, np.array([1.0]), np.array([10**6]), {})
    with pytest.raises(QueryInvalid, match="no validity mask"):
        grown.append(public, np.array([np.nan]), np.array([10**6]), {"region": np.array(["EU"])})


def test_save_and_load_with_digests_and_incremental_files(
    keys: tuple[PublicContexts, SecretContexts], tmp_path: Path
) -> None:
    public, secret = keys
    x = np.random.default_rng(3).normal(0, 1, SLOTS_CKKS + 10)
    x[5] = np.nan
    ids = np.arange(len(x)) * 3
    col = encrypt_column(public, "x", x, ids, {}, buckets=[-1, 0, 1])
    d = col.save(tmp_path / "x", public)
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["key_id"] == public.key_id and manifest["scheme"] == "ckks"
    assert manifest["params"]["coeff_modulus"] == public.ckks.params["coeff_modulus"]
    files = {p.name for p in (d / "ct").iterdir()}
    seg = manifest["segments"][0]
    listed = seg["values"] + seg["validity"] + [h for bucket in seg["indicators"] for h in bucket]
    assert files == {f"{h}.seal" for h in listed} and len(listed) == 2 * 4
    loaded = EncryptedColumn.load(d, public)
    assert loaded.layout_digest == col.layout_digest and loaded.bound == col.bound
    assert np.allclose(decrypted(secret, loaded)[()], np.nan_to_num(x), atol=1e-6)
    assert isinstance(load_column(d, public), EncryptedColumn)
    before = {p.name: p.stat().st_ino for p in (d / "ct").iterdir()}
    grown = loaded.append(public, np.array([0.5]), np.array([10**7]), {})
    grown.save(d, public)
    after = {p.name: p.stat().st_ino for p in (d / "ct").iterdir()}
    kept = set(before) & set(after)
    assert len(kept) == 4 and all(before[k] == after[k] for k in kept)  # full ciphertexts not rewritten
    assert len(set(after) - set(before)) == 4 and len(after) == 8  # the partial ones replaced, stale gone
    assert EncryptedColumn.load(d, public).rows == len(x) + 1


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "rows", "count"])
def test_tampering_or_truncation_fails_to_load(
    keys: tuple[PublicContexts, SecretContexts], tmp_path: Path, damage: str
) -> None:
    public = keys[0]
    col = encrypt_column(public, "x", np.arange(10.0), np.arange(10), {})
    d = col.save(tmp_path / "x", public)
    (ct,) = list((d / "ct").iterdir())
    if damage == "flip":
        data = bytearray(ct.read_bytes())
        data[len(data) // 2] ^= 1
        ct.write_bytes(bytes(data))
    elif damage == "truncate":
        ct.write_bytes(ct.read_bytes()[:-1000])
    elif damage == "delete":
        ct.unlink()
    elif damage == "rows":
        (d / "rows.bin").write_bytes(b"\x00" * 8)
    else:
        m = json.loads((d / "manifest.json").read_text())
        m["segments"][0]["rows"] = 5000
        m["rows"] = 5000
        (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CiphertextInvalid, match="restore"):
        EncryptedColumn.load(d, public)


def test_a_column_loads_only_under_its_key_id(
    keys: tuple[PublicContexts, SecretContexts], tmp_path: Path
) -> None:
    col = encrypt_column(keys[0], "x", np.arange(3.0), np.arange(3), {})
    d = col.save(tmp_path / "x", keys[0])
    other = KeyRing.generate(tmp_path / "other", None, TEST_PARAMS).public()
    with pytest.raises(KeyUnavailable, match=f"encrypted under key id {keys[0].key_id}"):
        EncryptedColumn.load(d, other)
    with pytest.raises(KeyUnavailable, match="append with the public contexts"):
        col.append(other, np.array([1.0]), np.array([9]), {})
    with pytest.raises(CiphertextInvalid, match=r"no manifest\.json"):
        EncryptedColumn.load(tmp_path / "nothing", keys[0])


def test_a_million_values_fit_the_size_budget(keys: tuple[PublicContexts, SecretContexts]) -> None:
    """One full ciphertext's serialised size times the ciphertexts of 1e6 values: <= 85 MB."""
    public = keys[0]
    x = np.random.default_rng(4).normal(100, 30, SLOTS_CKKS)
    col = encrypt_column(public, "x", x, np.arange(SLOTS_CKKS), {})
    (blob,) = public.ckks.to_bytes([col.segments[0].values[0]])
    assert len(blob) * math.ceil(1_000_000 / SLOTS_CKKS) <= 85e6


def test_paillier_column_round_trip_and_tampering(
    keys: tuple[PublicContexts, SecretContexts], tmp_path: Path
) -> None:
    public, secret = keys
    values = np.array([12.5, -3.0, np.nan, 1e-3])
    col = encrypt_paillier_column(public, "p", values, np.array([4, 5, 6, 7]))
    assert col.scheme == "paillier" and col.key_id == public.key_id
    d = col.save(tmp_path / "p")
    loaded = load_column(d, public)
    assert isinstance(loaded, PaillierColumn)
    got = [decode_paillier(secret.paillier_private, c, e) for _, c, e in loaded.lookup([4, 5, 6, 7])]
    assert got == [12.5, -3.0, None, 1e-3]
    body = json.loads((d / "records.json").read_text())
    body[0][1] = str(int(body[0][1]) + 1)
    (d / "records.json").write_text(json.dumps(body))
    with pytest.raises(CiphertextInvalid, match="integrity check"):
        PaillierColumn.load(d, public)
    with pytest.raises(QueryInvalid, match="row ids repeat"):
        encrypt_paillier_column(public, "p", np.array([1.0, 2.0]), np.array([1, 1]))
