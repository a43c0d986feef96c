"""Import customers or events from CSV, JSONL or Parquet, refusing bad rows by line number.

Two passes over the file. The first checks every row against the declared schema
and against the store (duplicate or unknown external ids) and writes nothing; it is
all ``--dry-run`` does. The second writes batches of ``batch_rows`` rows, each in
one transaction. So a bad row stops the import before anything is written, and a
database failure in the second pass loses at most the batch in flight, never half
a record; the error says which rows were already imported.

Line numbers are 1-based: the physical line for CSV (the header is line 1; a quoted
cell spanning lines reports the line the row starts on) and JSONL, the row number
for Parquet.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from appliance.store.errors import ImportRejected, RecordInvalid, StoreError
from appliance.store.schema import CORE_COLUMNS, CustomerRecord, EventRecord
from appliance.store.store import Store

__all__ = ["FORMATS", "KINDS", "ImportReport", "Progress", "detect_format", "import_file"]

KINDS = ("customers", "events")
FORMATS = ("csv", "jsonl", "parquet")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_EVENT_COLUMNS = ("external_id", "ts", "kind", "channel", "amount", "currency", "details")

#: ``progress(stage, rows_done, rows_total)``; stage is "checking" (total is an upper estimate for
#: CSV and JSONL) or "writing" (total exact).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ImportReport:
    source: str
    kind: str
    format: str
    rows: int  # rows in the file
    written: int  # rows written (0 for a dry run)
    batches: int  # transactions committed
    sha256: str  # of the file's bytes, for the ledger
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_format(path: str | Path) -> str:
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise StoreError(
            f"cannot tell the format of {path} from its extension; name it .csv, .jsonl or .parquet, "
            "or give --format"
        )
    return fmt


def import_file(
    store: Store,
    path: str | Path,
    *,
    kind: Literal["customers", "events"] = "customers",
    fmt: str | None = None,
    batch_rows: int = 500,
    dry_run: bool = False,
    progress: Progress | None = None,
    source: str | None = None,
) -> ImportReport:
    """Check a whole file, then (unless ``dry_run``) write it in batches; see the module docstring.

    ``source`` is how errors name the file (default: the path as given).
    Raises :class:`ImportRejected` for a bad row, :class:`StoreError` for an unreadable file.
    """
    path = Path(path)
    source = source or str(path)
    if kind not in KINDS:
        raise StoreError(f"cannot import {kind!r}; import one of: {', '.join(KINDS)}")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise StoreError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if batch_rows < 1:
        raise StoreError("batch_rows must be at least 1")
    digest, lines = _digest(path, source)
    unit = "row" if fmt == "parquet" else "line"
    columns = _columns(store, kind)

    def rows() -> Iterator[tuple[int, dict[str, Any]]]:
        reader = {"csv": _read_csv, "jsonl": _read_jsonl, "parquet": _read_parquet}[fmt]
        return reader(path, source, columns)

    estimate = _parquet_rows(path, source) if fmt == "parquet" else max(lines - (fmt == "csv"), 0)
    counted = _check(store, kind, rows(), source, unit, batch_rows, estimate, progress)
    if dry_run:
        return ImportReport(source, kind, fmt, counted, 0, 0, digest, True)
    written, batches = _write(store, kind, rows(), source, unit, batch_rows, counted, progress)
    return ImportReport(source, kind, fmt, counted, written, batches, digest, False)


# -- passes ----------------------------------------------------------------------------------------
def _validate(store: Store, kind: str, row: dict[str, Any]) -> CustomerRecord | EventRecord:
    if kind == "customers":
        return store.schema.validate_customer(row)
    return store.schema.validate_event(row)


def _check(
    store: Store,
    kind: str,
    rows: Iterator[tuple[int, dict[str, Any]]],
    source: str,
    unit: str,
    batch_rows: int,
    estimate: int,
    progress: Progress | None,
) -> int:
    seen: set[str] = set()  # external ids of customers earlier in the file
    pending: list[tuple[int, str]] = []  # (line, external id) still to look up in the store
    count = 0

    def look_up() -> None:
        found = store.existing_external_ids(e for _, e in pending)
        for line, ext in pending:
            if kind == "customers" and ext in found:
                raise ImportRejected(
                    source, line, "external_id", "already exists in the store; each customer once", unit=unit
                )
            if kind == "events" and ext not in found:
                raise ImportRejected(
                    source, line, "external_id", "names no customer in the store; import it first", unit=unit
                )
        pending.clear()

    for line, row in rows:
        try:
            rec = _validate(store, kind, row)
        except RecordInvalid as exc:
            raise ImportRejected(source, line, exc.field, exc.reason, unit=unit) from None
        assert rec.external_id is not None
        if kind == "customers":
            if rec.external_id in seen:
                raise ImportRejected(
                    source,
                    line,
                    "external_id",
                    "appears earlier in this file; keep one row per customer",
                    unit=unit,
                )
            seen.add(rec.external_id)
        pending.append((line, rec.external_id))
        count += 1
        if len(pending) >= batch_rows:
            look_up()
        if progress and count % 256 == 0:
            progress("checking", count, max(estimate, count))
    look_up()
    if progress:
        progress("checking", count, count)
    return count


def _write(
    store: Store,
    kind: str,
    rows: Iterator[tuple[int, dict[str, Any]]],
    source: str,
    unit: str,
    batch_rows: int,
    total: int,
    progress: Progress | None,
) -> tuple[int, int]:
    written = batches = 0
    batch: list[Any] = []
    lines: list[int] = []

    def flush() -> None:
        nonlocal written, batches
        try:
            if kind == "customers":
                store.add_customers(batch)
            else:
                store.add_events(batch)
        except RecordInvalid as exc:  # the store changed since the check (another writer)
            line = lines[exc.index] if exc.index is not None else lines[0]
            raise ImportRejected(source, line, exc.field, exc.reason, unit=unit, written=written) from None
        except StoreError as exc:
            raise ImportRejected(source, lines[0], None, str(exc), unit=unit, written=written) from exc
        written += len(batch)
        batches += 1
        batch.clear()
        lines.clear()
        if progress:
            progress("writing", written, total)

    if progress:
        progress("writing", 0, total)
    for line, row in rows:
        try:
            batch.append(_validate(store, kind, row))
        except RecordInvalid as exc:  # the file changed since the check
            raise ImportRejected(source, line, exc.field, exc.reason, unit=unit, written=written) from None
        lines.append(line)
        if len(batch) >= batch_rows:
            flush()
    if batch:
        flush()
    return written, batches


# -- readers ----------------------------------------------------------------------------------------------
def _columns(store: Store, kind: str) -> frozenset[str]:
    if kind == "customers":
        return frozenset(c for c in CORE_COLUMNS if c != "id") | {f.name for f in store.schema.fields}
    return frozenset(_EVENT_COLUMNS)


def _check_header(names: list[str], columns: frozenset[str], source: str, unit: str) -> None:
    seen: set[str] = set()
    for name in names:
        if not name:
            raise ImportRejected(
                source, 1, None, "the header has an empty column name; name every column", unit=unit
            )
        if name in seen:
            raise ImportRejected(source, 1, name, "is a column twice in the header; keep one", unit=unit)
        if name not in columns:
            raise ImportRejected(
                source,
                1,
                name,
                "is not a declared column; remove it or declare it in config/store/customer_schema.yaml",
                unit=unit,
            )
        seen.add(name)


def _digest(path: Path, source: str) -> tuple[str, int]:
    """SHA-256 of the file and its newline count (the checking pass's progress estimate)."""
    h = hashlib.sha256()
    lines = 0
    last = b"\n"
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
            if last != b"\n":  # a last line without its newline
                lines += 1
    except OSError as exc:
        raise StoreError(f"{source} cannot be read ({exc.strerror}); check the path") from exc
    return h.hexdigest(), lines


def _read_csv(path: Path, source: str, columns: frozenset[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("r", encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, strict=True)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                raise ImportRejected(
                    source, 1, None, "the file is empty; the first line must name the columns"
                )
            header = [h.strip() for h in header]
            _check_header(header, columns, source, "line")
            while True:
                start = reader.line_num + 1
                cells = next(reader, None)
                if cells is None:
                    return
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue  # blank line
                if len(cells) != len(header):
                    raise ImportRejected(
                        source,
                        start,
                        None,
                        f"has {len(cells)} cells but the header names {len(header)} columns; quote cells "
                        "that contain commas",
                    )
                yield start, dict(zip(header, cells, strict=True))
        except UnicodeDecodeError:
            raise ImportRejected(
                source, reader.line_num + 1, None, "is not UTF-8 text; save the file as UTF-8"
            ) from None
        except csv.Error as exc:
            raise ImportRejected(source, start, None, f"is not valid CSV ({exc})") from None


def _read_jsonl(path: Path, source: str, columns: frozenset[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            if n == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise ImportRejected(source, n, None, "is not UTF-8 text; save the file as UTF-8") from None
            except ValueError as exc:
                raise ImportRejected(
                    source, n, None, f"is not valid JSON ({exc.args[0].split(':')[0]})"
                ) from None
            if not isinstance(row, dict):
                raise ImportRejected(source, n, None, "is not a JSON object; give one object per line")
            for key in row:
                if key not in columns:
                    raise ImportRejected(
                        source,
                        n,
                        key,
                        "is not a declared field; remove it or declare it in "
                        "config/store/customer_schema.yaml",
                    )
            yield n, row


def _open_parquet(path: Path, source: str) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise StoreError(f"{source} is not a readable Parquet file ({exc}); check the file") from exc


def _parquet_rows(path: Path, source: str) -> int:
    pf = _open_parquet(path, source)
    try:
        return int(pf.metadata.num_rows)
    finally:
        pf.close()


def _read_parquet(path: Path, source: str, columns: frozenset[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa

    pf = _open_parquet(path, source)
    try:
        _check_header(list(pf.schema_arrow.names), columns, source, "row")
        n = 0
        try:
            for batch in pf.iter_batches(batch_size=1024):
                for row in batch.to_pylist():
                    n += 1
                    yield n, row
        except pa.ArrowException as exc:
            raise ImportRejected(source, n + 1, None, f"cannot be read ({exc})", unit="row") from None
    finally:
        pf.close()
