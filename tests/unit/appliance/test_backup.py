"""Backup and restore: a node comes back whole and verifiable, or not at all.

Real nodes in temporary directories (and a real PostgreSQL for the pg_dump path); backups are
damaged by flipping bytes, cutting them short and rewriting members, and each time the restore
must refuse, name the member, and leave the target as it was.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from appliance.backup import (
    MANIFEST,
    backup_name,
    backups_dir,
    create_backup,
    list_backups,
    read_manifest,
    restore_backup,
)
from appliance.cli import cli
from appliance.doctor import run_checks
from appliance.errors import BackupExists, BackupInvalid, RestoreRefused
from appliance.node import Node
from appliance.settings import Settings, load_settings
from ledger.checkpoint import load_verifier, verify_checkpoint
from ledger.merkle import verify_consistency
from ledger.verify import verify_ledger

if TYPE_CHECKING:
    from conftest import ServerEnv

ACTOR = "admin:test"


def _settings(data_dir: Path, **store: Any) -> Settings:
    return load_settings(node={"data_dir": data_dir}, **({"store": store} if store else {}))


def _failures(settings: Settings) -> list[str]:
    return [f"{c.name}: {c.detail}" for c in run_checks(settings) if c.status == "fail"]


def _entries(data_dir: Path, action: str) -> list[dict[str, Any]]:
    with Node.open(_settings(data_dir), readonly=True) as node:
        return [e for _, raw in node.ledger.iter_raw() if (e := json.loads(raw))["action"] == action]


def _members(path: Path) -> dict[str, bytes]:
    """Every member of a backup, in order (for tests that rewrite one)."""
    _, _, compression = read_manifest(path)
    raw = path.read_bytes()
    if compression == "zstd":
        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    else:
        data = gzip.decompress(raw)
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            fh = tar.extractfile(info)
            assert fh is not None
            out[info.name] = fh.read()
    return out


def _rewrite(path: Path, members: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(gzip.compress(buf.getvalue()))


def _set_manifest(members: dict[str, bytes], edit: Callable[[dict[str, Any]], None]) -> None:
    manifest = json.loads(members[MANIFEST])
    edit(manifest)
    members[MANIFEST] = json.dumps(manifest).encode()


@pytest.fixture
def backup(env: ServerEnv, tmp_path: Path) -> Path:
    return create_backup(env.node, tmp_path / "node.tar.zst", actor=ACTOR, compression="zstd").path


# -- the round trip -------------------------------------------------------------------------------------
@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_backup_restores_a_node_that_opens_passes_doctor_and_verifies(
    env: ServerEnv, tmp_path: Path, compression: str
) -> None:
    out = tmp_path / f"node.{compression}"
    result = create_backup(env.node, out, actor=ACTOR, compression=compression)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert (
        result.bytes == out.stat().st_size and result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    )
    manifest, digest, found = read_manifest(out)
    assert (digest, found) == (result.manifest_sha256, compression)
    assert manifest["node"]["origin"] == env.node.origin and manifest["store"]["backend"] == "sqlite"
    assert manifest["ledger"]["size"] == result.ledger_size == result.ledger_seq  # backup entry comes after
    paths = {m["path"] for m in manifest["members"]}
    assert {"node.json", "ledger.pub", "store.db", "keys/signing.key", "ledger/tree.bin"} <= paths
    assert not any(p.startswith("backups/") or p.endswith(("-wal", "-shm")) for p in paths)
    # The backup is recorded in the live ledger with the digests that identify the file.
    [entry] = _entries(env.settings.data_dir, "node.backup")
    assert entry["details"]["manifest_sha256"] == result.manifest_sha256
    assert entry["details"]["sha256"] == result.sha256
    assert (entry["details"]["tree_size"], entry["details"]["root_hash"]) == (
        result.ledger_size,
        result.root_hash,
    )

    target = tmp_path / "restored"
    restored = restore_backup(out, _settings(target))
    assert (restored.ledger_size, restored.root_hash) == (result.ledger_size, result.root_hash)
    assert restored.restored_seq == result.ledger_size  # node.restored is the first entry after the backup
    settings = _settings(target)
    assert _failures(settings) == []
    verify = CliRunner().invoke(cli, ["--data-dir", str(target), "ledger", "verify"], catch_exceptions=False)
    assert verify.exit_code == 0, verify.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE((target / "keys" / "signing.key").stat().st_mode) == 0o600
    with Node.open(settings) as node:
        assert node.origin == env.node.origin
        assert node.store.get_customer(1)["full_name"] == "张伟"
        assert node.ledger.root(result.ledger_size).hex() == result.root_hash
        assert node.keys.authenticate(env.tokens["auditor"]) is not None  # API keys came back too


def test_restored_checkpoint_is_consistent_with_the_live_nodes_later_checkpoint(
    env: ServerEnv, tmp_path: Path, backup: Path
) -> None:
    """What "keeps the ledger verifiable" means: the old node grew on; the backup's head is its prefix."""
    manifest, _, _ = read_manifest(backup)
    for i in range(37):
        env.node.record(ACTOR, "test.after_backup", details={"i": i})
    later = env.node.ledger.sign_checkpoint()
    restored = tmp_path / "restored"
    restore_backup(backup, _settings(restored))
    verifier = load_verifier((restored / "ledger.pub").read_text().strip())
    old = verify_checkpoint(manifest["ledger"]["checkpoint"], verifier).checkpoint
    new = verify_checkpoint(later.text, verifier).checkpoint
    assert new.tree_size > old.tree_size
    proof = env.node.ledger.consistency_proof(old.tree_size, new.tree_size)
    assert verify_consistency(old.tree_size, new.tree_size, proof, old.root_hash, new.root_hash)
    # ... and the restored ledger's own root at that size is the same signed root.
    with Node.open(_settings(restored), readonly=True) as node:
        assert node.ledger.root(old.tree_size) == old.root_hash
        assert not any(json.loads(raw)["action"] == "test.after_backup" for _, raw in node.ledger.iter_raw())
    assert not verify_consistency(old.tree_size, new.tree_size, proof, new.root_hash, new.root_hash)


