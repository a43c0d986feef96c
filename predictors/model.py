"""A trained model as an artefact directory the node can load safely, verify, and score with.

Layout (every file is text; nothing is unpickled, because loading a pickle runs code and artefacts are
copied between machines and into the registry)::

    model.txt         LightGBM text format (trees over features named f0..fN-1)
    schema.json       the feature schema: names, kinds, category levels, target, id column
    calibration.json  Platt scaling of the raw margin: two plain numbers
    metrics.json      out-of-fold quality figures from training
    manifest.json     created, lightgbm version, digests, params, and the SHA-256 of each file above

:meth:`Model.load` re-hashes every file and refuses the directory if one differs from the manifest,
so a hand-edited tree or schema never scores a customer. The booster's features are named by
position (``f0``...) because LightGBM rejects some characters that CSV headers contain; the schema
maps them back to the real names.

Scores are calibrated probabilities: ``sigmoid(slope * margin + intercept)``. Platt scaling is
strictly increasing, so it fixes the probabilities that class weighting distorts without reordering
customers (isotonic regression would flatten the top of the ranking into ties).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias

import lightgbm as lgb
import numpy as np
import pandas as pd

from predictors.dataset import Table, read_table
from predictors.errors import DataError, RegistryError, SchemaMismatch
from predictors.schema import FeatureSchema, row_locator

__all__ = ["ARTEFACT_FILES", "ARTEFACT_FORMAT", "MANIFEST", "Calibration", "Model", "booster_feature_names"]

ARTEFACT_FORMAT = "appliance-model/1"
ARTEFACT_FILES = ("model.txt", "schema.json", "calibration.json", "metrics.json")
MANIFEST = "manifest.json"
CALIBRATION_FORMAT = "appliance-calibration/1"

ScoringInput: TypeAlias = pd.DataFrame | Table | np.ndarray | str | Path


def booster_feature_names(count: int) -> list[str]:
    """The names the booster knows its features by: positional, so any CSV header is allowed."""
    return [f"f{j}" for j in range(count)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode()


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the booster's raw margin (log-odds): ``p = sigmoid(slope * margin + intercept)``."""

    slope: float = 1.0
    intercept: float = 0.0

    def apply(self, margin: np.ndarray) -> np.ndarray:
        z = self.slope * np.asarray(margin, dtype=np.float64) + self.intercept
        out: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": CALIBRATION_FORMAT,
            "method": "platt",
            "slope": self.slope,
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Calibration:
        if raw.get("format") != CALIBRATION_FORMAT or raw.get("method") != "platt":
            raise ValueError(f"calibration format {raw.get('format')!r}/{raw.get('method')!r} is not known")
        slope, intercept = float(raw["slope"]), float(raw["intercept"])
        if not (np.isfinite(slope) and np.isfinite(intercept)) or slope <= 0:
            raise ValueError(f"calibration slope {slope} / intercept {intercept} cannot be used")
        return cls(slope, intercept)


