"""Masking whole files (JSON lines, CSV columns) with all-or-nothing output.

A file is masked into a spooled buffer first and written out only when every line has passed: a bad
line 90,000 lines in must not leave 89,999 masked lines behind that look like a finished job. The
buffer spills to a temporary file past 64 MiB, so large inputs do not need the memory.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from appliance.masking.anonymizer import FREE_TEXT
from appliance.masking.entities import ENTITY_TYPES
from appliance.masking.errors import MaskingError, UnknownEntityType
from appliance.masking.service import MaskingService

__all__ = ["FileMask", "MaskInputError", "mask_csv", "mask_jsonl", "parse_columns"]

Progress = Callable[[str, int, int], None]
_SPOOL_BYTES = 64 * 1024 * 1024


class MaskInputError(MaskingError):
    """A line of the input cannot be masked; the message names the line and what to fix."""


@dataclass
class FileMask:
    """The masked output (not yet written) and what the ledger records about the run."""

    fmt: str
    role: str
    region: str
    version: str
    buffer: IO[bytes]
    lines: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        return {
            "source": "cli",
            "format": self.fmt,
            "lines": self.lines,
            "entities": dict(self.counts),
            "profile": self.version,
            "role": self.role,
            "region": self.region,
        }

    def close(self) -> None:
        self.buffer.close()

    def __enter__(self) -> FileMask:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_to(self, path: str | os.PathLike[str] | None) -> None:
        """Standard output, or ``path`` replaced atomically (a reader never sees half a file)."""
        self.buffer.seek(0)
        if path is None:
            shutil.copyfileobj(self.buffer, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        target = Path(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(self.buffer, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _total(source: IO[bytes]) -> int:
    try:
        return os.fstat(source.fileno()).st_size
    except (OSError, ValueError, io.UnsupportedOperation):
        return 0


def _valid_text(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MaskInputError(
            f"{where}: contains a lone surrogate (\\ud800-\\udfff); send valid Unicode"
        ) from None


def mask_jsonl(
    service: MaskingService,
    source: IO[bytes],
    *,
    role: str,
    region: str | None = None,
    entities: Collection[str] | None = None,
    spans: bool = False,
    progress: Progress | None = None,
) -> FileMask:
    """Mask the ``text`` field of each JSON object line; other fields pass through unchanged.

    With ``spans`` each output object gains ``entities``: type, start, end (code points into the
    ORIGINAL text) and score. Blank lines are kept as they are.
    """
    _, used_region = service.profile(role, region)
    wanted = service.check_entities(entities)
    result = FileMask(
        "jsonl", role, used_region, service.version, tempfile.SpooledTemporaryFile(_SPOOL_BYTES)
    )
    try:
        _fill_jsonl(
            result, service, source, role=role, region=region, wanted=wanted, spans=spans, progress=progress
        )
    except BaseException:
        result.close()
        raise
    return result


def _fill_jsonl(
    result: FileMask,
    service: MaskingService,
    source: IO[bytes],
    *,
    role: str,
    region: str | None,
    wanted: frozenset[str] | None,
    spans: bool,
    progress: Progress | None,
) -> None:
    total, done = _total(source), 0
    for n, raw in enumerate(source, start=1):
        done += len(raw)
        if not raw.strip():
            result.buffer.write(raw if raw.endswith(b"\n") else raw + b"\n")
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MaskInputError(f"line {n}: not valid UTF-8 (byte {exc.start + 1} of the line)") from None
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise MaskInputError(f"line {n}: not valid JSON ({exc})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise MaskInputError(f'line {n}: expected a JSON object with a string "text" field')
        text = obj["text"]
        _valid_text(text, f"line {n}")
        try:
            masked = service.mask_text(text, role=role, region=region, entities=wanted)
        except MaskingError as exc:
            raise MaskInputError(f"line {n}: {exc}") from None
        obj["text"] = masked.text
        if spans:
            obj["entities"] = [f.as_dict() for f in masked.findings]
        result.counts.update(f.type for f in masked.findings)
        result.buffer.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        result.buffer.write(b"\n")
        result.lines += 1
        if progress is not None and total:
            progress("masking", done, total)


def parse_columns(spec: str) -> dict[str, str]:
    """``notes,mobile=CN_MOBILE`` → {notes: free_text, mobile: CN_MOBILE}; types are checked here."""
    columns: dict[str, str] = {}
    for part in spec.split(","):
        name, _, kind = part.strip().partition("=")
        name, kind = name.strip(), kind.strip() or FREE_TEXT
        if not name:
            raise MaskInputError(f"--columns {spec!r}: an empty column name; list them as a,b=TYPE")
        if kind != FREE_TEXT and kind not in ENTITY_TYPES:
            raise UnknownEntityType(
                f"--columns: column {name!r} names unknown type {kind!r}; "
                f"known: {', '.join(sorted(ENTITY_TYPES))} (or leave it out to scan as free text)"
            )
        columns[name] = kind
    return columns


def mask_csv(
    service: MaskingService,
    source: IO[bytes],
    columns: str,
    *,
    role: str,
    region: str | None = None,
    progress: Progress | None = None,
) -> FileMask:
    """Mask the named columns of a UTF-8 CSV file (header row first); other columns pass unchanged.

    ``col`` is scanned as free text; ``col=TYPE`` masks the whole cell with TYPE's operator.
    """
    profile, used_region = service.profile(role, region)
    fields = parse_columns(columns)
    result = FileMask("csv", role, used_region, service.version, tempfile.SpooledTemporaryFile(_SPOOL_BYTES))
    total = _total(source)
    text = io.TextIOWrapper(source, encoding="utf-8", errors="strict", newline="")
    out = io.TextIOWrapper(result.buffer, encoding="utf-8", newline="", write_through=True)
    reader = csv.reader(text)
    writer = csv.writer(out)
    try:
        try:
            try:
                header = next(reader)
            except StopIteration:
                raise MaskInputError("the CSV file is empty; it needs a header row") from None
            missing = [c for c in fields if c not in header]
            if missing:
                raise MaskInputError(f"no column(s) {', '.join(missing)} in the header ({', '.join(header)})")
            index = {c: header.index(c) for c in fields}
            writer.writerow(header)
            for row in reader:
                line = reader.line_num
                if len(row) != len(header):
                    raise MaskInputError(f"line {line}: {len(row)} values for {len(header)} columns")
                for c, i in index.items():
                    value = row[i]
                    _valid_text(value, f"line {line}, column {c}")
                    if not value:
                        continue
                    try:
                        if fields[c] == FREE_TEXT:
                            masked = service.mask_text(value, role=role, region=region)
                            row[i] = masked.text
                            result.counts.update(f.type for f in masked.findings)
                        else:
                            row[i] = service.anonymizer.mask_value(value, fields[c], profile)
                            result.counts[fields[c]] += 1
                    except MaskingError as exc:
                        raise MaskInputError(f"line {line}, column {c}: {exc}") from None
                writer.writerow(row)
                result.lines += 1
                if progress is not None and total and result.lines % 200 == 0:
                    progress("masking", min(source.tell(), total), total)
        finally:
            out.detach()  # the buffer and the caller's file stay open: detach, do not close
            text.detach()
    except UnicodeDecodeError as exc:
        result.close()
        raise MaskInputError(f"line {reader.line_num + 1}: not valid UTF-8 ({exc.reason})") from None
    except csv.Error as exc:
        result.close()
        raise MaskInputError(f"line {reader.line_num}: not valid CSV ({exc})") from None
    except BaseException:
        result.close()
        raise
    return result
