"""`appliance model train|score`: a CSV in, an artefact and a scores CSV out, errors as exit 2."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from appliance.cli_model import model


def synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-(1.8 * x[:, 0] - 2.3)))
    frame = pd.DataFrame(x, columns=[f"f{j}" for j in range(5)])
    frame.insert(0, "customer_id", [f"{i:06d}" for i in range(n)])  # leading zeros must survive
    frame["bought"] = np.where(y, "yes", "no")
    return frame


def _run(*args: str, code: int = 0):
    result = CliRunner().invoke(model, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = root / "train.csv"
    synthetic(1200, seed=1).to_csv(data, index=False)
    out = root / "model"
    result = _run(
        "train",
        "--data",
        str(data),
        "--target",
        "bought",
        "--out",
        str(out),
        "--id-column",
        "customer_id",
        "--threads",
        "1",
    )
    return root, out, result.output


def test_train_prints_metrics_and_writes_the_artefact(trained):
    _, out, output = trained
    assert "AUC" in output and "positives in top 20%" in output and "boosting rounds" in output
    assert {p.name for p in out.iterdir()} == {
        "model.txt",
        "schema.json",
        "calibration.json",
        "metrics.json",
        "manifest.json",
    }


def test_score_writes_one_row_per_input_row_in_order_with_ids(trained):
    root, out, _ = trained
    test = synthetic(300, seed=2).sample(frac=1.0, random_state=3)  # shuffled: order must follow the input
    data = root / "test.csv"
    test.to_csv(data, index=False)
    scores = root / "scores.csv"
    result = _run("score", "--model", str(out), "--data", str(data), "--out", str(scores), "--threads", "1")
    assert "scored 300 rows" in result.output
    written = pd.read_csv(scores, dtype={"customer_id": str})
    assert list(written.columns) == ["customer_id", "score"]  # the model's id column, recorded at training
    assert written["customer_id"].tolist() == test["customer_id"].tolist()
    assert written["score"].between(0, 1).all()
    buyers = test["bought"].to_numpy() == "yes"
    assert written["score"][buyers].mean() > 2 * written["score"][~buyers].mean()  # buyers rank higher


def test_score_without_an_id_numbers_rows_and_adds_reasons(trained):
    root, out, _ = trained
    data = root / "anon.csv"
    synthetic(40, seed=4).drop(columns=["customer_id", "bought"]).to_csv(data, index=False)
    scores = root / "anon_scores.csv"
    _run("score", "--model", str(out), "--data", str(data), "--out", str(scores), "--reasons", "2")
    written = pd.read_csv(scores)
    assert list(written.columns) == ["row", "score", "reasons"]
    assert written["row"].tolist() == list(range(1, 41))
    reasons = [json.loads(r) for r in written["reasons"]]
    assert all(1 <= len(r) <= 2 and isinstance(r[0][0], str) and isinstance(r[0][1], float) for r in reasons)
    assert sum(r[0][0] == "f0" for r in reasons) > 30  # the one feature with signal leads


def test_score_with_a_named_id_column(trained):
    root, out, _ = trained
    frame = synthetic(10, seed=5).drop(columns=["customer_id"])
    frame.insert(0, "ref", [f"R{i}" for i in range(10)])
    data = root / "ref.csv"
    frame.to_csv(data, index=False)
    scores = root / "ref_scores.csv"
    _run("score", "--model", str(out), "--data", str(data), "--out", str(scores), "--id-column", "ref")
    assert pd.read_csv(scores)["ref"].tolist() == [f"R{i}" for i in range(10)]


def test_train_refuses_a_non_empty_out_unless_forced(trained):
    root, out, _ = trained
    data = root / "train.csv"
    args = ["train", "--data", str(data), "--target", "bought", "--out", str(out), "--threads", "1"]
    result = _run(*args, code=2)
    assert "is not empty" in result.output and "--force" in result.output
    _run(*args, "--force", "--id-column", "customer_id")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.drop(columns=["f3"]), "missing columns: f3"),
        (lambda f: f.assign(extra=1), "unexpected columns: extra"),
        (lambda f: f.assign(f1=["oops", *f["f1"].tolist()[1:]]), "column 'f1' must be numeric but .* line 2"),
    ],
)
def test_score_errors_exit_2_with_the_message(trained, mutate, message):
    root, out, _ = trained
    data = root / "broken.csv"
    mutate(synthetic(20, seed=6)).to_csv(data, index=False)
    result = _run("score", "--model", str(out), "--data", str(data), "--out", str(root / "x.csv"), code=2)
    assert re.search(message, result.output), result.output
    assert not (root / "x.csv").exists()


def test_train_and_score_input_errors_exit_2(trained, tmp_path):
    _, out, _ = trained
    bad = tmp_path / "bad.csv"
    bad.write_text("a,y\n1,yes\n2,maybe\n3,no\n")
    result = _run("train", "--data", str(bad), "--target", "y", "--out", str(tmp_path / "m"), code=2)
    assert "target 'y' has 3 distinct values" in result.output
    result = _run("train", "--data", str(bad), "--target", "nope", "--out", str(tmp_path / "m"), code=2)
    assert "no target column 'nope'" in result.output
    result = _run(
        "score", "--model", str(tmp_path), "--data", str(bad), "--out", str(tmp_path / "s.csv"), code=2
    )
    assert "manifest.json is missing" in result.output
    result = _run(
        "score",
        "--model",
        str(out),
        "--data",
        str(bad),
        "--out",
        str(tmp_path / "s.csv"),
        "--id-column",
        "nope",
        code=2,
    )
    assert "no id column 'nope'" in result.output


def test_train_with_time_aware_validation(tmp_path):
    frame = synthetic(900, seed=7)
    frame["at"] = pd.date_range("2026-01-01", periods=900, freq="h").strftime("%Y-%m-%dT%H:%M:%SZ")
    data = tmp_path / "events.csv"
    frame.to_csv(data, index=False)
    out = tmp_path / "m"
    args = [
        "train",
        "--data",
        str(data),
        "--target",
        "bought",
        "--id-column",
        "customer_id",
        "--threads",
        "1",
    ]
    result = _run(*args, "--out", str(out), "--validation", "time", code=2)
    assert "needs a time column" in result.output
    result = _run(*args, "--out", str(out), "--validation", "time", "--time-column", "at", "--folds", "3")
    assert "time, 3 folds" in result.output
    assert json.loads((out / "schema.json").read_text())["time_column"] == "at"
