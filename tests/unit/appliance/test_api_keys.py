"""The API key store: argon2id hashes, the legacy SHA-256 upgrade, the verified-token cache, rotation,
expiry, revocation seen by every process, and the file lock that keeps concurrent writers whole."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.errors import ApiKeyStateError, KeyFileError, UnknownApiKey
from appliance.keys import ARGON2_DEFAULTS, ApiKeyStore


@pytest.fixture
def store(tmp_path: Path) -> ApiKeyStore:
    return ApiKeyStore.create(tmp_path / "keys" / "api_keys.json")


def _file(store: ApiKeyStore) -> dict:
    return json.loads(store.path.read_text())


def test_new_keys_are_argon2id_hashes_with_the_parameters_in_the_file(store: ApiKeyStore) -> None:
    key, token = store.issue("auditor", "external audit")
    data = _file(store)
    assert data["format"] == "appliance-api-keys/2"
    assert data["argon2"] == {"type": "argon2id", **ARGON2_DEFAULTS}
    (row,) = data["keys"]
    assert row["hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$") and "sha256" not in row
    assert token not in store.path.read_text() and token.split("_", 2)[2] not in store.path.read_text()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert token.startswith(f"apl_{key.key_id}_") and len(token) == 4 + 12 + 1 + 43
    assert store.authenticate(token) == key and key.hash == "argon2id"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "nope",
        "apl_0123456789ab",
        "apl_0123456789ab_" + "A" * 200,  # too long
        "xyz_0123456789ab_" + "A" * 43,
        "apl_ZZZZZZZZZZZZ_" + "A" * 43,
        "apl_0123456789ab_" + "A" * 42 + "\x00",
        None,
        12,
    ],
)
def test_malformed_tokens_are_refused_without_a_lookup(store: ApiKeyStore, token: object) -> None:
    result = store.check(token)  # type: ignore[arg-type]
    assert result.key is None and result.reason == "malformed" and result.key_id is None


def test_failures_say_why_for_the_log_and_name_only_existing_keys(store: ApiKeyStore) -> None:
    key, token = store.issue("agent")
    assert store.check("apl_0123456789ab_" + "A" * 43).reason == "unknown"
    wrong = store.check(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    assert (wrong.key, wrong.reason, wrong.key_id) == (None, "mismatch", key.key_id)


def test_a_verified_token_is_cached_by_hmac_not_by_value(store: ApiKeyStore) -> None:
    _, token = store.issue("agent")
    # Before a slow verification the fast path cannot answer; after it, it can.
    assert store.check(token, verify=False).reason == "unverified"
    assert store.check(token).reason == "ok"
    assert store.check(token, verify=False).reason == "ok"
    t0 = time.perf_counter()
    for _ in range(1000):
        store.check(token)
    per_check = (time.perf_counter() - t0) / 1000
    assert per_check < 0.002, f"a cached check took {per_check * 1e6:.0f} µs"  # argon2 takes ~30 ms
    # The process keeps no copy of the token: not as text, not as bytes, not as its SHA-256.
    memory = repr(vars(store)).encode()
    for form in (
        token.encode(),
        token.split("_", 2)[2].encode(),
        hashlib.sha256(token.encode()).hexdigest().encode(),
    ):
        assert form not in memory
    # Another store (another process) has another cache key: the same token maps elsewhere.
    other = ApiKeyStore(store.path)
    assert other.check(token, verify=False).reason == "unverified"


def test_revocation_by_another_process_is_seen_at_the_next_check(store: ApiKeyStore, tmp_path: Path) -> None:
    key, token = store.issue("ops")
    assert store.authenticate(token) == key  # cached now
    code = (
        "import sys; from pathlib import Path; from appliance.keys import ApiKeyStore; "
        "ApiKeyStore(Path(sys.argv[1])).revoke(sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, str(store.path), key.key_id], check=True, timeout=60)
    result = store.check(token)
    assert (result.key, result.reason, result.key_id) == (None, "revoked", key.key_id)
    assert store.check(token, verify=False).reason == "revoked"


def test_rotation_issues_a_new_secret_and_the_old_one_stops(store: ApiKeyStore) -> None:
    key, old = store.issue("analyst", "bi")
    assert store.authenticate(old) is not None
    rotated, new = store.rotate(key.key_id)
    assert new != old and new.startswith(f"apl_{key.key_id}_")
    assert (rotated.key_id, rotated.role, rotated.label, rotated.created) == (
        key.key_id,
        key.role,
        key.label,
        key.created,
    )
    assert rotated.rotated is not None and rotated.grace_until is None
    assert store.check(old).reason == "mismatch"  # cached before: the cache entry no longer fits
    assert store.authenticate(new) == rotated


def test_rotation_with_grace_keeps_the_old_secret_for_that_long(store: ApiKeyStore) -> None:
    key, old = store.issue("agent")
    store.authenticate(old)
    rotated, new = store.rotate(key.key_id, grace_seconds=2)
    assert rotated.grace_until is not None
    other = ApiKeyStore(store.path)  # a worker that never saw the old token: it verifies the old hash
    assert store.check(old).reason == "ok" and other.check(old).reason == "ok"
    assert other.check(new).reason == "ok"
    time.sleep(2.1)
    assert store.check(old).reason == "mismatch" and other.check(old).reason == "mismatch"
    assert store.check(new).reason == "ok"
    # Rotating again ends any grace at once; so does revoking.
    _, newer = store.rotate(key.key_id, grace_seconds=60)
    assert store.check(new).reason == "ok"
    store.revoke(key.key_id)
    assert store.check(newer).reason == "revoked" and store.check(new).reason == "mismatch"


def test_expiry(store: ApiKeyStore) -> None:
    with pytest.raises(ApiKeyStateError, match="in the past"):
        store.issue("agent", expires=datetime.now(UTC) - timedelta(seconds=1))
    soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    key, token = store.issue("agent", expires=soon)
    assert key.expires == soon.strftime("%Y-%m-%dT%H:%M:%SZ") and key.state == "active"
    assert store.check(token).reason == "ok"
    time.sleep(max(0.0, soon.timestamp() - time.time()) + 0.1)
    assert store.check(token).reason == "expired" and store.check(token, verify=False).reason == "expired"
    assert store.get(key.key_id).state == "expired"
    with pytest.raises(ApiKeyStateError, match="expired"):
        store.rotate(key.key_id)
    store.revoke(key.key_id)  # an expired key can still be revoked


def test_operations_on_unknown_or_revoked_keys_are_refused(store: ApiKeyStore) -> None:
    with pytest.raises(UnknownApiKey, match="no API key 'nope'"):
        store.revoke("nope")
    with pytest.raises(UnknownApiKey):
        store.rotate("0123456789ab")
    key, _ = store.issue("ops")
    store.revoke(key.key_id)
    generation = store.generation
    with pytest.raises(ApiKeyStateError, match="revoked already"):
        store.revoke(key.key_id)
    with pytest.raises(ApiKeyStateError, match="revoked"):
        store.rotate(key.key_id)
    assert store.generation == generation  # nothing was written
    with pytest.raises(ValueError, match="unknown role"):
        store.issue("root")


def test_the_last_live_admin_key_is_kept_when_asked(store: ApiKeyStore) -> None:
    first, _ = store.issue("admin")
    with pytest.raises(ApiKeyStateError, match="last live admin key"):
        store.revoke(first.key_id, keep_an_admin=True)
    second, _ = store.issue("admin")
    store.revoke(first.key_id, keep_an_admin=True)
    store.revoke(second.key_id)  # without the flag (the CLI on the node) it is allowed


def test_a_failing_before_write_hook_changes_nothing(store: ApiKeyStore) -> None:
    key, token = store.issue("agent")
    before = store.path.read_bytes()

    def boom(_key: object) -> None:
        raise RuntimeError("ledger down")

    for op in (
        lambda: store.issue("agent", before_write=boom),
        lambda: store.rotate(key.key_id, before_write=boom),
        lambda: store.revoke(key.key_id, before_write=boom),
    ):
        with pytest.raises(RuntimeError):
            op()
    assert store.path.read_bytes() == before and store.authenticate(token) is not None
    seen = []
    store.revoke(key.key_id, before_write=seen.append)
    assert [k.revoked for k in seen] == [True]


def _legacy_file(path: Path, tokens: dict[str, str]) -> None:
    """A key file as nodes wrote it before argon2 (format 1, SHA-256 hex digests)."""
    rows = [
        {
            "key_id": token.split("_")[1],
            "role": role,
            "label": "old",
            "created": "2025-01-01T00:00:00Z",
            "revoked": False,
            "sha256": hashlib.sha256(token.encode()).hexdigest(),
        }
        for role, token in tokens.items()
    ]
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(json.dumps({"format": "appliance-api-keys/1", "keys": rows}))
    os.chmod(path, 0o600)


def test_sha256_keys_keep_working_and_are_upgraded_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "api_keys.json"
    tokens = {"agent": "apl_aaaaaaaaaaaa_" + "A" * 43, "auditor": "apl_bbbbbbbbbbbb_" + "B" * 43}
    _legacy_file(path, tokens)
    store = ApiKeyStore(path)
    assert {k.hash for k in store.list()} == {"sha256"}
    # A wrong secret neither authenticates nor upgrades anything.
    assert store.check("apl_aaaaaaaaaaaa_" + "C" * 43).reason == "mismatch"
    assert json.loads(path.read_text())["format"] == "appliance-api-keys/1"
    key = store.authenticate(tokens["agent"])
    assert key is not None and key.role == "agent"
    data = json.loads(path.read_text())
    rows = {r["key_id"]: r for r in data["keys"]}
    assert data["format"] == "appliance-api-keys/2" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert rows["aaaaaaaaaaaa"]["hash"].startswith("$argon2id$") and "sha256" not in rows["aaaaaaaaaaaa"]
    assert rows["bbbbbbbbbbbb"]["sha256"] == hashlib.sha256(tokens["auditor"].encode()).hexdigest()
    # The upgraded key still opens, in this process (cached) and in a fresh one (argon2 this time).
    assert store.authenticate(tokens["agent"]) is not None
    assert ApiKeyStore(path).authenticate(tokens["agent"]) is not None
    assert {k.key_id: k.hash for k in ApiKeyStore(path).list()} == {
        "aaaaaaaaaaaa": "argon2id",
        "bbbbbbbbbbbb": "sha256",
    }


def test_changed_argon2_parameters_rehash_keys_on_next_use(store: ApiKeyStore) -> None:
    _, token = store.issue("agent")
    data = _file(store)
    data["argon2"]["time_cost"] = 3
    store.path.write_text(json.dumps(data))
    fresh = ApiKeyStore(store.path)
    assert fresh.authenticate(token) is not None
    assert "$argon2id$v=19$m=19456,t=3,p=1$" in store.path.read_text()


def test_upgrade_failure_does_not_fail_authentication(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "api_keys.json"
    token = "apl_aaaaaaaaaaaa_" + "A" * 43
    _legacy_file(path, {"agent": token})
    (path.parent / "api_keys.json.lock").mkdir()  # the lock cannot be taken: the rewrite fails (EISDIR)
    store = ApiKeyStore(path)
    assert store.authenticate(token) is not None
    assert store.authenticate(token) is not None
    assert json.loads(path.read_text())["format"] == "appliance-api-keys/1"


def test_concurrent_writers_from_threads_and_processes_lose_nothing(store: ApiKeyStore) -> None:
    code = (
        "import sys; from pathlib import Path; from appliance.keys import ApiKeyStore\n"
        "s = ApiKeyStore(Path(sys.argv[1]))\n"
        "for _ in range(3): s.issue('agent', 'proc')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, str(store.path)]) for _ in range(2)]
    # Threads with stores of their own: each takes the file lock through its own descriptor.
    threads = [
        threading.Thread(target=lambda: [ApiKeyStore(store.path).issue("ops", "thread") for _ in range(3)])
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(timeout=60) == 0
    keys = ApiKeyStore(store.path).list()
    assert sorted(k.label for k in keys) == ["proc"] * 6 + ["thread"] * 9
    assert _file(store)["generation"] == 15
    assert not list(store.path.parent.glob("*.tmp"))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not a valid API key file"),
        ('{"format": "something/9", "keys": []}', "format"),
        ('{"format": "appliance-api-keys/2", "argon2": {"time_cost": 0}, "keys": []}', "time_cost"),
        ('{"format": "appliance-api-keys/2", "keys": [{"key_id": "x"}]}', "not a valid API key file"),
    ],
)
def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "api_keys.json"
    path.write_text(content)
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError, match=fragment):
        ApiKeyStore(path).list()


def test_a_key_file_others_can_read_is_refused(store: ApiKeyStore) -> None:
    _, token = store.issue("agent")
    os.chmod(store.path, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        ApiKeyStore(store.path).authenticate(token)


# -- the `appliance keys` commands ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cli_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from appliance.node import Node
    from appliance.settings import load_settings

    data = tmp_path_factory.mktemp("keys-cli") / "node"
    Node.init(load_settings(node={"data_dir": data}))
    return data


def _cli(data: Path, *args: str, code: int = 0) -> str:
    from click.testing import CliRunner

    from appliance.cli import cli

    result = CliRunner().invoke(cli, ["--data-dir", str(data), *args])
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result.output


def _ledger_actions(data: Path, action: str) -> list[dict]:
    from ledger import Ledger

    led = Ledger.open(str(data / "ledger"), readonly=True)
    try:
        entries = [json.loads(led.raw_entry(i)) for i in range(led.size)]
    finally:
        led.close()
    return [e for e in entries if e["action"] == action]


def test_cli_create_with_expiry_rotate_with_grace_and_revoke(cli_node: Path) -> None:
    token = _cli(cli_node, "keys", "create", "analyst", "--label", "bi", "--expires", "30d").strip()
    key_id = token.split("_")[1]
    store = ApiKeyStore(cli_node / "keys" / "api_keys.json")
    key = store.get(key_id)
    expected = datetime.now(UTC) + timedelta(days=30)
    assert (
        key.expires is not None
        and abs(datetime.fromisoformat(key.expires).timestamp() - expected.timestamp()) < 60
    )
    assert f"expires {key.expires}" in _cli(cli_node, "keys", "list")
    listed = {k["key_id"]: k for k in json.loads(_cli(cli_node, "keys", "list", "--json"))}
    assert listed[key_id]["state"] == "active" and listed[key_id]["hash"] == "argon2id"
    new = _cli(cli_node, "keys", "rotate", key_id, "--grace", "90").strip()
    assert new.startswith(f"apl_{key_id}_") and new != token
    assert store.check(token).reason == "ok" and store.check(new).reason == "ok"
    assert "revoked" in _cli(cli_node, "keys", "revoke", key_id)
    assert store.check(new).reason == "revoked"
    created = [e for e in _ledger_actions(cli_node, "apikey.created") if e["details"]["key_id"] == key_id]
    rotated = [e for e in _ledger_actions(cli_node, "apikey.rotated") if e["details"]["key_id"] == key_id]
    revoked = [e for e in _ledger_actions(cli_node, "apikey.revoked") if e["details"]["key_id"] == key_id]
    assert created[0]["details"] == {"key_id": key_id, "role": "analyst", "expires": key.expires}
    assert rotated[0]["details"] == {"key_id": key_id, "role": "analyst", "grace_seconds": 90}
    assert revoked[0]["details"] == {"key_id": key_id, "role": "analyst"}
    assert {e["actor"] for e in created + rotated + revoked} == {"admin:cli"}
    # init's own keys are recorded the same way.
    assert len([e for e in _ledger_actions(cli_node, "apikey.created") if e["actor"] == "system:init"]) == 7


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["keys", "create", "agent", "--expires", "banana"], "not a duration"),
        (["keys", "create", "agent", "--expires", "0"], "in the past"),
        (["keys", "create", "agent", "--expires", "99999w"], "longer than ten years"),
        (["keys", "rotate", "0123456789ab"], "no API key '0123456789ab'"),
        (["keys", "rotate", "0123456789ab", "--grace", "-5"], "not a duration"),
        (["keys", "revoke", "nope"], "no API key 'nope'"),
    ],
)
def test_cli_refusals_exit_2_with_a_reason(cli_node: Path, args: list[str], fragment: str) -> None:
    assert fragment in _cli(cli_node, *args, code=2)


def test_cli_revoking_twice_is_refused(cli_node: Path) -> None:
    key_id = _cli(cli_node, "keys", "create", "ops").strip().split("_")[1]
    _cli(cli_node, "keys", "revoke", key_id)
    assert "revoked already" in _cli(cli_node, "keys", "revoke", key_id, code=2)
