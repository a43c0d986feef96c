"""Training and scoring tables: read them, validate them, and say exactly which cell is wrong.

Tables come from people: exports from a CRM, a spreadsheet saved as CSV, a playbook's feature run.
The errors they contain are mundane (a stray ``abc`` in a numeric column, an empty target, a
``Yes``/``No`` target where ``1``/``0`` was expected), and the fix is always in the file, so every
message names the file, the 1-based CSV line (the header is line 1), the column and the value.

A first column with an empty header is the row index a DataFrame's ``to_csv`` writes by default; it
is dropped (a column without a name cannot be a feature, and keeping it would make a file saved with
its index fail the schema of one saved without). A CSV is read with ``skip_blank_lines=False`` so
row positions map back to physical lines; blank lines are then dropped, keeping their line numbers.
The digest of a training table is SHA-256 over the file bytes (or a canonical hash of a DataFrame),
recorded in the model manifest so a published model names the exact data it learnt from.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from predictors.errors import DataError
from predictors.schema import Feature, FeatureSchema, level_strings, row_locator

__all__ = [
    "DEFAULT_MAX_LEVELS",
    "NEGATIVE_LABELS",
    "POSITIVE_LABELS",
    "Table",
    "TrainingSet",
    "frame_digest",
    "read_table",
    "training_set",
]

POSITIVE_LABELS = frozenset({"1", "yes", "true"})
NEGATIVE_LABELS = frozenset({"0", "no", "false"})
DEFAULT_MAX_LEVELS = (
    50  # a text column with more distinct values is an identifier or free text, not a category
)
_SHOW = 8


@dataclass(frozen=True, eq=False)
class Table:
    """A table plus where it came from: ``lines[i]`` is the CSV line of row ``i`` (None for a DataFrame)."""

    frame: pd.DataFrame
    source: str
    digest: str
    lines: np.ndarray | None = None

    def at(self, pos: int) -> str:
        """``"line 17"`` (CSV) or ``"row 17"`` (DataFrame) for row position ``pos``."""
        return f"line {int(self.lines[pos])}" if self.lines is not None else f"row {pos + 1}"

    @property
    def locate(self) -> Callable[[int], str]:
        """``pos -> "train.csv line 17"``, the form :meth:`FeatureSchema.check` takes."""
        return row_locator(self.source, self.lines)


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """A validated training table as arrays: features ``x`` (schema order), labels ``y`` (0/1)."""

    schema: FeatureSchema
    x: np.ndarray
    y: np.ndarray
    times: np.ndarray | None
    source: str
    digest: str

    @property
    def rows(self) -> int:
        return int(self.y.shape[0])

    @property
    def positives(self) -> int:
        return int(self.y.sum())


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and a per-row hash of the values (the index is not data)."""
    h = hashlib.sha256()
    header = [[str(c), str(t)] for c, t in zip(frame.columns, frame.dtypes, strict=True)]
    h.update(json.dumps(header, ensure_ascii=False).encode("utf-8"))
    try:
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    except TypeError as exc:
        raise DataError(f"the table holds values that are not plain numbers or text ({exc})") from exc
    return h.hexdigest()


