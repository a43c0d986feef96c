"""The model registry: publish, idempotency, versions, rollback, and refusal of altered versions."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from predictors.errors import RegistryError
from predictors.model import Model
from predictors.registry import ModelRegistry
from predictors.training import train


def synthetic(n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = rng.random(n) < 1.0 / (1.0 + np.exp(-(1.5 * x[:, 0] - 2.0)))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["y"] = y.astype(int)
    return frame


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    """Two different models of the same layout, saved as artefact directories."""
    root = tmp_path_factory.mktemp("artefacts")
    first = train(synthetic(seed=1), "y", threads=1, folds=3).save(root / "first")
    second = train(synthetic(seed=2), "y", threads=1, folds=3).save(root / "second")
    return first, second


def test_publish_makes_the_version_live_and_is_idempotent(tmp_path, artefacts):
    first, _ = artefacts
    registry = ModelRegistry(tmp_path / "models")
    assert registry.names() == [] and registry.live("churn") is None
    version = registry.publish("churn", first)
    digest = Model.load(first).digest
    assert version.version == digest[:16] and version.digest == digest
    assert (tmp_path / "models" / "churn" / "LIVE").read_text().strip() == version.version
    assert registry.live("churn") == version
    again = registry.publish("churn", first)
    assert again == version
    assert [v.version for v in registry.versions("churn")] == [version.version]
    assert registry.names() == ["churn"]


def test_versions_rollback_and_load_live(tmp_path, artefacts):
    first, second = artefacts
    registry = ModelRegistry(tmp_path)
    v1 = registry.publish("churn", first)
    v2 = registry.publish("churn", second)
    assert v1.version != v2.version
    assert [v.version for v in registry.versions("churn")] == [v1.version, v2.version]
    assert registry.live("churn") == v2
    data = synthetic(100, seed=5)
    assert np.array_equal(registry.load_live("churn").score(data), Model.load(second).score(data))
    back = registry.rollback("churn", v1.version)
    assert back == v1 and registry.live("churn") == v1
    assert np.array_equal(registry.load_live("churn").score(data), Model.load(first).score(data))
    assert registry.rollback("churn", v2.digest) == v2  # the full digest names the version too


def test_rollback_to_an_unknown_version_lists_the_known_ones(tmp_path, artefacts):
    registry = ModelRegistry(tmp_path)
    v1 = registry.publish("churn", artefacts[0])
    with pytest.raises(RegistryError, match=rf"no version '0000000000000000'; known versions: {v1.version}"):
        registry.rollback("churn", "0000000000000000")
    with pytest.raises(RegistryError, match="none published"):
        registry.rollback("upsell", "0000000000000000")
    with pytest.raises(RegistryError, match="no live version"):
        registry.load_live("upsell")


def test_an_altered_stored_version_is_refused_and_republishing_repairs_it(tmp_path, artefacts):
    registry = ModelRegistry(tmp_path)
    v1 = registry.publish("churn", artefacts[0])
    stored = tmp_path / "churn" / v1.version / "model.txt"
    stored.write_text(stored.read_text().replace("leaf_value=", "leaf_value=9", 1))
    with pytest.raises(RegistryError, match=r"model\.txt does not match its manifest"):
        registry.load_live("churn")
    with pytest.raises(RegistryError, match="tampered"):
        registry.rollback("churn", v1.version)
    assert registry.publish("churn", artefacts[0]) == v1
    registry.load_live("churn")
    assert any(p.name.startswith(".broken-") for p in (tmp_path / "churn").iterdir())


def test_a_consistently_rewritten_version_no_longer_matches_its_id(tmp_path, artefacts):
    """Editing a file and its manifest hash together passes the manifest check but not the id check."""
    registry = ModelRegistry(tmp_path)
    v1 = registry.publish("churn", artefacts[0])
    folder = tmp_path / "churn" / v1.version
    metrics = folder / "metrics.json"
    metrics.write_text(metrics.read_text().replace('"auc": 0.', '"auc": 0.9', 1))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["metrics.json"] = hashlib.sha256(metrics.read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RegistryError, match="altered on disk"):
        registry.load_live("churn")


def test_bad_names_and_bad_artefacts_are_refused(tmp_path, artefacts):
    registry = ModelRegistry(tmp_path)
    for name in ("../etc", "", "a/b", ".hidden"):
        with pytest.raises(RegistryError, match="not allowed"):
            registry.publish(name, artefacts[0])
    with pytest.raises(RegistryError, match=r"manifest\.json is missing"):
        registry.publish("churn", tmp_path / "empty")
    assert registry.names() == []


def test_version_as_dict_carries_what_the_ledger_entry_needs(tmp_path, artefacts):
    version = ModelRegistry(tmp_path).publish("churn", artefacts[0])
    entry = version.as_dict()
    assert set(entry) >= {"name", "version", "digest", "metrics", "created", "training_data_digest"}
    assert entry["name"] == "churn" and entry["metrics"]["auc"] > 0.6
    json.dumps(entry)  # plain JSON
