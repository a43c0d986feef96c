"""The anchor contract's build artefact: ``Anchor.vy`` compiled by the ``vyper`` package, offline.

``make build`` runs ``python -m ledger.anchors._compile``, which writes ``Anchor.json`` (ABI, creation
and runtime bytecode, vyper version, SHA-256 of the source) beside the source. The JSON is a build
product, not a source: it is git-ignored, and :func:`load_artifact` compiles again whenever it is
missing or was built from another source text, so a plain ``pip install`` works without ``make``.

Only deploying needs the bytecode; reading anchors back (``ethereum.check_onchain``) uses a fixed
ABI fragment and never compiles, so the offline verifier does not need vyper.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from ledger.anchors.base import AnchorError

__all__ = ["ARTIFACT", "SOURCE", "compile_contract", "load_artifact", "source_sha256", "write_artifact"]

SOURCE = Path(__file__).resolve().with_name("Anchor.vy")
ARTIFACT = SOURCE.with_suffix(".json")
_FORMAT = "appliance-anchor-contract/1"

_lock = threading.Lock()
_cached: dict[str, Any] | None = None


def source_sha256(source: Path = SOURCE) -> str:
    try:
        return hashlib.sha256(source.read_bytes()).hexdigest()
    except OSError as exc:
        raise AnchorError(f"the anchor contract source {source} cannot be read ({exc.strerror})") from exc


def compile_contract(source: Path = SOURCE) -> dict[str, Any]:
    """Compile ``source`` with the installed vyper; the artefact as :func:`load_artifact` returns it."""
    try:
        import vyper
    except ImportError as exc:
        raise AnchorError(
            "the anchor contract is not compiled and vyper is not installed; "
            "install it (pip install 'vyper>=0.4') or run `make build`"
        ) from exc
    text = source.read_text(encoding="utf-8")
    try:
        out = vyper.compile_code(text, output_formats=["abi", "bytecode", "bytecode_runtime"])
    except Exception as exc:  # vyper raises many unrelated types; all mean "does not compile"
        raise AnchorError(f"{source.name} does not compile with vyper {vyper.__version__}: {exc}") from exc
    return {
        "format": _FORMAT,
        "contract": source.stem,
        "abi": out["abi"],
        "bytecode": out["bytecode"],
        "bytecode_runtime": out["bytecode_runtime"],
        "vyper_version": vyper.__version__,
        "source_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }


def write_artifact(path: Path = ARTIFACT, source: Path = SOURCE) -> dict[str, Any]:
    """Compile and write the artefact atomically (readers never see half a file)."""
    artifact = compile_contract(source)
    fd, tmp = tempfile.mkstemp(prefix=".Anchor-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(artifact, f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return artifact


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    if not all(isinstance(data.get(k), str) for k in ("bytecode", "source_sha256", "vyper_version")):
        return None
    return data if isinstance(data.get("abi"), list) else None


def load_artifact(path: Path = ARTIFACT, source: Path = SOURCE) -> dict[str, Any]:
    """The compiled contract; compiled (and written when the directory allows) if missing or stale."""
    global _cached
    digest = source_sha256(source)
    with _lock:
        if _cached is not None and _cached["source_sha256"] == digest and path == ARTIFACT:
            return _cached
        data = _read(path)
        if data is None or data["source_sha256"] != digest:
            try:
                data = write_artifact(path, source)
            except OSError:  # a read-only install: compile in memory every process start
                data = compile_contract(source)
        if path == ARTIFACT:
            _cached = data
        return data


def main(argv: list[str] | None = None) -> int:
    """``python -m ledger.anchors._compile [--check]``: build ``Anchor.json``, or only say if it is fresh."""
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        sys.stderr.write("usage: python -m ledger.anchors._compile [--check]\n")
        return 2
    try:
        if args == ["--check"]:
            data = _read(ARTIFACT)
            fresh = data is not None and data["source_sha256"] == source_sha256()
            print(f"{ARTIFACT}: {'up to date' if fresh else 'missing or stale; run make build'}")
            return 0 if fresh else 1
        data = write_artifact()
    except (AnchorError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    print(
        f"{ARTIFACT.name}: compiled with vyper {data['vyper_version']} (source {data['source_sha256'][:12]})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
