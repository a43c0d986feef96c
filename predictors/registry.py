"""Published model versions in the node's data directory: publish, list, roll back, load the live one.

Layout::

    <root>/<name>/<version>/   an artefact directory (see :mod:`predictors.model`), never modified
    <root>/<name>/LIVE         the id of the version in force, replaced atomically (os.replace)

A version id is the first 16 hex digits of the artefact digest, so publishing the same artefact twice
stores it once and a version id names exactly one set of bytes. Publishing copies into a temporary
directory, verifies the copy, then renames it into place: a crash leaves either no version or a
complete one. Loading re-verifies every file against the manifest and the manifest against the id, so
a version edited on disk is refused rather than scored with.

The registry keeps no history of its own: the node appends ``model.published`` /
``model.rolled_back`` ledger entries from :meth:`ModelVersion.as_dict`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from predictors.errors import RegistryError
from predictors.model import Model

__all__ = ["VERSION_ID_LENGTH", "ModelRegistry", "ModelVersion"]

VERSION_ID_LENGTH = 16
_LIVE = "LIVE"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_VERSION = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class ModelVersion:
    """One published version: what the ledger entry for publishing or rolling back records."""

    name: str
    version: str
    digest: str
    created: str
    training_data_digest: str
    schema_digest: str
    metrics: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "created": self.created,
            "training_data_digest": self.training_data_digest,
            "schema_digest": self.schema_digest,
            "metrics": dict(self.metrics),
        }


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ModelRegistry:
    """The model versions under one directory (``<data_dir>/models`` on a node)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- naming ------------------------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name) or name in (".", ".."):
            raise RegistryError(
                f"model name {name!r} is not allowed; use letters, digits, '_', '-' or '.' (at most 64, "
                "starting with a letter or digit)"
            )
        return self.root / name

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))

    # -- reading -----------------------------------------------------------------------------------------
    @staticmethod
    def _info(name: str, model: Model) -> ModelVersion:
        return ModelVersion(
            name=name,
            version=model.digest[:VERSION_ID_LENGTH],
            digest=model.digest,
            created=model.created,
            training_data_digest=model.training_data_digest,
            schema_digest=str(model.manifest.get("schema_digest", "")),
            metrics=dict(model.metrics),
        )

    def _ids(self, name: str) -> list[str]:
        base = self._dir(name)
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir() and _VERSION.fullmatch(p.name))

    def load(self, name: str, version: str, *, threads: int = 0) -> Model:
        """The verified artefact of one version; :class:`RegistryError` if unknown or altered on disk."""
        version = version.strip().lower()
        if len(version) == 64:
            version = version[:VERSION_ID_LENGTH]
        known = self._ids(name)
        if version not in known:
            listing = ", ".join(known) if known else "none published"
            raise RegistryError(f"model {name!r} has no version {version!r}; known versions: {listing}")
        model = Model.load(self._dir(name) / version, threads=threads)
        if model.digest[:VERSION_ID_LENGTH] != version:
            raise RegistryError(
                f"model {name!r} version {version}: its files were altered on disk (digest now "
                f"{model.digest[:VERSION_ID_LENGTH]}); publish it again from its source"
            )
        return model

    def versions(self, name: str) -> list[ModelVersion]:
        """Every stored version, oldest first (by the artefact's creation time). Each one is verified."""
        out = [self._info(name, self.load(name, vid)) for vid in self._ids(name)]
        return sorted(out, key=lambda v: (v.created, v.version))

    def live_id(self, name: str) -> str | None:
        try:
            text = (self._dir(name) / _LIVE).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        return text or None

    def live(self, name: str) -> ModelVersion | None:
        vid = self.live_id(name)
        return None if vid is None else self._info(name, self.load(name, vid))

    def load_live(self, name: str, *, threads: int = 0) -> Model:
        vid = self.live_id(name)
        if vid is None:
            raise RegistryError(f"model {name!r} has no live version; publish one first")
        return self.load(name, vid, threads=threads)

    # -- writing -----------------------------------------------------------------------------------------
    def _set_live(self, name: str, version: str) -> None:
        base = self._dir(name)
        fd, tmp = tempfile.mkstemp(prefix=f".{_LIVE}.", dir=base)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(version + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, base / _LIVE)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(base)

    def publish(self, name: str, model_dir: str | Path) -> ModelVersion:
        """Store the artefact in ``model_dir`` as a version of ``name`` and make it live.

        Idempotent: the same artefact maps to the same version id; publishing it again only makes it
        live. A stored copy found altered is set aside (``.broken-...``) and replaced by the good one.
        """
        base = self._dir(name)
        model = Model.load(model_dir)
        vid = model.digest[:VERSION_ID_LENGTH]
        target = base / vid
        base.mkdir(parents=True, exist_ok=True)
        if target.exists():
            try:
                self.load(name, vid)
            except RegistryError:
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
                os.replace(target, base / f".broken-{vid}-{stamp}")
        if not target.exists():
            tmp = Path(tempfile.mkdtemp(prefix=f".{vid}.", dir=base))
            try:
                model.save(tmp)
                if Model.load(tmp).digest != model.digest:
                    raise RegistryError(
                        f"model {name!r}: the copy of {model_dir} does not verify; publish again"
                    )
                try:
                    os.replace(tmp, target)
                except OSError:
                    if not target.exists():  # not a concurrent publish of the same artefact
                        raise
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
            _fsync_dir(base)
        stored = self.load(name, vid)
        self._set_live(name, vid)
        return self._info(name, stored)

    def rollback(self, name: str, version: str) -> ModelVersion:
        """Make a stored version live again (any version, verified first)."""
        model = self.load(name, version)
        vid = model.digest[:VERSION_ID_LENGTH]
        self._set_live(name, vid)
        return self._info(name, model)
