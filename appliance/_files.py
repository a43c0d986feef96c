"""Small state files the node's services keep in the data dir, and what they may say of a URL."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["endpoint", "write_json", "write_text"]


def write_text(path: Path, text: str) -> None:
    """Atomically (temp file, fsync, rename), 0600 in a 0700 dir: readers see the old file or the new one.

    State files may hold URLs that embed provider keys, so they are private like the keys beside them.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """:func:`write_text` of ``data`` as indented, key-sorted JSON."""
    write_text(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def endpoint(url: str | None) -> str | None:
    """Scheme, host and port of a URL: what logs and the ledger may show (paths carry API keys)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<unparsable URL>"
