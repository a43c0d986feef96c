"""Backup and restore of a whole node, taken while it serves, restored only once proven intact.

A backup is one tar file (zstd when ``zstandard`` is installed, else gzip) whose first member,
``MANIFEST.json``, names the node, the store backend, the ledger's size and root with the signed
checkpoint that commits to them, and the SHA-256 and size of every other member. Each part is
copied the way that part stays consistent under concurrent writers:

* the **store** first: SQLite through the online backup API (``sqlite3.Connection.backup``),
  PostgreSQL with ``pg_dump --format=custom`` (one snapshot of the whole database);
* then the **files** of the data directory (keys, policy versions, models, privacy keys and
  columns): they are written once or replaced atomically, so a plain copy of each is consistent;
* the **ledger** last: a checkpoint is signed, then under the ledger's shared lock (no writer can
  commit meanwhile) segments, tree, index and checkpoints are copied up to exactly that
  checkpoint's size. Taken after the store, the ledger copy records every change the store copy
  holds (and possibly a few later ones).

Secrets (``keys/``, the demo API keys, HE secret keys) are included unless the caller opts out; a
file holding them is as sensitive as the data directory, and is written 0600 like it.

A restore extracts into a temporary sibling of the target, checks every member's digest, runs the
full ledger verification and checks the restored root at the manifest's size against the signed
checkpoint; only then is the store loaded (PostgreSQL: ``pg_restore --single-transaction``) and the
directory renamed into place. A damaged or truncated file is refused with the member named, and
the target is left as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import gzip
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy import inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from appliance.errors import BackupError, BackupExists, BackupInvalid, NodeError, RestoreRefused
from appliance.node import Node
from appliance.settings import Settings
from ledger.checkpoint import load_verifier, parse_checkpoint, verify_checkpoint
from ledger.errors import CheckpointInvalid, LedgerError
from ledger.segment import CHECKPOINT_MAGIC, HEADER_SIZE, parse_segment_name, read_header, scan
from ledger.tree import TreeFile, slots_for
from ledger.verify import verify_ledger

__all__ = [
    "FORMAT",
    "MANIFEST",
    "BackupInfo",
    "BackupResult",
    "RestoreResult",
    "backup_name",
    "backups_dir",
    "create_backup",
    "list_backups",
    "read_manifest",
    "restore_backup",
]

FORMAT = "appliance-backup/1"
MANIFEST = "MANIFEST.json"
_CHUNK = 1 << 20
_MAX_MANIFEST = 64 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_SUFFIX = {"zstd": ".tar.zst", "gzip": ".tar.gz"}
#: A backup's name as an HTTP client may give it: a plain file name, no directories, no dot first.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
_NAME = re.compile(NAME_PATTERN)
#: Members restored from a backup never get more than these permission bits.
_MODE_MASK = 0o644
_SQLITE_SIDE = ("", "-wal", "-shm", "-journal")


# -- values ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BackupResult:
    """What :func:`create_backup` wrote and recorded."""

    path: Path
    bytes: int
    sha256: str  # of the whole file: ties it to the ``node.backup`` ledger entry
    manifest_sha256: str
    compression: str
    ledger_size: int
    root_hash: str
    checkpoint: str
    secrets: bool
    store_backend: str
    members: int
    created: str
    ledger_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.path.name,
            "path": str(self.path),
            "bytes": self.bytes,
            "sha256": self.sha256,
            "manifest_sha256": self.manifest_sha256,
            "compression": self.compression,
            "ledger_size": self.ledger_size,
            "root_hash": self.root_hash,
            "checkpoint": self.checkpoint,
            "secrets": self.secrets,
            "store_backend": self.store_backend,
            "members": self.members,
            "created": self.created,
            "ledger_seq": self.ledger_seq,
        }


@dataclass(frozen=True)
class BackupInfo:
    """One file in the backups directory, described from its manifest (``error`` when unreadable)."""

    name: str
    bytes: int
    manifest_sha256: str | None = None
    compression: str | None = None
    created: str | None = None
    origin: str | None = None
    ledger_size: int | None = None
    root_hash: str | None = None
    secrets: bool | None = None
    store_backend: str | None = None
    members: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class RestoreResult:
    data_dir: Path
    origin: str
    ledger_size: int
    root_hash: str
    manifest_sha256: str
    secrets: bool
    store_backend: str
    members: int
    restored_seq: int | None  # the ``node.restored`` entry; None when the backup has no keys to open it

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_dir": str(self.data_dir),
            "origin": self.origin,
            "ledger_size": self.ledger_size,
            "root_hash": self.root_hash,
            "manifest_sha256": self.manifest_sha256,
            "secrets": self.secrets,
            "store_backend": self.store_backend,
            "members": self.members,
            "restored_seq": self.restored_seq,
        }


# -- naming -----------------------------------------------------------------------------------------
def backups_dir(data_dir: Path) -> Path:
    """Where the HTTP API writes backups: inside the data dir (0700), excluded from backups themselves."""
    return data_dir / "backups"


def _compression() -> str:
    try:
        import zstandard  # noqa: F401
    except ImportError:
        return "gzip"
    return "zstd"


def backup_name(name: str | None, node_id: str, *, compression: str | None = None) -> str:
    """A safe file name for a backup in :func:`backups_dir`: the client's, checked, or a dated default.

    ``name`` must be a plain file name (letters, digits, ``._-``, no leading dot, no ``..``): it
    can never leave the backups directory. The compression's suffix is added when missing.
    """
    suffix = _SUFFIX[compression or _compression()]
    if name is None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        return f"backup-{stamp}-{node_id}-{secrets.token_hex(3)}{suffix}"  # two in one second differ
    if not _NAME.fullmatch(name) or ".." in name:
        raise BackupInvalid(
            f"backup name {name!r} is not a plain file name: use letters, digits, '.', '_' and '-' "
            "(no '/', no '..', not starting with '.'), at most 100 characters"
        )
    return name if name.endswith(suffix) else name + suffix


# -- writing --------------------------------------------------------------------------------------
def _is_secret(rel: PurePosixPath) -> bool:
    """Key material: never in a ``--no-secrets`` backup (names follow Node.paths and the privacy layout)."""
    name = rel.name
    return rel.parts[0] == "keys" or name == "demo-api-keys.json" or "secret" in name or name.endswith(".key")


def _sqlite_path(url: str) -> Path | None:
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    return Path(u.database).resolve()


class _Stage:
    """The directory a backup is assembled in; every file added is hashed as it is written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.members: dict[str, dict[str, Any]] = {}

    def path(self, rel: str) -> Path:
        p = self.root / "data" / rel
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return p

    def note(self, rel: str, mode: int, secret: bool) -> None:
        """Record a member written directly to :meth:`path` (hashes it from disk)."""
        h = hashlib.sha256()
        size = 0
        with open(self.path(rel), "rb") as fh:
            while block := fh.read(_CHUNK):
                h.update(block)
                size += len(block)
        self.members[rel] = {
            "path": rel,
            "size": size,
            "sha256": h.hexdigest(),
            "mode": mode,
            "secret": secret,
        }

    def write(self, rel: str, data: bytes, mode: int = 0o600, *, secret: bool = False) -> None:
        fd = os.open(self.path(rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        self.members[rel] = {
            "path": rel,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "mode": mode,
            "secret": secret,
        }

    def copy(self, src: Path, rel: str, mode: int, *, secret: bool) -> bool:
        """Copy one file (False when it vanished meanwhile: a temp file renamed away)."""
        h = hashlib.sha256()
        size = 0
        try:
            fin = open(src, "rb")
        except FileNotFoundError:
            return False
        with fin, open(self.path(rel), "wb") as out:
            while block := fin.read(_CHUNK):
                h.update(block)
                out.write(block)
                size += len(block)
        self.members[rel] = {
            "path": rel,
            "size": size,
            "sha256": h.hexdigest(),
            "mode": mode,
            "secret": secret,
        }
        return True


def _snapshot_sqlite(db: Path, stage: _Stage) -> dict[str, Any]:
    """One consistent copy through SQLite's online backup API, while writers carry on (WAL)."""
    rel = "store.db"
    dest = stage.path(rel)
    try:
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        try:
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the SQLite store {db} could not be copied: {exc}") from exc
    stage.note(rel, 0o600, secret=False)
    return {"backend": "sqlite", "member": rel, "format": "sqlite3"}


def _pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: on PATH, else the newest Debian ``/usr/lib/postgresql/*/bin``."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(
        f"{name} is not installed; install the PostgreSQL client (Debian: postgresql-client) to back up "
        "or restore a PostgreSQL store"
    )


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection URI for ``url`` and the environment carrying its password (not in argv)."""
    u: URL = make_url(url)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    return u.set(drivername="postgresql", password=None).render_as_string(hide_password=False), env


def _pg_run(argv: list[str], env: dict[str, str], what: str) -> None:
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BackupError(f"{what} failed: {exc}") from exc
    if proc.returncode:
        first = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[0]
        raise BackupError(f"{what} failed: {first}")


def _snapshot_postgresql(url: str, stage: _Stage) -> dict[str, Any]:
    rel = "store.pgdump"
    uri, env = _libpq(url)
    _pg_run(
        [
            _pg_tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={stage.path(rel)}",
            f"--dbname={uri}",
        ],
        env,
        "pg_dump of the store",
    )
    stage.note(rel, 0o600, secret=False)
    return {"backend": "postgresql", "member": rel, "format": "pg_dump-custom"}


def _copy_files(data_dir: Path, stage: _Stage, *, include_secrets: bool, skip: set[Path]) -> None:
    """Every regular file of the data dir but the ledger, the store database and the backups."""
    for dirpath, dirnames, filenames in os.walk(data_dir):
        here = Path(dirpath)
        rel_dir = here.relative_to(data_dir)
        if rel_dir == Path("."):
            dirnames[:] = [d for d in dirnames if d not in ("ledger", "backups")]
        dirnames[:] = [d for d in dirnames if not d.startswith(".backup-")]
        dirnames.sort()
        for name in sorted(filenames):
            src = here / name
            if src in skip or name.endswith(".tmp") or src.is_symlink() or not src.is_file():
                continue
            rel = PurePosixPath(*rel_dir.parts, name)
            secret = _is_secret(rel)
            if secret and not include_secrets:
                continue
            try:
                mode = src.stat().st_mode & 0o777
            except FileNotFoundError:
                continue
            stage.copy(src, str(rel), mode, secret=secret)


@contextlib.contextmanager
def _shared_lock(ledger_dir: Path) -> Iterator[None]:
    """The ledger's cross-process lock, shared: readers may run, no writer commits meanwhile.

    ``ledger.lock`` is the ledger's documented locking protocol (see :mod:`ledger.log`); a descriptor
    of our own keeps this process's writer lock untouched.
    """
    fd = os.open(ledger_dir / "ledger.lock", os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _copy_ledger(ledger_dir: Path, stage: _Stage, size: int, root: bytes) -> None:
    """Copy the ledger exactly up to ``size`` entries (the signed checkpoint's), under the shared lock."""
    with _shared_lock(ledger_dir):
        stage.copy(ledger_dir / "LEDGER", "ledger/LEDGER", 0o600, secret=False)
        stage.write("ledger/ledger.lock", b"")
        segdir = ledger_dir / "segments"
        firsts = sorted(f for f in (parse_segment_name(n) for n in os.listdir(segdir)) if f is not None)
        firsts = [f for f in firsts if f < size]
        if not firsts or firsts[0] != 0:
            raise BackupError(f"{segdir} does not start at entry 0; run `appliance ledger verify`")
        for i, first in enumerate(firsts):
            name = f"seg-{first:016d}.log"
            data = (segdir / name).read_bytes()
            read_header(data, str(segdir / name))
            end_seq = firsts[i + 1] if i + 1 < len(firsts) else size
            frames, _ = scan(data)
            need = end_seq - first
            if len(frames) < need:
                raise BackupError(
                    f"ledger segment {name} holds {len(frames)} readable entries but the tree acknowledges "
                    f"{need}; run `appliance ledger verify`"
                )
            end = frames[need - 1].end if need else HEADER_SIZE
            stage.write(f"ledger/segments/{name}", data[:end])
        with open(ledger_dir / "index.bin", "rb") as fh:
            index = fh.read(size * 8)
        with open(ledger_dir / "tree.bin", "rb") as fh:
            tree = fh.read(slots_for(size) * 32)
        if len(index) != size * 8 or len(tree) != slots_for(size) * 32:
            raise BackupError("the ledger's index or tree is shorter than its signed checkpoint; run verify")
        stage.write("ledger/index.bin", index)
        stage.write("ledger/tree.bin", tree)
        ckp = (ledger_dir / "checkpoints.log").read_bytes()
        if not ckp.startswith(CHECKPOINT_MAGIC):
            raise BackupError("ledger checkpoints.log has a bad header; run `appliance ledger verify`")
        end = len(CHECKPOINT_MAGIC)
        frames, _ = scan(ckp, end)
        for f in frames:
            if parse_checkpoint(f.payload.decode("utf-8")).checkpoint.tree_size > size:
                break
            end = f.end
        stage.write("ledger/checkpoints.log", ckp[:end])
    tree_file = TreeFile.open(str(stage.path("ledger/tree.bin")), readonly=True)
    try:
        copied_root = tree_file.root(size)
    finally:
        tree_file.close()
    if copied_root != root:
        raise BackupError(
            "the copied ledger's root differs from the checkpoint just signed; nothing was kept"
        )


class _Sink(io.RawIOBase):
    """Counts and hashes the compressed bytes as they go to the file."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha = hashlib.sha256()
        self.n = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self.fh.write(data)
        self.sha.update(data)
        self.n += len(data)
        return len(data)


def _write_archive(stage: _Stage, manifest_bytes: bytes, out: Path, compression: str) -> tuple[int, str]:
    """The tar (manifest first, members sorted), compressed, to ``out`` created 0600 and fsynced."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        sink = _Sink(raw)
        if compression == "zstd":
            import zstandard

            comp: Any = zstandard.ZstdCompressor(level=3, write_checksum=True, threads=-1).stream_writer(
                sink, closefd=False
            )
        else:
            comp = gzip.GzipFile(fileobj=sink, mode="wb", compresslevel=5, mtime=0)  # type: ignore[arg-type]
        with comp, tarfile.open(fileobj=comp, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, MANIFEST, io.BytesIO(manifest_bytes), len(manifest_bytes), 0o600)
            for rel, m in sorted(stage.members.items()):
                with open(stage.path(rel), "rb") as fh:
                    _add(tar, rel, fh, m["size"], m["mode"])
        raw.flush()
        os.fsync(raw.fileno())
    return sink.n, sink.sha.hexdigest()


def _add(tar: tarfile.TarFile, name: str, fh: IO[bytes], size: int, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, fh)


def create_backup(
    node: Node,
    out: Path,
    *,
    include_secrets: bool = True,
    actor: str,
    request_id: str | None = None,
    compression: str | None = None,
) -> BackupResult:
    """Back up ``node`` into the new file ``out`` and record ``node.backup``; refuses to overwrite."""
    compression = compression or _compression()
    if compression not in _SUFFIX:
        raise BackupError(f"compression {compression!r} is not one of {', '.join(_SUFFIX)}")
    out = Path(out).absolute()
    if out.exists():
        raise BackupExists(f"a backup named {out.name} exists already; backups are never overwritten")
    out.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir = node.settings.data_dir.absolute()
    url = Node.store_url(node.settings)
    stage = _Stage(Path(tempfile.mkdtemp(prefix=".backup-", dir=out.parent)))
    tmp_out = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    try:
        db = _sqlite_path(url)
        if node.store.backend == "sqlite" and db is not None:
            store = _snapshot_sqlite(db, stage)
        elif node.store.backend == "postgresql":
            store = _snapshot_postgresql(url, stage)
        else:
            raise BackupError(
                f"cannot back up a {node.store.backend} store; the node runs on SQLite or PostgreSQL"
            )
        skip = {db.with_name(db.name + s) for s in _SQLITE_SIDE} if db is not None else set()
        skip |= {out, tmp_out}
        _copy_files(data_dir, stage, include_secrets=include_secrets, skip=skip)
        signed = node.ledger.sign_checkpoint(only_if_grown=True)
        cp = signed.checkpoint
        _copy_ledger(Path(node.ledger.path), stage, cp.tree_size, cp.root_hash)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        manifest = {
            "format": FORMAT,
            "created": created,
            "node": {"origin": node.origin, "node_id": node.info.get("node_id")},
            "ledger": {"size": cp.tree_size, "root_hash": cp.root_hash.hex(), "checkpoint": signed.text},
            "store": store,
            "secrets": include_secrets,
            "compression": compression,
            "members": [m for _, m in sorted(stage.members.items())],
        }
        manifest_bytes = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode("utf-8")
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        size, file_sha = _write_archive(stage, manifest_bytes, tmp_out, compression)
        try:
            os.link(tmp_out, out)  # never replaces: a concurrent backup of the same name loses cleanly
        except FileExistsError:
            raise BackupExists(
                f"a backup named {out.name} exists already; backups are never overwritten"
            ) from None
    finally:
        shutil.rmtree(stage.root, ignore_errors=True)
        tmp_out.unlink(missing_ok=True)
    try:
        receipt = node.record(
            actor,
            "node.backup",
            details={
                "name": out.name,
                "bytes": size,
                "sha256": file_sha,
                "manifest_sha256": manifest_sha,
                "tree_size": cp.tree_size,
                "root_hash": cp.root_hash.hex(),
                "secrets": include_secrets,
                "store": store["backend"],
                "members": len(stage.members),
            },
            request_id=request_id,
        )
    except BaseException:
        out.unlink(missing_ok=True)  # an unrecorded copy of the node must not stay behind
        raise
    return BackupResult(
        out,
        size,
        file_sha,
        manifest_sha,
        compression,
        cp.tree_size,
        cp.root_hash.hex(),
        signed.text,
        include_secrets,
        store["backend"],
        len(stage.members),
        created,
        receipt.seq,
    )


# -- reading --------------------------------------------------------------------------------------
@contextlib.contextmanager
def _open_archive(path: Path) -> Iterator[tuple[tarfile.TarFile, str]]:
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise BackupInvalid(f"{path} cannot be read: {exc.strerror}") from exc
    with contextlib.ExitStack() as stack:
        stack.enter_context(raw)
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(_ZSTD_MAGIC):
            try:
                import zstandard
            except ImportError:
                raise BackupError(f"{path} is zstd-compressed; install zstandard to read it") from None
            stream: Any = stack.enter_context(zstandard.ZstdDecompressor().stream_reader(raw))
            compression = "zstd"
        elif magic.startswith(_GZIP_MAGIC):
            stream = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
            compression = "gzip"
        else:
            raise BackupInvalid(f"{path} is not an appliance backup (neither zstd nor gzip compressed)")
        try:
            tar = stack.enter_context(tarfile.open(fileobj=stream, mode="r|"))
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise BackupInvalid(f"{path}: damaged or cut short before the first member ({exc})") from exc
        yield tar, compression


_READ_ERRORS: tuple[type[BaseException], ...] = (tarfile.TarError, EOFError, OSError, zlib.error)


def _zstd_error() -> tuple[type[BaseException], ...]:
    try:
        import zstandard
    except ImportError:
        return ()
    return (zstandard.ZstdError,)


def _parse_manifest(tar: tarfile.TarFile, path: Path) -> tuple[dict[str, Any], str]:
    errors = _READ_ERRORS + _zstd_error()
    try:
        first = tar.next()
        if first is None or first.name != MANIFEST or not first.isreg() or first.size > _MAX_MANIFEST:
            raise BackupInvalid(
                f"{path}: the first member is not {MANIFEST}; this is not an appliance backup"
            )
        fh = tar.extractfile(first)
        assert fh is not None
        data = fh.read()
    except errors as exc:
        raise BackupInvalid(f"{path}: damaged or cut short in member {MANIFEST} ({exc})") from exc
    if len(data) != first.size:
        raise BackupInvalid(f"{path}: member {MANIFEST} is cut short")
    try:
        manifest = json.loads(data)
        _check_manifest(manifest)
    except (ValueError, KeyError, TypeError) as exc:
        raise BackupInvalid(f"{path}: member {MANIFEST} is damaged ({exc})") from exc
    return manifest, hashlib.sha256(data).hexdigest()


def _check_manifest(m: Any) -> None:
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ValueError(f"format is not {FORMAT}")
    if not isinstance(m["ledger"]["size"], int) or not isinstance(m["ledger"]["checkpoint"], str):
        raise ValueError("ledger size or checkpoint missing")
    bytes.fromhex(m["ledger"]["root_hash"])
    if m["store"]["backend"] not in ("sqlite", "postgresql"):
        raise ValueError(f"unknown store backend {m['store']['backend']!r}")
    if not isinstance(m["node"]["origin"], str) or not isinstance(m["secrets"], bool):
        raise ValueError("node origin or secrets flag missing")
    for member in m["members"]:
        _safe_rel(member["path"])
        if not isinstance(member["size"], int) or not re.fullmatch(r"[0-9a-f]{64}", member["sha256"]):
            raise ValueError(f"member {member['path']!r} has no size or digest")
        if not isinstance(member["mode"], int):
            raise ValueError(f"member {member['path']!r} has no mode")


def _safe_rel(rel: Any) -> PurePosixPath:
    """A member path that stays inside the target: relative, no '..', no empty or dot parts."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        raise ValueError(f"member path {rel!r} is not allowed")
    p = PurePosixPath(rel)
    if p.is_absolute() or any(part in ("", ".", "..") for part in rel.split("/")) or rel == MANIFEST:
        raise ValueError(f"member path {rel!r} leaves the data directory")
    return p


def read_manifest(path: Path) -> tuple[dict[str, Any], str, str]:
    """The manifest of the backup at ``path``, its SHA-256 and compression (reads the first member only)."""
    with _open_archive(path) as (tar, compression):
        manifest, digest = _parse_manifest(tar, path)
    return manifest, digest, compression


def list_backups(directory: Path) -> list[BackupInfo]:
    """The backups in ``directory`` (newest name last), each described by its manifest."""
    out: list[BackupInfo] = []
    if not directory.is_dir():
        return out
    for p in sorted(directory.iterdir()):
        if p.name.startswith(".") or not p.is_file() or not p.name.endswith(tuple(_SUFFIX.values())):
            continue
        size = p.stat().st_size
        try:
            m, digest, compression = read_manifest(p)
        except BackupError as exc:
            out.append(BackupInfo(p.name, size, error=str(exc).replace(str(p), p.name)))
            continue
        out.append(
            BackupInfo(
                p.name,
                size,
                digest,
                compression,
                m.get("created"),
                m["node"]["origin"],
                m["ledger"]["size"],
                m["ledger"]["root_hash"],
                m["secrets"],
                m["store"]["backend"],
                len(m["members"]),
            )
        )
    return out


# -- restoring ------------------------------------------------------------------------------------
def _extract(tar: tarfile.TarFile, path: Path, manifest: Mapping[str, Any], dest: Path) -> None:
    """Every member into ``dest``, each checked against the manifest as it streams."""
    wanted = {m["path"]: m for m in manifest["members"]}
    seen: set[str] = set()
    errors = _READ_ERRORS + _zstd_error()
    current = MANIFEST
    while True:
        try:
            info = tar.next()
        except errors as exc:
            raise BackupInvalid(f"{path}: damaged or cut short after member {current} ({exc})") from exc
        if info is None:
            break
        current = info.name
        member = wanted.get(current)
        if member is None or current in seen:
            raise BackupInvalid(f"{path}: member {current} is not listed in the manifest (or repeated)")
        if not info.isreg():
            raise BackupInvalid(f"{path}: member {current} is not a regular file")
        seen.add(current)
        target = dest / _safe_rel(current)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        h = hashlib.sha256()
        size = 0
        mode = member["mode"] & _MODE_MASK
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            try:
                src = tar.extractfile(info)
                assert src is not None
                while block := src.read(_CHUNK):
                    h.update(block)
                    out.write(block)
                    size += len(block)
            except errors as exc:
                raise BackupInvalid(f"{path}: damaged or cut short in member {current} ({exc})") from exc
            out.flush()
            os.fsync(out.fileno())
        os.chmod(target, mode)
        if size != member["size"] or h.hexdigest() != member["sha256"]:
            raise BackupInvalid(
                f"{path}: member {current} does not match its SHA-256 in the manifest: the backup is damaged"
            )
    missing = sorted(set(wanted) - seen)
    if missing:
        raise BackupInvalid(
            f"{path}: member {missing[0]} is missing ({len(missing)} missing): the backup is cut short"
        )


def _verify_ledger(dest: Path, manifest: Mapping[str, Any], path: Path) -> None:
    """The full ledger check, then the restored root at the manifest's size against its signed checkpoint."""
    vkey_file = dest / "ledger.pub"
    origin = manifest["node"]["origin"]
    try:
        verifier = load_verifier(vkey_file.read_text(encoding="utf-8").strip())
        signed = verify_checkpoint(manifest["ledger"]["checkpoint"], verifier)
    except FileNotFoundError:
        raise BackupInvalid(f"{path}: member ledger.pub is missing; the ledger cannot be verified") from None
    except (CheckpointInvalid, ValueError) as exc:
        raise BackupInvalid(
            f"{path}: the manifest's checkpoint does not verify with ledger.pub: {exc}"
        ) from exc
    size, root = manifest["ledger"]["size"], manifest["ledger"]["root_hash"]
    cp = signed.checkpoint
    if cp.origin != origin or cp.tree_size != size or cp.root_hash.hex() != root:
        raise BackupInvalid(f"{path}: the manifest's size and root are not what its signed checkpoint says")
    report = verify_ledger(str(dest / "ledger"), verifier, None)
    if not report.ok:
        raise BackupInvalid(f"{path}: the restored ledger fails verification: {report.first_problem}")
    if report.entries != size or report.root_hash.hex() != root:
        raise BackupInvalid(
            f"{path}: the restored ledger holds {report.entries} entries with root {report.root_hash.hex()}, "
            f"but the signed checkpoint commits to {size} entries with root {root}"
        )
    # The key that signed must be the one the ledger's first entry announced at init.
    first = _first_entry_vkey(dest / "ledger")
    if first is not None and first != verifier.vkey():
        raise BackupInvalid(f"{path}: ledger.pub is not the key the ledger announced at init")


def _first_entry_vkey(ledger_dir: Path) -> str | None:
    data = (ledger_dir / "segments" / "seg-0000000000000000.log").read_bytes()
    frames, _ = scan(data)
    if not frames:
        return None
    entry = json.loads(frames[0].payload)
    vkey = entry.get("details", {}).get("vkey") if entry.get("action") == "node.initialised" else None
    return vkey if isinstance(vkey, str) else None


def _check_sqlite(db: Path, path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            (result,) = conn.execute("PRAGMA integrity_check").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupInvalid(f"{path}: member store.db is not a usable SQLite database ({exc})") from exc
    if result != "ok":
        raise BackupInvalid(f"{path}: member store.db fails SQLite's integrity check: {result}")


def _restore_postgresql(url: str, dump: Path, *, force: bool) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            tables = inspect(conn).get_table_names()
    except SQLAlchemyError as exc:
        raise BackupError(f"the target PostgreSQL database cannot be reached: {exc}") from exc
    finally:
        engine.dispose()
    if tables and not force:
        raise RestoreRefused(
            f"the target database already holds {len(tables)} tables; restore into an empty database "
            "or pass --force to replace them"
        )
    uri, env = _libpq(url)
    argv = [
        _pg_tool("pg_restore"),
        "--single-transaction",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        f"--dbname={uri}",
    ]
    if tables:
        argv += ["--clean", "--if-exists"]
    _pg_run([*argv, str(dump)], env, "pg_restore of the store")


def _empty(p: Path) -> bool:
    return not p.exists() or (p.is_dir() and not any(p.iterdir()))


def restore_backup(path: Path, settings: Settings, *, force: bool = False) -> RestoreResult:
    """Restore the backup at ``path`` into ``settings.data_dir`` (and its store.url); all or nothing."""
    path = Path(path)
    target = settings.data_dir.absolute()
    if target.exists() and not target.is_dir():
        raise RestoreRefused(f"{target} is a file, not a directory")
    if not _empty(target) and not force:
        raise RestoreRefused(f"{target} is not empty; restore into an empty directory or pass --force")
    url = Node.store_url(settings)
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    work: Path | None = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
    assert work is not None
    try:
        with _open_archive(path) as (tar, _compression):
            manifest, manifest_sha = _parse_manifest(tar, path)
            _extract(tar, path, manifest, work)
        _verify_ledger(work, manifest, path)
        store = manifest["store"]
        backend = make_url(url).get_backend_name()
        if backend != store["backend"]:
            raise RestoreRefused(
                f"the backup holds a {store['backend']} store but store.url names {backend}; set store.url "
                f"to a {store['backend']} database (a restore does not convert between backends)"
            )
        outside: Path | None = None
        if backend == "sqlite":
            _check_sqlite(work / store["member"], path)
            db = _sqlite_path(url)
            if db is not None and db != (target / "store.db").resolve():
                outside = db  # store.url names a file outside the data dir
                if db.exists() and not force:
                    raise RestoreRefused(f"{db} (store.url) exists; pass --force to replace it")
        else:
            _restore_postgresql(url, work / store["member"], force=force)
        restored_seq = None
        if manifest["secrets"]:
            restored_seq = _record_restore(work, settings, manifest, manifest_sha, url, path)
        _place(work, target)
        work = None
        if outside is not None:
            for s in _SQLITE_SIDE[1:]:
                outside.with_name(outside.name + s).unlink(missing_ok=True)
            outside.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            shutil.move(str(target / store["member"]), str(outside))
    finally:
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return RestoreResult(
        target,
        manifest["node"]["origin"],
        manifest["ledger"]["size"],
        manifest["ledger"]["root_hash"],
        manifest_sha,
        manifest["secrets"],
        store["backend"],
        len(manifest["members"]),
        restored_seq,
    )


def _record_restore(
    work: Path, settings: Settings, manifest: Mapping[str, Any], manifest_sha: str, url: str, path: Path
) -> int:
    """Open the restored node (proving it opens) and append ``node.restored`` to its own ledger."""
    store = manifest["store"]
    if store["backend"] == "sqlite":
        url = f"sqlite:///{(work / store['member']).resolve()}"
    node_settings = settings.model_copy(
        update={
            "node": settings.node.model_copy(update={"data_dir": work}),
            "store": settings.store.model_copy(update={"url": url}),
        }
    )
    try:
        with Node.open(node_settings) as node:
            receipt = node.record(
                "system:restore",
                "node.restored",
                details={
                    "manifest_sha256": manifest_sha,
                    "tree_size": manifest["ledger"]["size"],
                    "root_hash": manifest["ledger"]["root_hash"],
                    "backup_created": manifest.get("created"),
                    "file": path.name,
                },
            )
    except (NodeError, LedgerError) as exc:
        raise BackupInvalid(f"{path}: the restored node does not open: {exc}") from exc
    return receipt.seq


def _fsync_dir(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _place(work: Path, target: Path) -> None:
    """Rename the verified tree into place; an existing target (``--force``) goes only once it has
    (but its ``backups/`` directory stays with the data dir)."""
    os.chmod(work, 0o700)
    old: Path | None = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{secrets.token_hex(4)}"
        os.rename(target, old)
    try:
        os.rename(work, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    _fsync_dir(target.parent)
    if old is not None:
        # Backups are never inside a backup: keep the replaced node's (the file restored may be one).
        if (old / "backups").is_dir() and not (target / "backups").exists():
            os.rename(old / "backups", target / "backups")
        shutil.rmtree(old, ignore_errors=True)
