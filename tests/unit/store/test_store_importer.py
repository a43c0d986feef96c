"""Imports: CSV, JSONL and Parquet; a bad row is named by line and nothing of its batch is written."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from appliance.store import ImportRejected, StoreError, import_file

HEADER = "external_id,region,full_name,mobile,date_of_birth,marketing_consent,segment"


def _customers(n: int, start: int = 1) -> list[dict]:
    return [
        {
            "external_id": f"C{i:04d}",
            "region": "CN" if i % 2 else "US",
            "full_name": f"客户{i}" if i % 2 else f"Customer {i}",
            "mobile": f"138{i:08d}",
            "date_of_birth": "1990-01-02",
            "marketing_consent": "true" if i % 3 else "false",
            "segment": "mass",
        }
        for i in range(start, start + n)
    ]


def _write_csv(path: Path, rows: list[dict], header: str = HEADER) -> Path:
    cols = header.split(",")
    lines = [header] + [",".join(str(r.get(c, "")) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_csv_import_writes_every_row_in_batches(store, tmp_path):
    path = _write_csv(tmp_path / "customers.csv", _customers(7))
    stages: list[tuple[str, int, int]] = []
    report = import_file(store, path, batch_rows=3, progress=lambda *a: stages.append(a))
    assert (report.rows, report.written, report.batches, report.format) == (7, 7, 3, "csv")
    assert len(report.sha256) == 64 and not report.dry_run
    assert store.count_customers() == 7
    got = store.find_customer_by_external_id("C0003")
    assert got["full_name"] == "客户3" and got["date_of_birth"] == date(1990, 1, 2)
    assert got["marketing_consent"] is False
    assert ("checking", 7, 7) in stages and ("writing", 7, 7) in stages
    assert [s for s in stages if s[0] == "writing"] == [
        ("writing", 0, 7),
        ("writing", 3, 7),
        ("writing", 6, 7),
        ("writing", 7, 7),
    ]


def test_jsonl_and_parquet_customers_and_events(store, tmp_path):
    rows = _customers(4)
    rows[0]["marketing_consent"] = True  # JSON and Arrow carry real types
    import_file(store, _write_jsonl(tmp_path / "c.jsonl", rows[:2]))
    table = pa.table(
        {
            "external_id": [r["external_id"] for r in rows[2:]],
            "region": [r["region"] for r in rows[2:]],
            "full_name": [r["full_name"] for r in rows[2:]],
            "mobile": [int(r["mobile"]) for r in rows[2:]],  # numbers in a spreadsheet export
            "date_of_birth": [date(1990, 1, 2), None],
        }
    )
    pq.write_table(table, tmp_path / "c.parquet")
    report = import_file(store, tmp_path / "c.parquet")
    assert (report.format, report.written) == ("parquet", 2)
    assert store.count_customers() == 4
    assert store.find_customer_by_external_id("C0003")["mobile"] == "13800000003"
    assert "date_of_birth" not in store.find_customer_by_external_id("C0004")

    ts = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    events = pa.table(
        {
            "external_id": ["C0001", "C0002", "C0001"],
            "ts": pa.array([ts, ts, ts], type=pa.timestamp("us", tz="UTC")),
            "kind": ["login", "purchase", "complaint"],
            "amount": [None, 19.9, None],
            "details": ['{"method": "sms"}', None, '{"topic": "billing"}'],
        }
    )
    pq.write_table(events, tmp_path / "e.parquet")
    import_file(store, tmp_path / "e.parquet", kind="events")
    _write_jsonl(
        tmp_path / "e.jsonl",
        [
            {
                "external_id": "C0003",
                "ts": "2024-05-02T09:00:00+08:00",
                "kind": "login",
                "details": {"method": "wechat"},
            }
        ],
    )
    import_file(store, tmp_path / "e.jsonl", kind="events")
    assert store.count_events() == 4
    c1 = store.find_customer_by_external_id("C0001")["id"]
    assert [(e.kind, dict(e.details)) for e in store.events_for(c1)] == [
        ("login", {"method": "sms"}),
        ("complaint", {"topic": "billing"}),
    ]


def test_a_bad_csv_row_is_named_by_its_line_and_nothing_is_written(store, tmp_path):
    import_file(store, _write_csv(tmp_path / "first.csv", _customers(2, start=100)))
    rows = _customers(6)
    rows[4]["mobile"] = "not a number"  # the 5th data row: line 6 (the header is line 1)
    path = _write_csv(tmp_path / "bad.csv", rows)
    before = store.count_customers()
    with pytest.raises(ImportRejected) as err:
        import_file(store, path, batch_rows=2, source="bad.csv")
    assert (err.value.line, err.value.field, err.value.written) == (6, "mobile", 0)
    assert str(err.value).startswith("bad.csv line 6: field mobile: does not look like a CN_MOBILE value")
    assert str(err.value).endswith("nothing from this batch was written")
    assert "not a number" not in str(err.value)
    assert store.count_customers() == before == 2


def test_csv_line_numbers_count_physical_lines(store, tmp_path):
    path = tmp_path / "multi.csv"
    path.write_text(
        'external_id,region,full_name,notes\nA1,CN,张三,"two\nlines"\n\nA2,CN,,blank name\n',
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as err:
        import_file(store, path)
    assert (err.value.line, err.value.field) == (5, "full_name")
    assert "required" in err.value.reason


@pytest.mark.parametrize(
    ("content", "line", "field", "reason"),
    [
        ("external_id,region,full_name,shoe_size\n", 1, "shoe_size", "not a declared column"),
        ("external_id,region,full_name,full_name\n", 1, "full_name", "twice"),
        ("external_id,region,full_name\nA1,CN,x,extra\n", 2, None, "has 4 cells"),
        ("external_id,region,full_name\nA1,CN,x\nA1,US,y\n", 3, "external_id", "appears earlier"),
        ("", 1, None, "empty"),
    ],
)
def test_csv_structure_problems(store, tmp_path, content, line, field, reason):
    path = tmp_path / "x.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ImportRejected) as err:
        import_file(store, path)
    assert (err.value.line, err.value.field) == (line, field)
    assert reason in err.value.reason
    assert store.count_customers() == 0


def test_jsonl_and_parquet_problems_are_named_by_line_and_row(store, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"external_id": "A1", "region": "CN", "full_name": "x"}\n\n[1, 2]\n')
    with pytest.raises(ImportRejected, match=r"x.jsonl line 3: is not a JSON object"):
        import_file(store, path)
    path.write_bytes(b'{"external_id": "A1", "region": "CN", "full_name": "x"}\n{"external_id": \n')
    with pytest.raises(ImportRejected, match=r"line 2: is not valid JSON"):
        import_file(store, path)
    pq.write_table(
        pa.table(
            {"external_id": ["A1", "A2", "A3"], "region": ["CN", "CN", "MARS"], "full_name": ["a", "b", "c"]}
        ),
        tmp_path / "x.parquet",
    )
    with pytest.raises(ImportRejected) as err:
        import_file(store, tmp_path / "x.parquet")
    assert (err.value.unit, err.value.line, err.value.field) == ("row", 3, "region")
    assert "x.parquet row 3: field region" in str(err.value)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(StoreError, match="not a readable Parquet file"):
        import_file(store, tmp_path / "junk.parquet")
    with pytest.raises(StoreError, match="give --format"):
        import_file(store, tmp_path / "x.txt")
    assert store.count_customers() == 0


def test_events_for_unknown_customers_are_refused_by_line(store, tmp_path):
    import_file(store, _write_csv(tmp_path / "c.csv", _customers(2)))
    path = tmp_path / "e.csv"
    path.write_text(
        "external_id,ts,kind,details\n"
        'C0001,2024-05-01T08:00:00Z,login,"{""method"": ""sms""}"\n'
        "C9999,2024-05-01T08:00:00Z,login,\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRejected) as err:
        import_file(store, path, kind="events")
    assert (err.value.line, err.value.field) == (3, "external_id")
    assert "import it first" in str(err.value)
    assert store.count_events() == 0


def test_dry_run_checks_everything_and_writes_nothing(store, tmp_path):
    path = _write_csv(tmp_path / "c.csv", _customers(5))
    report = import_file(store, path, dry_run=True)
    assert (report.rows, report.written, report.batches, report.dry_run) == (5, 0, 0, True)
    assert store.count_customers() == 0
    import_file(store, path)
    with pytest.raises(ImportRejected, match="line 2: field external_id: already exists"):
        import_file(store, path, dry_run=True)
    assert store.count_customers() == 5


def test_a_batch_that_fails_in_the_database_is_not_half_written(store, tmp_path):
    """Another writer takes an external id between the check and the write: batches before it stay,
    the failing batch writes nothing, and the error says where to resume."""
    path = _write_csv(tmp_path / "c.csv", _customers(9))

    def race(stage: str, done: int, total: int) -> None:
        if stage == "writing" and done == 0:
            store.add_customers([{"external_id": "C0005", "region": "CN", "full_name": "meanwhile"}])

    with pytest.raises(ImportRejected) as err:
        import_file(store, path, batch_rows=3, progress=race)
    # Batch 1 (lines 2-4) is in; batch 2 (lines 5-7) holds C0005 on line 6 and wrote nothing.
    assert (err.value.line, err.value.field, err.value.written) == (6, "external_id", 3)
    assert "the 3 rows before it were imported (re-import the rest from line 6)" in str(err.value)
    ids = {c["external_id"] for c in store.list_customers(limit=100)}
    assert ids == {"C0001", "C0002", "C0003", "C0005"}
    assert store.find_customer_by_external_id("C0005")["full_name"] == "meanwhile"