def read_table(source: str | Path | pd.DataFrame | Table, *, text_columns: Collection[str] = ()) -> Table:
    """A CSV file (or an in-memory DataFrame) as a :class:`Table`; ``text_columns`` are kept as text.

    Pass the id column and categorical features as ``text_columns`` so ``007`` stays ``007`` and a
    category ``3`` is not read as the number 3.0.
    """
    if isinstance(source, Table):
        return source
    if isinstance(source, pd.DataFrame):
        if len(source.columns) == 0 or len(source) == 0:
            raise DataError("the DataFrame is empty; give it a header and at least one row")
        if any(not isinstance(c, str) for c in source.columns):
            source = source.rename(columns=str)
        names = list(source.columns)
        repeated = sorted({c for c in names if names.count(c) > 1})
        if repeated:
            raise DataError(f"the DataFrame has columns {', '.join(map(repr, repeated))} more than once")
        return Table(source, "<DataFrame>", frame_digest(source), None)
    path = Path(source)
    name = str(source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{name}: cannot read it ({exc.strerror or exc}); check the path") from exc
    if not data.strip():
        raise DataError(f"{name} is empty; give a CSV with a header line and at least one row")
    header = next(csv.reader([data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")]))
    header = [h.strip() for h in header]
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise DataError(
            f"{name} line 1: the header names {', '.join(map(repr, repeated))} more than once; "
            "rename the duplicates"
        )
    dtype = {c: str for c in text_columns if c in header}
    try:
        frame = pd.read_csv(io.BytesIO(data), skip_blank_lines=False, dtype=dtype, encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as UTF-8 CSV"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise DataError(f"{name} is not a well-formed CSV: {exc}; fix the line it names") from exc
    if header and header[0] == "" and len(header) > 1:
        frame = frame.iloc[:, 1:]  # a saved DataFrame index (`to_csv` default): row labels, not data
    frame.columns = [str(c).strip() for c in frame.columns]
    blank = frame.isna().all(axis=1).to_numpy()
    lines = np.arange(2, len(frame) + 2, dtype=np.int64)
    if blank.any():
        frame = frame.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    if len(frame) == 0:
        raise DataError(f"{name} has a header but no rows; give it at least one row of data")
    return Table(frame, name, hashlib.sha256(data).hexdigest(), lines)


def _cells(table: Table, positions: np.ndarray) -> str:
    shown = ", ".join(table.at(int(p)) for p in positions[:_SHOW])
    more = f" (and {positions.size - _SHOW} more)" if positions.size > _SHOW else ""
    return shown + more


def _target(table: Table, target: str) -> tuple[np.ndarray, str]:
    """0/1 labels and the spelling of the positive class in the file."""
    column = table.frame[target]
    missing = np.flatnonzero(column.isna().to_numpy())
    if missing.size == len(column):
        raise DataError(
            f"{table.source}: target column {target!r} is empty (no values); fill it with 1/0 or "
            "yes/no for every row"
        )
    if missing.size:
        raise DataError(
            f"{table.source}: target {target!r} is empty on {_cells(table, missing)}; fill "
            "those values or drop the rows"
        )
    if pd.api.types.is_bool_dtype(column.dtype):
        labels, positive = column.to_numpy(dtype=bool), "true"
    elif pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64)
        seen = sorted(set(np.unique(values).tolist()))
        if not set(seen) <= {0.0, 1.0}:
            shown = ", ".join(f"{v:g}" for v in seen[:_SHOW])
            raise DataError(
                f"{table.source}: target {target!r} must be binary (1/0, yes/no, true/false) but holds "
                f"{shown}{' ...' if len(seen) > _SHOW else ''}; recode it to two classes"
            )
        labels, positive = values == 1.0, "1"
    else:
        text = level_strings(column).str.lower()  # "Yes" and "YES" are one class, not two
        seen = sorted(set(text.tolist()))
        positives = [v for v in seen if v in POSITIVE_LABELS]
        if len(seen) != 2 or len(positives) != 1:
            shown = ", ".join(repr(v) for v in seen[:_SHOW]) + (" ..." if len(seen) > _SHOW else "")
            why = (
                f"has {len(seen)} distinct values"
                if len(seen) != 2
                else "has no value that reads as the positive class"
            )
            raise DataError(
                f"{table.source}: target {target!r} {why} ({shown}); it must be binary with the "
                "positive class spelt 1, yes or true: recode it"
            )
        labels, positive = (text == positives[0]).to_numpy(dtype=bool), positives[0]
    y = labels.astype(np.int8)
    if y.min() == y.max():
        raise DataError(
            f"{table.source}: target {target!r} has only one class ({'positive' if y[0] else 'negative'}"
            " in every row); training needs examples of both"
        )
    return y, positive


def _feature(table: Table, name: str, max_levels: int) -> Feature:
    column = table.frame[name]
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        return Feature(name, "numeric")
    numbers = pd.to_numeric(column, errors="coerce")
    present = column.notna().to_numpy()
    bad = np.flatnonzero(present & numbers.isna().to_numpy())
    if bad.size == 0:
        return Feature(name, "numeric")
    if bad.size * 2 < present.sum():  # mostly numbers: the text is a typo, not a category
        first = int(bad[0])
        raise DataError(
            f"{table.locate(first)}: column {name!r}: {str(column.iloc[first])!r} is not a number "
            f"({bad.size} such value(s) in the column, at {_cells(table, bad)}); fix or "
            "blank those cells"
        )
    levels = sorted(set(level_strings(column).dropna().tolist()))
    if len(levels) > max_levels:
        raise DataError(
            f"{table.source}: column {name!r} holds text with {len(levels)} distinct values (e.g. "
            f"{levels[0]!r}); a feature must be numeric or a category with at most {max_levels} "
            "levels: drop the column, or name it as the id column"
        )
    return Feature(name, "categorical", tuple(levels))


def _times(table: Table, name: str) -> np.ndarray:
    column = table.frame[name]
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.flatnonzero(np.isnan(values))
    else:
        parsed = pd.to_datetime(column, errors="coerce", utc=True, format="ISO8601")
        bad = np.flatnonzero(parsed.isna().to_numpy())
        values = parsed.to_numpy(dtype="datetime64[ns]").astype(np.int64).astype(np.float64)
    if bad.size:
        raise DataError(
            f"{table.source}: time column {name!r} is empty or not a number/ISO 8601 time on "
            f"{_cells(table, bad)}; every row needs a time for time-aware validation"
        )
    return values


def training_set(
    source: str | Path | pd.DataFrame | Table,
    target: str,
    *,
    id_column: str | None = None,
    time_column: str | None = None,
    max_levels: int = DEFAULT_MAX_LEVELS,
) -> TrainingSet:
    """Validate a training table and infer its feature schema: every column but target, id and time.

    Text columns with at most ``max_levels`` distinct values become categorical features; mostly
    numeric columns with a few text cells are refused, naming the cells (a typo, not a category).
    """
    text_columns = [c for c in (id_column,) if c]
    table = read_table(source, text_columns=text_columns)
    columns = [str(c) for c in table.frame.columns]
    for role, name in (("target", target), ("id", id_column), ("time", time_column)):
        if name is not None and name not in columns:
            shown = ", ".join(columns[:_SHOW]) + (" ..." if len(columns) > _SHOW else "")
            raise DataError(f"{table.source} has no {role} column {name!r}; its columns are {shown}")
    side = {c for c in (target, id_column, time_column) if c}
    if len(side) < len([c for c in (target, id_column, time_column) if c]):
        raise DataError("the target, id and time columns must be three different columns")
    y, positive = _target(table, target)
    names = [c for c in columns if c not in side]
    if not names:
        raise DataError(
            f"{table.source} has no feature columns besides the target; add the customer attributes"
        )
    schema = FeatureSchema(
        tuple(_feature(table, n, max_levels) for n in names),
        target=target,
        id_column=id_column,
        time_column=time_column,
        positive_label=positive,
    )
    times = _times(table, time_column) if time_column else None
    return TrainingSet(schema, schema.matrix(table.frame), y, times, table.source, table.digest)
