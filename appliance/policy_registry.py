"""Published policy library versions on disk: publish, roll back, and the live evaluator, hot-reloaded.

A published version is an immutable copy of a library directory under
``<data_dir>/policy/versions/<semver>+<hash12>/`` with a manifest signed by the node's policy key
(Ed25519, ``keys/policy-signing.key``; its public half in ``policy.pub``). ``LIVE`` names the version
in force; publishing or rolling back replaces it atomically, and every worker notices on its next
request (one ``stat``) and compiles the new version in the background while it keeps deciding with
the old one, so a reload never fails or stalls a request. A caller takes one evaluator per decision,
so an in-flight decision uses one consistent version.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.errors import ApplianceError
from appliance.keys import read_secret, write_secret
from policy import Evaluator, PolicyLibrary

__all__ = ["PolicyRegistry", "PolicyVersionError", "PublishedVersion"]

_MANIFEST = "manifest.json"
_FORMAT = "appliance-policy-version/1"


class PolicyVersionError(ApplianceError):
    """A version cannot be published, found or trusted; the message says what to do."""


@dataclass(frozen=True)
class PublishedVersion:
    id: str  # "<semver>+<first 12 hex of the content hash>"
    version: str
    content_hash: str
    published: str
    rules: int
    signature: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "version": self.version,
            "content_hash": self.content_hash,
            "published": self.published,
            "rules": self.rules,
            "signature": self.signature,
        }


def _signed_bytes(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class PolicyRegistry:
    """The versions of one node and the evaluator of the live one."""

    def __init__(self, root: Path, key_path: Path, pub_path: Path) -> None:
        self.root = root
        self._key_path = key_path
        self._pub_path = pub_path
        self._lock = threading.Lock()
        self._live_stamp: tuple[int, int, int] | None = None
        self._evaluator: Evaluator | None = None
        self._live_id: str | None = None
        self._loading: threading.Thread | None = None
        self.reload_error: str | None = None

    # -- keys --------------------------------------------------------------------------------------------
    @staticmethod
    def create_key(key_path: Path, pub_path: Path) -> None:
        """The node's policy signing key (0600) and its public half, made once by ``appliance init``."""
        key = Ed25519PrivateKey.generate()
        from cryptography.hazmat.primitives import serialization

        seed = key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        write_secret(key_path, base64.b64encode(seed) + b"\n")
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pub_path.write_text(base64.b64encode(pub).decode("ascii") + "\n", encoding="ascii")

    def _private_key(self) -> Ed25519PrivateKey:
        seed = base64.b64decode(read_secret(self._key_path).strip())
        return Ed25519PrivateKey.from_private_bytes(seed)

    def _public_key(self) -> Ed25519PublicKey:
        try:
            raw = base64.b64decode(self._pub_path.read_text(encoding="ascii").strip())
        except OSError as exc:
            raise PolicyVersionError(f"{self._pub_path} is missing; restore it from a backup") from exc
        return Ed25519PublicKey.from_public_bytes(raw)

    # -- versions ----------------------------------------------------------------------------------------
    @property
    def _versions_dir(self) -> Path:
        return self.root / "versions"

    @property
    def _live_file(self) -> Path:
        return self.root / "LIVE"

    def _read_manifest(self, vid: str) -> dict[str, Any]:
        path = self._versions_dir / vid / _MANIFEST
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PolicyVersionError(
                f"no published policy version {vid!r}; list them with `appliance policy versions`"
            ) from exc
        try:
            self._public_key().verify(base64.b64decode(manifest["signature"]), _signed_bytes(manifest))
        except (InvalidSignature, KeyError, ValueError) as exc:
            raise PolicyVersionError(
                f"policy version {vid!r}: the manifest signature does not verify; the version was "
                "altered on disk — publish it again from its source"
            ) from exc
        return manifest

    @staticmethod
    def _as_version(manifest: dict[str, Any]) -> PublishedVersion:
        return PublishedVersion(
            manifest["id"],
            manifest["version"],
            manifest["content_hash"],
            manifest["published"],
            manifest["rules"],
            manifest["signature"],
        )

    def versions(self) -> list[PublishedVersion]:
        if not self._versions_dir.is_dir():
            return []
        out = [
            self._as_version(self._read_manifest(p.name)) for p in self._versions_dir.iterdir() if p.is_dir()
        ]
        return sorted(out, key=lambda v: v.published)

    def live_id(self) -> str | None:
        try:
            return self._live_file.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def library(self, vid: str) -> PolicyLibrary:
        self._read_manifest(vid)
        return PolicyLibrary.from_dir(self._versions_dir / vid)

    def publish(self, source: Path) -> tuple[PublishedVersion, bool]:
        """Validate ``source``, store it as a signed version and make it live; (version, newly stored).

        Publishing content that is already stored makes that version live again. A library whose
        semantic version is taken by different content is refused: bump ``version`` in library.yaml.
        """
        library = PolicyLibrary.from_dir(source)  # raises the library's own errors, nothing written yet
        vid = f"{library.version}+{library.content_hash[:12]}"
        for existing in self.versions():
            if existing.version == library.version and existing.content_hash != library.content_hash:
                raise PolicyVersionError(
                    f"version {library.version} is already published with other content ({existing.id}); "
                    "bump `version` in library.yaml"
                )
        target = self._versions_dir / vid
        new = not target.exists()
        if new:
            self._versions_dir.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{vid}.", dir=self._versions_dir))
            try:
                for path in sorted(source.rglob("*")):
                    if path.is_file() and path.suffix in (".yaml", ".yml", ".md"):
                        dest = tmp / path.relative_to(source)
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copy2(path, dest)
                if PolicyLibrary.from_dir(tmp).content_hash != library.content_hash:
                    raise PolicyVersionError(f"{source} changed while it was being published; publish again")
                manifest: dict[str, Any] = {
                    "format": _FORMAT,
                    "id": vid,
                    "version": library.version,
                    "content_hash": library.content_hash,
                    "published": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                    "rules": len(library.rules),
                }
                manifest["signature"] = base64.b64encode(
                    self._private_key().sign(_signed_bytes(manifest))
                ).decode()
                (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
                os.replace(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        self._set_live(vid)
        return self._as_version(self._read_manifest(vid)), new

    def rollback(self, vid: str) -> PublishedVersion:
        """Make an earlier published version live again (its signature is checked first)."""
        manifest = self._read_manifest(vid)
        PolicyLibrary.from_dir(self._versions_dir / vid)
        self._set_live(vid)
        return self._as_version(manifest)

    def _set_live(self, vid: str) -> None:
        tmp = self._live_file.with_suffix(".tmp")
        tmp.write_text(vid + "\n", encoding="utf-8")
        os.replace(tmp, self._live_file)

    # -- the live evaluator ------------------------------------------------------------------------------
    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self._live_file.stat()
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _compile(self, vid: str) -> Evaluator:
        return Evaluator(self.library(vid))

    def evaluator(self) -> Evaluator:
        """The live version's evaluator; a newly published one is swapped in once compiled."""
        stamp = self._stamp()
        if stamp is None:
            raise PolicyVersionError("no policy library is published; run `appliance policy publish DIR`")
        if self._evaluator is None:
            with self._lock:
                if self._evaluator is None:
                    vid = self.live_id()
                    assert vid is not None
                    self._evaluator, self._live_id, self._live_stamp = self._compile(vid), vid, stamp
            return self._evaluator
        if stamp != self._live_stamp:
            self._reload_in_background(stamp)
        return self._evaluator

    def _reload_in_background(self, stamp: tuple[int, int, int]) -> None:
        with self._lock:
            if self._loading is not None and self._loading.is_alive():
                return
            vid = self.live_id()
            if vid is None or vid == self._live_id:
                self._live_stamp = stamp
                return

            def load() -> None:
                try:
                    evaluator = self._compile(vid)
                except Exception as exc:  # noqa: BLE001 - keep serving the old version, say why
                    self.reload_error = f"policy version {vid} could not be loaded: {exc}"
                    with self._lock:
                        self._live_stamp = stamp
                    return
                with self._lock:
                    self._evaluator, self._live_id, self._live_stamp = evaluator, vid, stamp
                    self.reload_error = None

            self._loading = threading.Thread(target=load, name="policy-reload", daemon=True)
            self._loading.start()

    def wait_reloaded(self, timeout: float = 10.0) -> None:
        """Block until a background reload (if any) has finished; for tests and the CLI."""
        thread = self._loading
        if thread is not None:
            thread.join(timeout)

    @property
    def live_version(self) -> str | None:
        return self._live_id
