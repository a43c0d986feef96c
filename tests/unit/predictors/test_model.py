"""The model artefact: save/load round trip, tamper refusal, the schema gate at scoring, and reasons."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from predictors.errors import RegistryError, SchemaMismatch
from predictors.model import ARTEFACT_FILES, MANIFEST, Calibration, Model
from predictors.training import train


def synthetic(n: int = 1500, seed: int = 1) -> pd.DataFrame:
    """y rises with x0, falls with x1; x2..x5 are noise; 'plan' is a category without signal."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-(2.0 * x[:, 0] - 1.5 * x[:, 1] - 2.5)))
    frame = pd.DataFrame(x, columns=[f"x{j}" for j in range(6)])
    frame.insert(0, "cid", [f"C{i:05d}" for i in range(n)])
    frame["plan"] = rng.choice(["basic", "gold"], size=n)
    frame["bought"] = np.where(y, "Yes", "No")
    return frame


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "train.csv"
    synthetic().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(csv_path):
    return train(csv_path, "bought", id_column="cid", threads=1)


@pytest.fixture
def saved(trained, tmp_path):
    return trained.save(tmp_path / "model")


def test_save_load_round_trip_scores_identically(trained, saved):
    loaded = Model.load(saved, threads=1)
    data = synthetic(500, seed=9)
    assert np.array_equal(loaded.score(data), trained.model.score(data))
    assert np.array_equal(loaded.raw_score(data), trained.model.raw_score(data))
    assert loaded.digest == trained.model.digest
    assert loaded.schema == trained.model.schema
    assert sorted(p.name for p in saved.iterdir()) == sorted((*ARTEFACT_FILES, MANIFEST))


def test_manifest_records_provenance(trained, saved, csv_path):
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["training_data_digest"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert manifest["schema_digest"] == trained.model.schema.digest
    assert manifest["lightgbm"] and manifest["created"].endswith("Z")
    assert manifest["metrics"]["auc"] == trained.metrics["auc"]
    assert manifest["params"]["objective"] == "binary"
    for name in ARTEFACT_FILES:
        assert manifest["files"][name] == hashlib.sha256((saved / name).read_bytes()).hexdigest()
    assert (saved / "model.txt").read_text().startswith("tree\n")  # LightGBM text format, not a pickle


@pytest.mark.parametrize("name", ["model.txt", "schema.json", "calibration.json", "metrics.json"])
def test_tampered_file_is_refused(saved, name):
    path = saved / name
    path.write_bytes(path.read_bytes().replace(b"0", b"1", 1))
    with pytest.raises(RegistryError, match=rf"model .*: {name} does not match its manifest \(tampered"):
        Model.load(saved)


def test_missing_file_or_not_an_artefact_is_refused(saved, tmp_path):
    (saved / "calibration.json").unlink()
    with pytest.raises(RegistryError, match=r"calibration\.json is missing"):
        Model.load(saved)
    with pytest.raises(RegistryError, match=r"manifest\.json is missing"):
        Model.load(tmp_path / "elsewhere")


def test_scoring_checks_the_schema_first(trained, tmp_path):
    model = trained.model
    data = synthetic(50, seed=3)
    with pytest.raises(SchemaMismatch, match="missing columns: x3"):
        model.score(data.drop(columns="x3"))
    with pytest.raises(SchemaMismatch, match="unexpected columns: x9"):
        model.score(data.assign(x9=1.0))
    # the target and the id column may ride along; an extra id given by the caller too
    model.score(data)
    model.score(data.drop(columns=["bought", "cid"]).assign(customer=1), ignore=("customer",))
    bad = tmp_path / "bad.csv"
    data.assign(x2=data["x2"].astype(object).where(data.index != 6, "n/a?")).to_csv(bad, index=False)
    with pytest.raises(SchemaMismatch, match=rf"column 'x2' must be numeric but {bad} line 8 holds 'n/a\?'"):
        model.score(bad)
    with pytest.raises(SchemaMismatch, match="shape"):
        model.score(np.zeros((3, 4)))


def test_a_model_trained_on_another_layout_refuses_the_data(trained):
    other = train(synthetic(800).rename(columns={"x4": "tenure"}), "bought", id_column="cid", threads=1)
    with pytest.raises(SchemaMismatch) as err:
        other.model.score(synthetic(50))
    assert "missing columns: tenure" in str(err.value)
    assert "unexpected columns: x4" in str(err.value)


def test_array_fast_path_matches_the_table_path(trained):
    data = synthetic(200, seed=4)
    model = trained.model
    assert np.array_equal(model.score(model.schema.matrix(data)), model.score(data))


def test_reasons_name_the_features_that_drive_the_score(trained):
    model = trained.model
    rows = pd.DataFrame(
        {
            "x0": [3.0, -3.0, 0.0],
            "x1": [0.0, 0.0, 3.0],
            "x2": 0.0,
            "x3": 0.0,
            "x4": 0.0,
            "x5": 0.0,
            "plan": "basic",
        }
    )
    reasons = model.reasons(rows, top=2)
    assert len(reasons) == 3 and all(len(r) <= 2 for r in reasons)
    (name, value), *_ = reasons[0]
    assert name == "x0" and value > 0  # high x0 raises the score
    (name, value), *_ = reasons[1]
    assert name == "x0" and value < 0
    (name, value), *_ = reasons[2]
    assert name == "x1" and value < 0  # high x1 lowers it
    # contributions are in calibrated log-odds: all of them plus the bias give the calibrated logit
    full = model.reasons(rows, top=len(model.schema.features))
    contrib = model._predict(model.matrix(rows), pred_contrib=True)
    logit = np.log(model.score(rows) / (1 - model.score(rows)))
    expected = model.calibration.slope * contrib[:, -1] + model.calibration.intercept
    assert [sum(v for _, v in r) for r in full] == pytest.approx(logit - expected, abs=1e-4)


def test_calibration_json_is_plain_numbers_and_validated():
    calibration = Calibration(0.8, -1.2)
    assert Calibration.from_dict(json.loads(json.dumps(calibration.as_dict()))) == calibration
    assert calibration.apply(np.array([-1e6, 0.0, 1e6])).tolist() == pytest.approx(
        [0.0, 0.2315, 1.0], abs=1e-4
    )
    with pytest.raises(ValueError, match="cannot be used"):
        Calibration.from_dict({**calibration.as_dict(), "slope": -1.0})
