"""Named DOT weight vectors: stored, recorded, used by DOT, and refused when they single customers out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from appliance.node import Node
from appliance.privacy.errors import DisclosureRefused, QueryInvalid
from appliance.server import create_app
from appliance.settings import load_settings
from appliance.store import load_demo


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    settings = load_settings(node={"data_dir": Path(tmp_path_factory.mktemp("weights")) / "node"})
    tokens = dict(Node.init(settings).api_keys)
    n = Node.open(settings)
    load_demo(n.store, 300, seed=7)
    n.privacy.keygen(actor="custodian:test")
    n.privacy.encrypt("customers", "balance", actor="admin:test")
    n.tokens = tokens  # type: ignore[attr-defined]
    yield n
    n.close()


def _frame(node: Node) -> pd.DataFrame:
    frame = node.store.proactive.customers_frame(["balance"])
    return frame.assign(balance=pd.to_numeric(frame["balance"]))


def test_a_stored_vector_gives_the_weighted_sum(node: Node) -> None:
    frame = _frame(node)
    ids = frame.index.to_numpy()
    w = (ids % 5) / 4.0
    out = node.privacy.set_weights("tiers", ids, w, actor="key:analyst")
    assert out["rows"] == len(ids) and len(out["sha256"]) == 64
    entry = node.ledger.entry(out["ledger_seq"])
    assert entry.action == "privacy.weights_stored" and entry.details["sha256"] == out["sha256"]
    assert [v["name"] for v in node.privacy.weight_vectors()] == ["tiers"]
    row = node.privacy.submit(actor="key:analyst", sql="SELECT DOT(balance, 'tiers') AS d FROM customers")
    assert row.status == "awaiting_approval"  # a model score: the custodian decides
    row = node.privacy.approve(row.id, actor="key:custodian")
    expected = float(np.nansum(frame["balance"].to_numpy() * w))
    assert row.released is not None
    assert row.released["groups"]["all"]["d"] == pytest.approx(expected, rel=1e-6)


def test_weights_that_single_out_customers_are_refused(node: Node) -> None:
    ids = _frame(node).index.to_numpy()
    one_hot = (ids == ids[3]).astype(float)
    with pytest.raises(DisclosureRefused, match="single records"):
        node.privacy.set_weights("spy", ids, one_hot, actor="key:analyst")
    inline = {
        "table": "customers",
        "select": [{"func": "dot", "column": "balance", "weights": one_hot.tolist()}],
    }
    with pytest.raises(DisclosureRefused, match="single records"):
        node.privacy.submit(actor="key:analyst", query=inline)
    with pytest.raises(QueryInvalid, match="no weight vector named"):
        node.privacy.submit(actor="key:analyst", sql="SELECT DOT(balance, 'nothing') FROM customers")
    with pytest.raises(QueryInvalid, match="twice"):
        node.privacy.set_weights("dup", np.array([1, 1]), np.array([1.0, 2.0]), actor="key:analyst")


def test_weights_over_http(node: Node) -> None:
    client = create_app(node=node).test_client()
    analyst = {"Authorization": f"Bearer {node.tokens['analyst']}"}  # type: ignore[attr-defined]
    agent = {"Authorization": f"Bearer {node.tokens['agent']}"}  # type: ignore[attr-defined]
    ids = _frame(node).index.to_numpy().tolist()
    body = {"ids": ids, "weights": [1.0] * len(ids)}
    resp = client.put("/v1/privacy/weights/flat", json=body, headers=analyst)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["rows"] == len(ids)
    assert client.put("/v1/privacy/weights/flat", json=body, headers=agent).status_code == 403
    bad = client.put("/v1/privacy/weights/flat", json={"ids": ids[:2], "weights": [1.0]}, headers=analyst)
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    names = [w["name"] for w in client.get("/v1/privacy/weights", headers=analyst).get_json()["weights"]]
    assert "flat" in names


def test_paillier_lookups_go_out_encrypted_and_only_the_custodian_reads_them(node: Node) -> None:
    from appliance.privacy import KeyRing, decode_paillier

    out = node.privacy.encrypt("customers", "monthly_spend", scheme="paillier", actor="admin:test")
    assert out["scheme"] == "paillier" and out["rows"] == len(_frame(node))
    frame = node.store.proactive.customers_frame(["monthly_spend"])
    ids = frame.index[:3].tolist()
    sql = f"SELECT LOOKUP(monthly_spend) FROM customers WHERE id IN ({', '.join(map(str, ids))})"
    row = node.privacy.submit(actor="key:analyst", sql=sql)
    assert row.status == "awaiting_approval"  # single records: the custodian decides
    row = node.privacy.approve(row.id, actor="key:custodian")
    assert row.released is not None and set(row.released["records"]) == {str(i) for i in ids}
    # What the analyst holds is ciphertext; the custodian's private key opens it to the stored value.
    private = KeyRing.open(node.privacy.keys_dir).secret().paillier_private
    for cid in ids:
        rec = row.released["records"][str(cid)]
        value = decode_paillier(private, int(rec["c"]), int(rec["e"]))
        stored = frame.at[cid, "monthly_spend"]
        assert (value is None and stored is None) or value == pytest.approx(float(stored))
        assert str(stored) not in json.dumps(rec)
