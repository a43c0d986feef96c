"""`appliance privacy keygen|keys|encrypt|columns|budget|weights` and `appliance query`, on a real node.

One node per module (demo customers, no keys): the module fixture makes the keys and encrypts two
columns through the CLI, the tests read what that printed and then query. Every error exits 2 with a
message on stderr and no traceback.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from appliance.cli import cli
from appliance.node import Node
from appliance.settings import load_settings
from appliance.store.demo import load_demo

#: CKKS results within 1e-6 relative; released values are rounded to 2 decimals (privacy.decimals).
REL = 1e-6
ROUNDED = 0.0051


def _run(data_dir: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    if code == 2:
        assert result.stderr.strip(), "an error says what was wrong"
    return result


def _settings(data_dir: Path) -> Any:
    return load_settings(node={"data_dir": data_dir})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "node"
    Node.init(_settings(path))
    with Node.open(_settings(path)) as node:
        load_demo(node.store, 150, seed=9)
    return path


@pytest.fixture(scope="module")
def frame(data_dir: Path) -> pd.DataFrame:
    with Node.open(_settings(data_dir), readonly=True) as node:
        df = node.store.proactive.customers_frame(
            ["balance", "monthly_spend", "marketing_consent", "segment"]
        )
    df["balance"] = pd.to_numeric(df["balance"])
    df["monthly_spend"] = pd.to_numeric(df["monthly_spend"])
    return df


@pytest.fixture(scope="module")
def setup(data_dir: Path) -> dict[str, Result]:
    """What the custodian and the admin ran, in order."""
    return {
        "keygen": _run(data_dir, "privacy", "keygen"),
        "balance": _run(data_dir, "privacy", "encrypt", "--column", "balance"),
        "consent": _run(data_dir, "privacy", "encrypt", "--column", "marketing_consent", "--flag"),
        "spend": _run(
            data_dir,
            "privacy",
            "encrypt",
            "--column",
            "monthly_spend",
            "--buckets",
            "0,500,1000,5000",
            "--segment-by",
            "region",
        ),
    }


def _entries(data_dir: Path, action: str) -> list[dict[str, Any]]:
    with Node.open(_settings(data_dir), readonly=True) as node:
        entries = (node.ledger.entry(i).as_dict() for i in range(node.ledger.size))
        return [e for e in entries if e["action"] == action]


def _released(output: str) -> dict[str, dict[str, float]]:
    """``  segment=mass: s = 1.5, n = 3`` lines back into numbers."""
    groups: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        m = re.fullmatch(r"  (\S+): (.+ = .+)", line)
        if m and "suppressed" not in line:
            parts = re.split(r", (?=\S+ = )", m[2])
            groups[m[1]] = {k: json.loads(v) for k, v in (p.split(" = ") for p in parts)}
    return groups


def test_keygen_prints_the_key_id_and_a_second_keygen_exits_2(
    data_dir: Path, setup: dict[str, Result]
) -> None:
    m = re.fullmatch(r"privacy keys ([0-9a-f]{16}) created \(ledger entry (\d+)\)\n", setup["keygen"].stdout)
    assert m is not None, setup["keygen"].stdout
    (entry,) = _entries(data_dir, "privacy.keys_created")
    assert entry["seq"] == int(m[2]) and entry["details"]["key_id"] == m[1]
    assert entry["actor"] == "custodian:cli"
    result = _run(data_dir, "privacy", "keygen", code=2)
    assert "already holds privacy keys; rotate them with `appliance privacy rotate`" in result.stderr
    keys = json.loads(_run(data_dir, "privacy", "keys").stdout)
    assert keys["current"] == m[1] and [k["key_id"] for k in keys["keys"]] == [m[1]]
    assert len(_entries(data_dir, "privacy.keys_created")) == 1


def test_encrypt_prints_what_it_made_and_columns_lists_it(
    data_dir: Path, setup: dict[str, Result], frame: pd.DataFrame
) -> None:
    rows = len(frame)
    out = setup["balance"]
    assert out.stdout.startswith(f"encrypted customers.balance: {rows:,} rows in ")
    assert "segmented by region, segment); ledger entry " in out.stdout
    assert f"read {rows:,} rows of customers.balance" in out.stderr  # progress goes to stderr
    assert "segmented by region); ledger entry" in setup["spend"].stdout
    assert "ckks" in setup["consent"].stdout

    table = _run(data_dir, "privacy", "columns").stdout.splitlines()
    assert [line.split()[0] for line in table] == [
        "customers.balance",
        "customers.marketing_consent",
        "customers.monthly_spend",
    ]
    assert "ckks/flag" in table[1] and f"{rows:,} rows" in table[0] and "by region,segment" in table[0]
    listed = {c["column"]: c for c in json.loads(_run(data_dir, "privacy", "columns", "--json").stdout)}
    assert listed["monthly_spend"]["buckets"] == [0.0, 500.0, 1000.0, 5000.0]
    assert listed["monthly_spend"]["visible_attributes"] == ["region"]
    assert {c["rows"] for c in listed.values()} == {rows}

    again = _run(data_dir, "privacy", "encrypt", "--column", "balance")
    assert again.stdout.startswith(f"appended customers.balance: {rows:,} rows")
    assert [e["actor"] for e in _entries(data_dir, "privacy.column_encrypted")] == ["admin:cli"] * 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--column", "full_name"), "sealed with a field key"),
        (("--column", "nope"), "customers has no field 'nope'"),
        (
            ("--column", "balance", "--buckets", "0,abc"),
            "--buckets '0,abc': give numbers separated by commas",
        ),
        (("--column", "balance", "--segment-by", "tenure"), "cannot segment by tenure"),
        (("--column", "balance", "--table", "events"), "table 'events' is unknown"),
        (("--column", "balance", "--scheme", "rsa"), "'rsa' is not one of"),
        (
            ("--column", "balance", "--bound", "-1", "--segment-by", "region"),
            "bound must be a positive finite",
        ),
    ],
)
def test_encrypt_errors_exit_2_with_a_message(
    data_dir: Path, setup: dict[str, Result], args: tuple[str, ...], message: str
) -> None:
    assert message in _run(data_dir, "privacy", "encrypt", *args, code=2).stderr


def test_query_prints_the_released_values(
    data_dir: Path, setup: dict[str, Result], frame: pd.DataFrame
) -> None:
    out = _run(
        data_dir,
        "query",
        "SELECT SUM(balance) AS s, COUNT(balance) AS n FROM customers WHERE marketing_consent = 1 "
        "GROUP BY segment",
    ).stdout
    assert re.search(r"^query \d+: released in [\d.]+ s \(result sha256 [0-9a-f]{16}\.\.\.\)$", out, re.M), (
        out
    )
    groups = _released(out)
    consenting = frame[frame["marketing_consent"] == "true"]
    for segment, part in consenting.groupby("segment"):
        label = f"segment={segment}"
        if len(part) < 10:
            assert f"  {label}: suppressed (fewer than 10 records" in out and label not in groups
            continue
        assert groups[label]["n"] == len(part)
        assert groups[label]["s"] == pytest.approx(part["balance"].sum(), rel=REL, abs=ROUNDED)
    assert groups  # something was released

    hist = _released(_run(data_dir, "query", "SELECT HISTOGRAM(monthly_spend) AS h FROM customers").stdout)
    spend = frame["monthly_spend"].dropna()
    assert hist["all"]["h"] == [
        int(((spend >= lo) & (spend < hi)).sum()) for lo, hi in [(0, 500), (500, 1000), (1000, 5000)]
    ]


def test_query_json_and_json_file(
    data_dir: Path, setup: dict[str, Result], frame: pd.DataFrame, tmp_path: Path
) -> None:
    row = json.loads(_run(data_dir, "query", "SELECT AVG(balance) AS m FROM customers", "--json").stdout)
    assert row["status"] == "released" and row["analyst"] == "analyst:cli"
    assert row["released"]["groups"]["all"]["m"] == pytest.approx(
        frame["balance"].mean(), rel=REL, abs=ROUNDED
    )
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"table": "customers", "select": [{"func": "count", "column": "balance"}]}))
    row = json.loads(
        _run(data_dir, "query", "--json-file", str(plan), "--json", "--as", "analyst:file").stdout
    )
    assert row["sql"] is None and row["analyst"] == "analyst:file"
    assert row["released"]["groups"]["all"] == {"count(balance)": len(frame)}


def test_query_approve_releases_a_score(
    data_dir: Path, setup: dict[str, Result], frame: pd.DataFrame
) -> None:
    sql = "SELECT SCORE(0.01 * balance + 2) AS risk FROM customers"
    waiting = _run(data_dir, "query", sql).stdout
    m = re.search(r"^query (\d+): awaiting_approval", waiting, re.M)
    assert m is not None, waiting
    qid = int(m[1])
    assert f"POST /v1/queries/{qid}/approve (or rerun with --approve)" in waiting
    released = _run(data_dir, "query", sql, "--approve").stdout
    assert re.search(r"^query \d+: released in ", released, re.M)
    want = (0.01 * frame["balance"] + 2).mean()
    assert _released(released)["all"]["risk"] == pytest.approx(want, rel=REL, abs=ROUNDED)
    (approved,) = _entries(data_dir, "query.approved")
    assert approved["actor"] == "custodian:cli" and approved["details"]["query"] == qid + 1


def test_budget_grant_noise_and_exhaustion(
    data_dir: Path, setup: dict[str, Result], frame: pd.DataFrame
) -> None:
    analyst = "analyst:dp"
    budget = json.loads(_run(data_dir, "privacy", "budget", analyst).stdout)
    assert budget["epsilon"] == {"limit": 10.0, "spent": 0.0, "left": 10.0}
    granted = json.loads(_run(data_dir, "privacy", "budget", analyst, "--grant", "0.5").stdout)
    assert granted["epsilon"]["limit"] == 0.5 and granted["delta"]["limit"] == budget["delta"]["limit"]
    assert (
        "--grant must be a positive ε"
        in _run(data_dir, "privacy", "budget", analyst, "--grant", "0", code=2).stderr
    )
    (entry,) = _entries(data_dir, "privacy.budget_granted")
    assert entry["details"] == {"analyst": analyst, "epsilon": "0.5", "delta": str(budget["delta"]["limit"])}

    sql = "SELECT /*+ NOISE(laplace, 0.4) */ COUNT(balance) AS n FROM customers"
    out = _run(data_dir, "query", sql, "--as", analyst).stdout
    assert "  noise: laplace, ε 0.4, δ 0.0" in out
    assert abs(_released(out)["all"]["n"] - len(frame)) < 75  # Laplace(1 / 0.4): P(miss) < e^-30
    result = _run(data_dir, "query", sql, "--as", analyst, code=2)
    assert "privacy budget exhausted for analyst 'analyst:dp'" in result.stderr
    assert "nothing was computed" in result.stderr
    spent = json.loads(_run(data_dir, "privacy", "budget", analyst).stdout)
    assert spent["epsilon"]["spent"] == pytest.approx(0.4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give the query as SQL"),
        (("SELECT COUNT(balance) FROM customers", "--json-file", "-"), "not both or neither"),
        (("SELECT SUM(balance) FROM customers ORDER BY 1",), "ORDER BY is not supported"),
        (("SELECT SUM(nope) FROM customers",), "customers.nope is not encrypted"),
        (
            ("SELECT SUM(balance) FROM customers WHERE region = 'GB' AND segment = 'private'",),
            "fewer than 10",
        ),
        (("SELECT SUM(balance) FROM customers WHERE balance > 1",), "the comparison > "),
        (("SELECT /*+ NOISE(laplace, 3) */ SUM(balance) FROM customers",), "at most ε=1"),
    ],
)
def test_query_errors_exit_2_with_a_message(
    data_dir: Path, setup: dict[str, Result], args: tuple[str, ...], message: str
) -> None:
    assert message in _run(data_dir, "query", *args, code=2).stderr


def test_a_json_file_that_is_not_json_exits_2(
    data_dir: Path, setup: dict[str, Result], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{'table': 'customers'")
    assert "--json-file is not JSON" in _run(data_dir, "query", "--json-file", str(bad), code=2).stderr
    bad.write_text('{"table": "customers", "select": [{"func": "avg", "column": "balance"}]}')
    assert "select[0].func" in _run(data_dir, "query", "--json-file", str(bad), code=2).stderr


def test_weights_from_a_csv_feed_dot(
    data_dir: Path, setup: dict[str, Result], frame: pd.DataFrame, tmp_path: Path
) -> None:
    csv = tmp_path / "w.csv"
    weights = pd.DataFrame({"id": frame.index, "weight": [(i % 5) - 1.5 for i in frame.index]})
    weights.to_csv(csv, index=False)
    out = _run(data_dir, "privacy", "weights", "churn", str(csv)).stdout
    assert re.fullmatch(
        rf"stored weights churn: {len(frame)} rows \(sha256 [0-9a-f]{{16}}\.\.\.\), ledger entry \d+\n", out
    )
    assert json.loads(_run(data_dir, "privacy", "weights").stdout) == [
        {"name": "churn", "rows": len(frame), "nonzero": len(frame)}
    ]
    released = _run(data_dir, "query", "SELECT DOT(balance, 'churn') AS d FROM customers", "--approve").stdout
    want = float((frame["balance"] * weights.set_index("id")["weight"]).sum())
    assert _released(released)["all"]["d"] == pytest.approx(want, rel=REL, abs=ROUNDED)

    assert "give both NAME and CSV_FILE" in _run(data_dir, "privacy", "weights", "churn", code=2).stderr
    weights.rename(columns={"weight": "w"}).to_csv(csv, index=False)
    assert (
        "it needs the columns id and weight"
        in _run(data_dir, "privacy", "weights", "x", str(csv), code=2).stderr
    )
    weights.assign(id=weights["id"] + 0.5).to_csv(csv, index=False)
    assert "id must hold integers" in _run(data_dir, "privacy", "weights", "x", str(csv), code=2).stderr
    weights.assign(weight=[1.0] * 3 + [0.0] * (len(weights) - 3)).to_csv(csv, index=False)
    assert "non-zero for 3 customer(s)" in _run(data_dir, "privacy", "weights", "x", str(csv), code=2).stderr


def test_commands_before_keygen_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "node"
    Node.init(_settings(path))
    for args in (("privacy", "keys"), ("privacy", "encrypt", "--column", "balance"), ("privacy", "rotate")):
        assert "appliance privacy keygen" in _run(path, *args, code=2).stderr
    assert (
        "customers.balance is not encrypted"
        in _run(path, "query", "SELECT SUM(balance) FROM customers", code=2).stderr
    )
    assert _run(path, "privacy", "columns").stdout == ""


def test_query_json_prints_only_the_json_on_stdout(data_dir: Path, setup: dict[str, Result]) -> None:
    out = _run(data_dir, "query", "SELECT SUM(balance) AS s FROM customers", "--json").stdout
    assert out.startswith("{") and json.loads(out)["status"] == "released"


def test_encrypt_again_with_an_invalid_bound_exits_2(data_dir: Path, setup: dict[str, Result]) -> None:
    result = _run(data_dir, "privacy", "encrypt", "--column", "balance", "--bound", "-1", code=2)
    assert "bound" in result.stderr
