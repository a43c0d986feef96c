"""The feature schema a model was trained on, and the one gate every scoring input passes through.

A LightGBM model only sees a matrix: feed it columns in another order, a renamed column or a category
coded differently and it returns confident nonsense without complaint. So the schema travels with the
model (``schema.json``), names every feature in training order with its kind, and :meth:`check`
refuses data that does not match before any score is computed. The same :meth:`matrix` turns a table
into the model's input at training and at scoring time, so the two cannot drift apart.

Categorical features keep their training levels; at scoring time a level never seen in training is
treated as missing (LightGBM's missing-value branch), not as an error: new product codes appear in
production, and one unknown code should not stop a whole scoring run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from predictors.errors import DataError, SchemaMismatch

__all__ = ["SCHEMA_FORMAT", "Feature", "FeatureSchema", "level_strings", "row_locator"]

SCHEMA_FORMAT = "appliance-feature-schema/1"
Kind = Literal["numeric", "categorical"]
_SHOW = 8  # names or cells quoted in one message before "and N more"


def row_locator(source: str, lines: np.ndarray | None = None) -> Callable[[int], str]:
    """``pos -> "train.csv line 17"`` (CSV line numbers known) or ``"<DataFrame> row 17"``."""
    if lines is None:
        return lambda pos: f"{source} row {pos + 1}"
    return lambda pos: f"{source} line {int(lines[pos])}"


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f" (and {len(items) - _SHOW} more)" if len(items) > _SHOW else "")


def level_strings(values: pd.Series) -> pd.Series:
    """Category values as the strings training recorded: ``3`` and ``3.0`` are both ``"3"``.

    A categorical column reaches us as text from a CSV but may arrive as numbers from a DataFrame;
    integral numbers are written without a decimal point so both spell the level the same way.
    """
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.map(lambda v: str(bool(v)).lower(), na_action="ignore").astype(object)
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype(float)

        def spell(v: float) -> str:
            return str(int(v)) if float(v).is_integer() else repr(float(v))

        return numbers.map(spell, na_action="ignore").astype(object)
    return values.astype(object).map(lambda v: str(v).strip(), na_action="ignore")


@dataclass(frozen=True)
class Feature:
    """One model input: its column name, kind and, for a category, the levels seen in training."""

    name: str
    kind: Kind = "numeric"
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered features plus the columns a table may carry beside them (target, id, time)."""

    features: tuple[Feature, ...]
    target: str
    id_column: str | None = None
    time_column: str | None = None
    positive_label: str = "1"

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if not names:
            raise DataError("a feature schema needs at least one feature column")
        if len(set(names)) != len(names):
            raise DataError(
                f"feature names repeat: {_listing(sorted({n for n in names if names.count(n) > 1}))}"
            )

    # -- views -------------------------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def categorical_indices(self) -> tuple[int, ...]:
        return tuple(i for i, f in enumerate(self.features) if f.kind == "categorical")

    @property
    def side_columns(self) -> frozenset[str]:
        """Columns a scoring table may carry that are not features: ignored, never an error."""
        return frozenset(c for c in (self.target, self.id_column, self.time_column) if c)

    # -- JSON --------------------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "format": SCHEMA_FORMAT,
            "target": self.target,
            "positive_label": self.positive_label,
            "id_column": self.id_column,
            "time_column": self.time_column,
            "features": [
                {
                    "name": f.name,
                    "kind": f.kind,
                    **({"levels": list(f.levels)} if f.kind == "categorical" else {}),
                }
                for f in self.features
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> FeatureSchema:
        try:
            raw = json.loads(text)
            if raw.get("format") != SCHEMA_FORMAT:
                raise ValueError(f"format is {raw.get('format')!r}, expected {SCHEMA_FORMAT!r}")
            features = []
            for item in raw["features"]:
                kind = item["kind"]
                if kind not in ("numeric", "categorical"):
                    raise ValueError(f"feature {item['name']!r} has unknown kind {kind!r}")
                levels = tuple(str(v) for v in item.get("levels", ()))
                features.append(Feature(str(item["name"]), kind, levels))
            return cls(
                tuple(features),
                target=str(raw["target"]),
                id_column=raw.get("id_column"),
                time_column=raw.get("time_column"),
                positive_label=str(raw.get("positive_label", "1")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise DataError(
                f"feature schema JSON is not valid ({exc}); retrain the model to rewrite it"
            ) from exc

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON: two models with the same digest accept the same tables."""
        canonical = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    # -- the gate ----------------------------------------------------------------------------------------
    def check(
        self,
        frame: pd.DataFrame,
        *,
        source: str = "data",
        where: Callable[[int], str] | None = None,
        ignore: Collection[str] = (),
    ) -> None:
        """Raise :class:`SchemaMismatch` naming every missing, unexpected or mistyped column.

        Extra columns are refused (a renamed feature would otherwise look like "one missing, one
        extra" and be silently dropped) unless they are the target, id or time column or in ``ignore``.
        """
        locate = where or row_locator(source)
        columns = [str(c) for c in frame.columns]
        problems: list[str] = []
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            problems.append(f"columns appear more than once: {_listing(repeated)}")
        present = set(columns)
        missing = [n for n in self.names if n not in present]
        allowed = set(self.names) | self.side_columns | set(ignore)
        extra = [c for c in columns if c not in allowed]
        if missing:
            problems.append(f"missing columns: {_listing(missing)}")
        if extra:
            problems.append(f"unexpected columns: {_listing(extra)}")
        for feature in self.features:
            if feature.kind != "numeric" or feature.name not in present or feature.name in repeated:
                continue
            bad = _non_numeric(frame[feature.name])
            if bad is not None:
                pos, value = bad
                problems.append(f"column {feature.name!r} must be numeric but {locate(pos)} holds {value!r}")
        if problems:
            raise SchemaMismatch(
                f"{source} does not match the model's feature schema ({len(self.features)} features, "
                f"target {self.target!r}): " + "; ".join(problems) + ". Give the model a table with the "
                "columns it was trained on (same names, numbers in numeric columns), or retrain it on this "
                "layout."
            )

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's input: float64, C order, features in schema order; categories as level codes.

        Call :meth:`check` first; this assumes every feature column is present and convertible.
        """
        out = np.empty((len(frame), len(self.features)), dtype=np.float64)
        for j, feature in enumerate(self.features):
            column = frame[feature.name]
            if feature.kind == "categorical":
                codes = pd.Index(feature.levels, dtype=object).get_indexer(level_strings(column))
                out[:, j] = np.where(codes < 0, np.nan, codes)
            elif pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
                out[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        return out


def _non_numeric(column: pd.Series) -> tuple[int, str] | None:
    """Position and text of the first value that is present but not a number, or None."""
    if pd.api.types.is_bool_dtype(column.dtype) or pd.api.types.is_numeric_dtype(column.dtype):
        return None
    numbers = pd.to_numeric(column, errors="coerce")
    bad = np.flatnonzero(numbers.isna().to_numpy() & column.notna().to_numpy())
    if bad.size == 0:
        return None
    return int(bad[0]), str(column.iloc[int(bad[0])])