def test_backup_while_the_ledger_is_being_appended_is_consistent(env: ServerEnv, tmp_path: Path) -> None:
    stop = threading.Event()
    appended: list[int] = []

    def writer() -> None:
        while not stop.is_set():
            appended.append(env.node.record(ACTOR, "test.concurrent", details={"n": len(appended)}).seq)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        while len(appended) < 50:
            threading.Event().wait(0.01)
        result = create_backup(env.node, tmp_path / "busy.tar.zst", actor=ACTOR)
        after = len(appended)
        while len(appended) < after + 20:
            threading.Event().wait(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    # Appends ran on both sides of the backup's checkpoint, and none of the later ones is in it.
    assert min(appended) < result.ledger_size < max(appended)
    restored = restore_backup(result.path, _settings(tmp_path / "restored"))
    assert restored.ledger_size == result.ledger_size
    report = verify_ledger(str(tmp_path / "restored" / "ledger"))
    assert report.ok, report.problems
    assert report.entries == result.ledger_size + 1  # + node.restored


def test_no_secrets_backup_leaves_the_keys_out(env: ServerEnv, tmp_path: Path) -> None:
    result = create_backup(env.node, tmp_path / "public.tar.zst", include_secrets=False, actor=ACTOR)
    manifest, _, _ = read_manifest(result.path)
    paths = {m["path"] for m in manifest["members"]}
    assert manifest["secrets"] is False and "ledger.pub" in paths and "store.db" in paths
    assert not any(p.startswith("keys/") or "secret" in p or p.endswith(".key") for p in paths)
    for secret in (env.settings.data_dir / "keys").iterdir():
        assert secret.read_bytes() not in result.path.read_bytes() or len(secret.read_bytes()) < 8
    target = tmp_path / "restored"
    restored = restore_backup(result.path, _settings(target))
    assert restored.restored_seq is None and not (target / "keys").exists()
    assert verify_ledger(str(target / "ledger")).ok  # the public half still proves itself
    assert any(f.startswith("keys:") for f in _failures(_settings(target)))  # and doctor says what is missing


# -- refusing -----------------------------------------------------------------------------------------
def test_a_non_empty_target_is_refused_unless_forced(env: ServerEnv, tmp_path: Path, backup: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "precious.txt").write_text("keep me")
    with pytest.raises(RestoreRefused, match="not empty"):
        restore_backup(backup, _settings(target))
    assert [p.name for p in target.iterdir()] == ["precious.txt"]
    restore_backup(backup, _settings(target), force=True)
    assert not (target / "precious.txt").exists() and (target / "node.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".busy.")]  # no leftovers


def test_force_restore_from_the_nodes_own_backups_dir_keeps_its_backups(env: ServerEnv) -> None:
    resp = env.client.post("/v1/admin/backups", headers=env.auth("admin"), json={"name": "self"})
    path = backups_dir(env.settings.data_dir) / resp.get_json()["name"]
    env.node.record(ACTOR, "test.after_backup")
    restore_backup(path, env.settings, force=True)
    assert path.exists() and read_manifest(path)[0]["secrets"] is True
    assert _failures(env.settings) == []
    assert _entries(env.settings.data_dir, "test.after_backup") == []


def _flip(path: Path, at: float) -> None:
    raw = bytearray(path.read_bytes())
    raw[int(len(raw) * at)] ^= 0x5A
    path.write_bytes(bytes(raw))


def _cut(path: Path, at: float) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * at)])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: _flip(p, 0.5), id="byte-flipped"),
        pytest.param(lambda p: _flip(p, 0.97), id="byte-flipped-near-end"),
        pytest.param(lambda p: _cut(p, 0.5), id="cut-in-half"),
        pytest.param(lambda p: _cut(p, 0.995), id="cut-at-the-end"),
    ],
)
@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_a_damaged_backup_is_refused_naming_the_member_and_the_target_is_untouched(
    env: ServerEnv, tmp_path: Path, compression: str, damage: Callable[[Path], None]
) -> None:
    path = create_backup(env.node, tmp_path / "b", actor=ACTOR, compression=compression).path
    damage(path)
    target = tmp_path / "target"
    target.mkdir()
    (target / "old-node.txt").write_text("the node this restore would replace")
    with pytest.raises(BackupInvalid, match="member") as caught:
        restore_backup(path, _settings(target), force=True)
    assert str(path) in str(caught.value)
    assert [p.name for p in target.iterdir()] == ["old-node.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "node", "target"]  # no temp dirs left


def test_a_member_altered_under_the_manifest_is_named(backup: Path, tmp_path: Path) -> None:
    members = _members(backup)
    pub = members["policy.pub"]
    members["policy.pub"] = bytes([pub[0] ^ 1]) + pub[1:]
    _rewrite(backup, members)
    with pytest.raises(BackupInvalid, match=r"member policy\.pub does not match its SHA-256"):
        restore_backup(backup, _settings(tmp_path / "t"))
    assert not (tmp_path / "t").exists()


def test_a_missing_member_is_named(backup: Path, tmp_path: Path) -> None:
    members = _members(backup)
    del members["node.json"]
    _rewrite(backup, members)
    with pytest.raises(BackupInvalid, match=r"member node\.json is missing"):
        restore_backup(backup, _settings(tmp_path / "t"))


def test_a_ledger_entry_altered_with_a_matching_manifest_fails_ledger_verification(
    backup: Path, tmp_path: Path
) -> None:
    """Digests can be recomputed by whoever edits the file; the signed checkpoint cannot."""
    members = _members(backup)
    seg = "ledger/segments/seg-0000000000000000.log"
    members[seg] = members[seg].replace(b'"demo":false', b'"demo":true_', 1)
    assert members[seg] != _members(backup)[seg]

    def fix(m: dict[str, Any]) -> None:
        for member in m["members"]:
            if member["path"] == seg:
                member["sha256"] = hashlib.sha256(members[seg]).hexdigest()

    _set_manifest(members, fix)
    _rewrite(backup, members)
    with pytest.raises(BackupInvalid, match="fails verification"):
        restore_backup(backup, _settings(tmp_path / "t"))
    assert not (tmp_path / "t").exists()


def test_a_manifest_claiming_another_root_is_refused(backup: Path, tmp_path: Path) -> None:
    members = _members(backup)
    _set_manifest(members, lambda m: m["ledger"].update(root_hash="00" * 32))
    _rewrite(backup, members)
    with pytest.raises(BackupInvalid, match="not what its signed checkpoint says"):
        restore_backup(backup, _settings(tmp_path / "t"))


@pytest.mark.parametrize("evil", ["../escaped", "/etc/passwd-appliance", "keys/../../escaped", "a//b"])
def test_member_paths_cannot_leave_the_target(backup: Path, tmp_path: Path, evil: str) -> None:
    members = _members(backup)
    members[evil] = b"pwned"

    def add(m: dict[str, Any]) -> None:
        digest = hashlib.sha256(b"pwned").hexdigest()
        m["members"].append({"path": evil, "size": 5, "sha256": digest, "mode": 0o600, "secret": False})

    _set_manifest(members, add)
    _rewrite(backup, members)
    with pytest.raises(BackupInvalid, match=MANIFEST):
        restore_backup(backup, _settings(tmp_path / "deep" / "t"))
    assert not (tmp_path / "escaped").exists() and not any((tmp_path / "deep").iterdir())


def test_a_file_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.zst"
    junk.write_bytes(b"PK\x03\x04 not a backup at all")
    with pytest.raises(BackupInvalid, match="not an appliance backup"):
        restore_backup(junk, _settings(tmp_path / "t"))


def test_backups_are_never_overwritten(env: ServerEnv, backup: Path) -> None:
    before = backup.read_bytes()
    with pytest.raises(BackupExists):
        create_backup(env.node, backup, actor=ACTOR)
    assert backup.read_bytes() == before
    assert len(_entries(env.settings.data_dir, "node.backup")) == 1


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "a..b", "", "x" * 101, "semi;colon", "ünï"])
def test_backup_names_are_plain_file_names(name: str) -> None:
    with pytest.raises(BackupInvalid, match="plain file name"):
        backup_name(name, "n1", compression="zstd")