class Model:
    """A loaded artefact: booster, schema and calibration, built from the exact bytes of its files."""

    def __init__(self, files: Mapping[str, bytes], *, threads: int = 0, origin: str = "model") -> None:
        """Use :meth:`load` or :meth:`build`; ``files`` maps each artefact file name to its bytes."""
        self._files = dict(files)
        self.threads = threads
        try:
            self.manifest: dict[str, Any] = json.loads(self._files[MANIFEST])
            self.schema = FeatureSchema.from_json(self._files["schema.json"])
            self.calibration = Calibration.from_dict(json.loads(self._files["calibration.json"]))
            self.metrics: dict[str, Any] = json.loads(self._files["metrics.json"])
            self.booster = lgb.Booster(model_str=self._files["model.txt"].decode("utf-8"))
        except (ValueError, KeyError, TypeError, DataError, lgb.basic.LightGBMError) as exc:
            raise RegistryError(
                f"{origin}: the artefact cannot be read ({exc}); train the model again"
            ) from exc
        expected = booster_feature_names(len(self.schema.features))
        if self.booster.feature_name() != expected:
            raise RegistryError(
                f"{origin}: model.txt has {self.booster.num_feature()} features but schema.json lists "
                f"{len(expected)}; the files come from different models, train it again"
            )

    # -- construction ------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        booster: lgb.Booster,
        schema: FeatureSchema,
        calibration: Calibration,
        metrics: Mapping[str, Any],
        *,
        params: Mapping[str, Any],
        training_data_digest: str,
        threads: int = 0,
        created: datetime | None = None,
    ) -> Model:
        """The artefact of a freshly trained booster; scores exactly as the saved and reloaded one will."""
        files = {
            "model.txt": booster.model_to_string().encode("utf-8"),
            "schema.json": schema.to_json().encode("utf-8"),
            "calibration.json": _json_bytes(calibration.as_dict()),
            "metrics.json": _json_bytes(dict(metrics)),
        }
        manifest = {
            "format": ARTEFACT_FORMAT,
            "created": (created or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "lightgbm": lgb.__version__,
            "schema_digest": schema.digest,
            "training_data_digest": training_data_digest,
            "metrics": dict(metrics),
            "params": dict(params),
            "files": {name: _sha256(data) for name, data in files.items()},
        }
        files[MANIFEST] = _json_bytes(manifest)
        return cls(files, threads=threads)

    @classmethod
    def load(cls, directory: str | Path, *, threads: int = 0) -> Model:
        """Read and verify an artefact directory; :class:`RegistryError` if any file is missing or altered."""
        root = Path(directory)
        origin = f"model {root}"
        try:
            manifest_bytes = (root / MANIFEST).read_bytes()
        except OSError as exc:
            raise RegistryError(
                f"{origin}: {MANIFEST} is missing, so this is not a model artefact (or an incomplete one); "
                "write one with `appliance model train`"
            ) from exc
        try:
            manifest = json.loads(manifest_bytes)
            if manifest.get("format") != ARTEFACT_FORMAT:
                raise ValueError(f"format {manifest.get('format')!r} is not {ARTEFACT_FORMAT!r}")
            hashes = dict(manifest["files"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RegistryError(
                f"{origin}: {MANIFEST} cannot be read ({exc}); train the model again"
            ) from exc
        files = {MANIFEST: manifest_bytes}
        for name in ARTEFACT_FILES:
            try:
                data = (root / name).read_bytes()
            except OSError as exc:
                raise RegistryError(
                    f"{origin}: {name} is missing (incomplete artefact); train or publish the model again"
                ) from exc
            if hashes.get(name) != _sha256(data):
                raise RegistryError(
                    f"{origin}: {name} does not match its manifest (tampered or incomplete); "
                    "train or publish the model again"
                )
            files[name] = data
        return cls(files, threads=threads, origin=origin)

    def save(self, directory: str | Path) -> Path:
        """Write the artefact files (each atomically, the manifest last) into ``directory``."""
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        for name in (*ARTEFACT_FILES, MANIFEST):
            tmp = root / f".{name}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(self._files[name])
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, root / name)
        return root

    # -- identity ----------------------------------------------------------------------------------------
    @property
    def files(self) -> dict[str, bytes]:
        return dict(self._files)

    @property
    def digest(self) -> str:
        """SHA-256 over every artefact file's name and hash, in a fixed order: the version's identity."""
        h = hashlib.sha256()
        for name in (*ARTEFACT_FILES, MANIFEST):
            h.update(f"{name} {_sha256(self._files[name])}\n".encode())
        return h.hexdigest()

    @property
    def created(self) -> str:
        return str(self.manifest.get("created", ""))

    @property
    def training_data_digest(self) -> str:
        return str(self.manifest.get("training_data_digest", ""))

    @property
    def rounds(self) -> int:
        return int(self.booster.num_trees())

    # -- scoring -----------------------------------------------------------------------------------------
    def matrix(self, data: ScoringInput, *, ignore: tuple[str, ...] = ()) -> np.ndarray:
        """Check ``data`` against the schema and return the booster's input matrix.

        A numpy array is taken as already in schema order (categories as level codes) and only its
        shape is checked: that is the fast path for callers that built the matrix themselves.
        """
        if isinstance(data, np.ndarray):
            if data.ndim != 2 or data.shape[1] != len(self.schema.features):
                raise SchemaMismatch(
                    f"the array has shape {data.shape} but the model takes {len(self.schema.features)} "
                    "feature columns in schema order; build it from a table with the training columns"
                )
            if not np.issubdtype(data.dtype, np.number) and data.dtype != np.bool_:
                raise SchemaMismatch(f"the array holds {data.dtype} values; the model takes numbers")
            return np.ascontiguousarray(data, dtype=np.float64)
        if isinstance(data, pd.DataFrame):
            if any(not isinstance(c, str) for c in data.columns):
                data = data.rename(columns=str)
            self.schema.check(data, source="<DataFrame>", where=row_locator("<DataFrame>"), ignore=ignore)
            return self.schema.matrix(data)
        table = read_table(data, text_columns=self.text_columns)
        self.schema.check(table.frame, source=table.source, where=table.locate, ignore=ignore)
        return self.schema.matrix(table.frame)

    @property
    def text_columns(self) -> tuple[str, ...]:
        """Columns to read as text from a CSV: categorical features and the id column."""
        cats = tuple(f.name for f in self.schema.features if f.kind == "categorical")
        return cats + ((self.schema.id_column,) if self.schema.id_column else ())

    def _predict(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        if self.threads > 0:
            kwargs["num_threads"] = self.threads
        out: np.ndarray = np.asarray(self.booster.predict(x, **kwargs))
        return out

    def raw_score(self, data: ScoringInput, *, ignore: tuple[str, ...] = ()) -> np.ndarray:
        """The booster's margin (uncalibrated log-odds), one per row."""
        return self._predict(self.matrix(data, ignore=ignore), raw_score=True)

    def score(self, data: ScoringInput, *, ignore: tuple[str, ...] = ()) -> np.ndarray:
        """Calibrated probability of the positive class, one per row in input order."""
        return self.calibration.apply(self.raw_score(data, ignore=ignore))

    def reasons(
        self, data: ScoringInput, top: int = 3, *, ignore: tuple[str, ...] = ()
    ) -> list[list[tuple[str, float]]]:
        """Per row, the ``top`` features that moved its score most, as (name, signed contribution).

        Contributions are LightGBM's SHAP values (``pred_contrib``) scaled by the calibration slope, so
        they are in calibrated log-odds: positive raises the probability. The bias term is left out;
        features that did not contribute are not listed.
        """
        if top < 1:
            raise DataError(f"reasons: top must be at least 1, not {top}")
        x = self.matrix(data, ignore=ignore)
        contrib = self._predict(x, pred_contrib=True)[:, :-1] * self.calibration.slope
        k = min(top, contrib.shape[1])
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
        names = self.schema.names
        out: list[list[tuple[str, float]]] = []
        for row, cols in zip(contrib, order, strict=True):
            out.append([(names[j], round(float(row[j]), 6)) for j in cols if row[j] != 0.0])
        return out
