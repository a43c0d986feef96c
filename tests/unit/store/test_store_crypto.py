"""Field encryption: AES-256-GCM round trips, binds each value to its place, fails opaquely, rotates keys."""

from __future__ import annotations

import json
import os
import stat

import pytest

from appliance.store import FieldCipher, FieldKeyError, Keyring
from appliance.store.crypto import associated_data


@pytest.fixture
def cipher(tmp_path) -> FieldCipher:
    return FieldCipher(Keyring.create(tmp_path / "keys" / "field.keys"))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_keyring_is_a_private_file_and_is_never_overwritten(tmp_path, cipher):
    path = tmp_path / "keys" / "field.keys"
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    with pytest.raises(FieldKeyError, match="already holds a keyring"):
        Keyring.create(path)
    key = cipher.keyring.keys()[0]
    assert key.material is not None and len(key.material) == 32
    assert key.material.hex() not in repr(key)


def test_round_trip_uses_a_fresh_nonce_and_names_the_key(cipher):
    aad = associated_data("customer_fields", "mobile", 7)
    a = cipher.encrypt("13800138000", aad)
    b = cipher.encrypt("13800138000", aad)
    assert a.key_id == b.key_id == cipher.active_id
    assert a.blob != b.blob  # random 96-bit nonce
    assert len(a.blob) == 12 + len("13800138000") + 16
    assert b"13800138000" not in a.blob
    assert cipher.decrypt(a.key_id, a.blob, aad) == "13800138000"
    assert cipher.decrypt(a.key_id, cipher.encrypt("张三", aad).blob, aad) == "张三"


def test_every_failure_is_the_same_opaque_error(cipher):
    aad = associated_data("customer_fields", "mobile", 7)
    sealed = cipher.encrypt("13800138000", aad)
    flipped = bytearray(sealed.blob)
    flipped[15] ^= 0x01
    attempts = [
        (sealed.key_id, bytes(flipped), aad),  # tampered ciphertext
        (sealed.key_id, sealed.blob[:-1], aad),  # truncated tag
        (sealed.key_id, sealed.blob, associated_data("customer_fields", "mobile", 8)),  # another row
        (sealed.key_id, sealed.blob, associated_data("customer_fields", "email", 7)),  # another field
        ("fk_000000000000", sealed.blob, aad),  # unknown key
        (sealed.key_id, b"short", aad),
    ]
    messages = set()
    for key_id, blob, ad in attempts:
        with pytest.raises(FieldKeyError) as err:
            cipher.decrypt(key_id, blob, ad)
        messages.add(str(err.value))
    assert len(messages) == 1
    assert "13800138000" not in messages.pop()


def test_rotation_keeps_old_keys_opening_until_they_are_retired(tmp_path, cipher):
    path = tmp_path / "keys" / "field.keys"
    aad = associated_data("transcript_messages", "text", "1:0")
    old = cipher.encrypt("hello", aad)
    new_key = cipher.keyring.add_active()
    assert _mode(path) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["field.keys", "field.keys.lock"]  # no temp left
    assert cipher.active_id == new_key.key_id != old.key_id
    assert cipher.decrypt(old.key_id, old.blob, aad) == "hello"  # previous key still opens
    assert cipher.encrypt("x", aad).key_id == new_key.key_id
    with pytest.raises(FieldKeyError, match="refusing to retire the active key"):
        cipher.keyring.retire([new_key.key_id])
    cipher.keyring.retire([old.key_id])
    cipher.forget_retired()
    assert {k.key_id: k.status for k in Keyring(path).keys()} == {
        old.key_id: "retired",
        new_key.key_id: "active",
    }
    stored = {k["id"]: k for k in json.loads(path.read_text())["keys"]}
    assert "key" not in stored[old.key_id] and "key" in stored[new_key.key_id]
    with pytest.raises(FieldKeyError):
        cipher.decrypt(old.key_id, old.blob, aad)  # material destroyed


def test_another_process_rotating_is_picked_up(tmp_path, cipher):
    other = FieldCipher(Keyring(tmp_path / "keys" / "field.keys"))
    aad = associated_data("customer_fields", "email", 1)
    new = other.keyring.add_active()
    sealed = other.encrypt("a@example.com", aad)
    assert sealed.key_id == new.key_id
    assert cipher.decrypt(sealed.key_id, sealed.blob, aad) == "a@example.com"  # reloads on unknown key
    cipher.keyring.refresh()
    assert cipher.active_id == new.key_id


def test_damaged_or_exposed_keyrings_are_refused(tmp_path, cipher):
    path = tmp_path / "keys" / "field.keys"
    os.chmod(path, 0o644)
    with pytest.raises(FieldKeyError, match="chmod 600"):
        Keyring(path)
    os.chmod(path, 0o600)
    path.write_text('{"format": "appliance-field-keys/1", "active": "fk_x", "keys": []}')
    with pytest.raises(FieldKeyError, match="damaged"):
        Keyring(path)
    with pytest.raises(FieldKeyError, match="missing"):
        Keyring(tmp_path / "nope.keys")