def test_backup_name_default_and_suffix() -> None:
    assert backup_name("nightly", "n1", compression="gzip") == "nightly.tar.gz"
    assert backup_name("nightly.tar.zst", "n1", compression="zstd") == "nightly.tar.zst"
    assert backup_name(None, "n1", compression="zstd").startswith("backup-")


# -- CLI ----------------------------------------------------------------------------------------------
def test_cli_backup_and_restore(env: ServerEnv, tmp_path: Path) -> None:
    runner = CliRunner()
    data = str(env.settings.data_dir)
    out = tmp_path / "cli.tar.zst"
    result = runner.invoke(cli, ["--data-dir", data, "backup", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["secrets"] is True and Path(info["path"]) == out
    again = runner.invoke(cli, ["--data-dir", data, "backup", "--out", str(out)])
    assert again.exit_code == 2 and "never overwritten" in again.output and "Traceback" not in again.output
    target = tmp_path / "restored"
    restored = runner.invoke(cli, ["restore", str(out), "--data-dir", str(target)])
    assert restored.exit_code == 0, restored.output
    assert "ledger verified" in restored.output
    refused = runner.invoke(cli, ["restore", str(out), "--data-dir", str(target)])
    assert refused.exit_code == 2 and "not empty" in refused.output and "Traceback" not in refused.output
    _cut(out, 0.6)
    damaged = runner.invoke(cli, ["restore", str(out), "--data-dir", str(target), "--force"])
    assert damaged.exit_code == 2 and "member" in damaged.output and "Traceback" not in damaged.output
    doctor = runner.invoke(cli, ["--data-dir", str(target), "doctor", "--json"])
    assert doctor.exit_code == 0, doctor.output


# -- HTTP ---------------------------------------------------------------------------------------------
def test_http_backup_lands_in_the_backups_dir_and_is_listed(env: ServerEnv) -> None:
    resp = env.client.post("/v1/admin/backups", headers=env.auth("admin"), json={"name": "nightly"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["name"] in ("nightly.tar.zst", "nightly.tar.gz") and "path" not in body
    path = backups_dir(env.settings.data_dir) / body["name"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [entry] = _entries(env.settings.data_dir, "node.backup")
    assert entry["details"]["sha256"] == body["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["request_id"] == resp.headers["X-Request-Id"]
    assert entry["actor"].startswith("admin:")
    (path.parent / "junk.tar.gz").write_bytes(b"nope")
    listed = env.client.get("/v1/admin/backups", headers=env.auth("admin")).get_json()["backups"]
    by_name = {b["name"]: b for b in listed}
    assert by_name[body["name"]]["manifest_sha256"] == body["manifest_sha256"]
    assert by_name[body["name"]]["error"] is None
    assert by_name["junk.tar.gz"]["error"] and str(path.parent) not in by_name["junk.tar.gz"]["error"]
    # The second backup of the same name is a conflict, and nothing is recorded for it.
    again = env.client.post("/v1/admin/backups", headers=env.auth("admin"), json={"name": "nightly"})
    problem = env.problem(again, 409, "backup-exists")
    assert str(env.settings.data_dir) not in problem["detail"]
    assert len(_entries(env.settings.data_dir, "node.backup")) == 1
    # Backups are not backed up again.
    manifest, _, _ = read_manifest(create_backup(env.node, path.parent / "second.tar.zst", actor=ACTOR).path)
    assert not any(m["path"].startswith("backups/") for m in manifest["members"])


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"name": "../../etc/cron.d/x"}, 422, "invalid-body"),
        ({"name": "..%2Fx"}, 422, "invalid-body"),
        ({"name": "a..b"}, 422, "invalid-backup"),
        ({"name": ".hidden"}, 422, "invalid-body"),
        ({"name": 5}, 422, "invalid-body"),
        ({"include_secrets": "yes"}, 422, "invalid-body"),
        ({"extra": 1}, 422, "invalid-body"),
    ],
)
def test_http_backup_names_cannot_traverse(
    env: ServerEnv, body: dict[str, Any], status: int, slug: str
) -> None:
    resp = env.client.post("/v1/admin/backups", headers=env.auth("admin"), json=body)
    env.problem(resp, status, slug)
    assert not backups_dir(env.settings.data_dir).exists() or not any(
        backups_dir(env.settings.data_dir).iterdir()
    )
    assert _entries(env.settings.data_dir, "node.backup") == []


def test_http_backups_are_admin_only(env: ServerEnv) -> None:
    for role in ("auditor", "agent", "ops"):
        env.problem(env.client.get("/v1/admin/backups", headers=env.auth(role)), 403, "forbidden")
        env.problem(env.client.post("/v1/admin/backups", headers=env.auth(role), json={}), 403, "forbidden")
    assert list_backups(backups_dir(env.settings.data_dir)) == []


# -- PostgreSQL ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg() -> Iterator[Any]:
    from pgserver import SKIP_ENV, PgUnavailable, running_server

    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: the PostgreSQL cases are skipped on purpose")
    with contextlib.ExitStack() as stack:
        problem = None
        try:
            server = stack.enter_context(running_server("source"))
        except PgUnavailable as exc:
            problem = str(exc)
        if problem is not None:
            pytest.fail(problem, pytrace=False)
        server.execute("CREATE DATABASE target")
        yield server


def test_postgresql_node_backs_up_with_pg_dump_and_restores_into_an_empty_database(
    pg: Any, tmp_path: Path
) -> None:
    source = _settings(tmp_path / "src", url=pg.url("source"))
    Node.init(source)
    with Node.open(source) as node:
        node.store.add_customers([{"external_id": "PG-1", "region": "CN", "full_name": "李娜"}])
        result = create_backup(node, tmp_path / "pg.tar.zst", actor=ACTOR)
        node.record(ACTOR, "test.after_backup")
    manifest, _, _ = read_manifest(result.path)
    assert manifest["store"] == {
        "backend": "postgresql",
        "member": "store.pgdump",
        "format": "pg_dump-custom",
    }
    assert pg.url("source").split("@")[0] not in json.dumps(manifest)  # no connection string in the manifest

    target = _settings(tmp_path / "dst", url=pg.url("target"))
    restored = restore_backup(result.path, target)
    assert restored.store_backend == "postgresql" and restored.restored_seq == result.ledger_size
    assert _failures(target) == []
    with Node.open(target) as node:
        customer = node.store.find_customer_by_external_id("PG-1")
        assert customer is not None and customer["full_name"] == "李娜"
    # The target database now holds a store: a second restore into it needs --force.
    with pytest.raises(RestoreRefused, match="target database already holds"):
        restore_backup(result.path, _settings(tmp_path / "dst2", url=pg.url("target")))
    assert not (tmp_path / "dst2").exists()
    restore_backup(result.path, _settings(tmp_path / "dst2", url=pg.url("target")), force=True)
    assert _failures(_settings(tmp_path / "dst2", url=pg.url("target"))) == []


def test_restore_refuses_a_store_backend_that_does_not_match(backup: Path, pg: Any, tmp_path: Path) -> None:
    with pytest.raises(RestoreRefused, match="does not convert between backends"):
        restore_backup(backup, _settings(tmp_path / "t", url=pg.url("target")))
    assert not (tmp_path / "t").exists()
