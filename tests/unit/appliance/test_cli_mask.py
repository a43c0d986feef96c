"""`appliance mask`: JSON lines and CSV masked as a role sees them; a bad line writes nothing (exit 2)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from appliance.cli import cli
from appliance.node import Node
from appliance.settings import load_settings

MOBILE = "13812345678"
CARD = "4111 1111 1111 1111"


@pytest.fixture
def node_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_NODE__DATA_DIR", str(tmp_path / "node"))
    Node.init(load_settings())
    return tmp_path


def _run(*args: str, input: bytes | None = None, code: int = 0):
    result = CliRunner().invoke(cli, ["mask", *args], input=input, catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def _ledger_size() -> int:
    with Node.open(load_settings(), readonly=True) as node:
        return node.ledger.size


def _last_entry() -> dict:
    with Node.open(load_settings(), readonly=True) as node:
        return node.ledger.entry(node.ledger.size - 1).as_dict()


def test_jsonl_spans_index_the_original_text(node_dir) -> None:
    lines = [
        {"id": 1, "text": f"您好，手机{MOBILE}请回电"},
        {"id": 2, "text": f"card {CARD} was charged twice"},
        {"id": 3, "text": "nothing to hide here"},
    ]
    data = "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines).encode()
    out = _run("--spans", input=data).stdout_bytes.decode().splitlines()
    got = [json.loads(line) for line in out]
    assert [g["id"] for g in got] == [1, 2, 3]
    assert MOBILE not in got[0]["text"] and "138****5678" in got[0]["text"]
    for src, dst in zip(lines, got, strict=True):
        for e in dst["entities"]:
            assert set(e) == {"type", "start", "end", "score"}
            assert src["text"][e["start"] : e["end"]] in (MOBILE, CARD)
    assert got[2]["entities"] == [] and got[2]["text"] == lines[2]["text"]
    entry = _last_entry()
    assert entry["action"] == "text.masked"
    assert entry["details"]["lines"] == 3 and entry["details"]["entities"]["CN_MOBILE"] == 1
    assert MOBILE not in json.dumps(entry)


def test_role_and_region_choose_the_view(node_dir) -> None:
    data = json.dumps({"text": f"card {CARD}"}).encode() + b"\n"
    agent = _run(input=data).stdout
    supervisor = _run("--role", "supervisor", input=data).stdout
    auditor = _run("--role", "auditor", "--region", "EU", input=data).stdout
    assert len({agent, supervisor, auditor}) == 3
    assert "tok_BANK_CARD_" in supervisor


@pytest.mark.parametrize(
    ("data", "args", "message"),
    [
        (b'{"text": "ok"}\n{"text": 5}\n', (), "line 2: expected a JSON object"),
        (b'{"text": "ok"}\n{"text": "\xff"}\n', (), "line 2: not valid UTF-8"),
        (b'{"text": "ok"}\nnot json\n', (), "line 2: not valid JSON"),
        (b'{"text": "\\ud800"}\n', (), "lone surrogate"),
        (b'{"text": "ok"}\n', ("--role", "nobody"), "no masking profile for role 'nobody'"),
        (b'{"text": "ok"}\n', ("--region", "XX"), "unknown region"),
        (b'{"text": "ok"}\n', ("--entities", "CN_MOBILE,FOO"), "unknown entity type(s) FOO"),
        (b'{"text": "ok"}\n', ("--columns", "a"), "--columns applies to --csv"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    node_dir, data: bytes, args: tuple[str, ...], message: str
) -> None:
    size = _ledger_size()
    result = _run(*args, input=data, code=2)
    assert message in result.output
    assert result.stdout == "", "no masked line reached the output"
    assert _ledger_size() == size


def test_output_file_is_untouched_when_a_line_is_bad(node_dir) -> None:
    target = node_dir / "out.jsonl"
    target.write_text("previous run\n")
    bad = json.dumps({"text": f"手机{MOBILE}"}).encode() + b"\n" + b"[1, 2]\n"
    _run("-o", str(target), input=bad, code=2)
    assert target.read_text() == "previous run\n"
    good = json.dumps({"text": f"手机{MOBILE}"}).encode() + b"\n"
    _run("-o", str(target), input=good)
    assert "138****5678" in target.read_text()


def test_csv_columns_free_text_and_typed(node_dir) -> None:
    src = node_dir / "in.csv"
    src.write_text(f'id,notes,mobile,plan\n1,"我的卡号6222021234567890128",{MOBILE},gold\n2,none,,basic\n')
    out = _run("--csv", "--columns", "notes,mobile=CN_MOBILE", "-i", str(src)).stdout.splitlines()
    assert out[0] == "id,notes,mobile,plan"
    assert "6222021234567890128" not in out[1] and "138****5678" in out[1] and out[1].endswith(",gold")
    assert out[2] == "2,none,,basic"
    details = _last_entry()["details"]
    assert details["format"] == "csv" and details["lines"] == 2
    assert details["entities"] == {"BANK_CARD": 1, "CN_MOBILE": 1}


@pytest.mark.parametrize(
    ("content", "columns", "message"),
    [
        ("id,notes\n1,a\n", "nope", "no column(s) nope"),
        ("id,notes\n1,a,extra\n", "notes", "line 2: 3 values for 2 columns"),
        ("", "notes", "empty"),
        ("id,notes\n1,a\n", "notes=NOT_A_TYPE", "unknown type 'NOT_A_TYPE'"),
    ],
)
def test_bad_csv_exits_2(node_dir, content: str, columns: str, message: str) -> None:
    src = node_dir / "in.csv"
    src.write_text(content)
    result = _run("--csv", "--columns", columns, "-i", str(src), code=2)
    assert message in result.output


def test_csv_invalid_utf8_names_the_line(node_dir) -> None:
    src = node_dir / "in.csv"
    src.write_bytes(b"id,notes\n1,fine\n2,\xff\xfe bad\n")
    assert "not valid UTF-8" in _run("--csv", "--columns", "notes", "-i", str(src), code=2).output


def test_profiles_check_prints_the_version_the_node_records(node_dir) -> None:
    out = CliRunner().invoke(cli, ["profiles", "check"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    with Node.open(load_settings(), readonly=True) as node:
        assert f"OK: profile set {node.masking.version}" in out.output


def test_profiles_check_names_the_bad_key(node_dir) -> None:
    bad = node_dir / "bad.yaml"
    bad.write_text("profiles:\n  - role: agent\n    default: tag\n    entities:\n      CN_MOBIL: tag\n")
    out = CliRunner().invoke(cli, ["profiles", "check", str(bad)], catch_exceptions=False)
    assert out.exit_code == 2
    assert "entities.CN_MOBIL" in out.output and "did you mean CN_MOBILE" in out.output


def test_profiles_show_resolves_aliases_and_region_groups(node_dir) -> None:
    out = CliRunner().invoke(cli, ["profiles", "show", "bot", "--region", "DE"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    view = json.loads(out.stdout)
    assert view["profile"] == "agent/EU"
    assert set(view["entities"]) == {
        "ADDRESS",
        "BANK_CARD",
        "CN_LANDLINE",
        "CN_MOBILE",
        "CN_PASSPORT",
        "CN_PERMIT",
        "CN_PLATE",
        "CN_RESIDENT_ID",
        "CN_USCC",
        "DATE_OF_BIRTH",
        "EMAIL",
        "IBAN",
        "IP_ADDRESS",
        "MAC_ADDRESS",
        "PASSPORT",
        "PERSON",
        "PHONE",
        "US_ITIN",
        "US_SSN",
    }
    assert CliRunner().invoke(cli, ["profiles", "show", "nobody"]).exit_code == 2


def test_a_node_with_a_broken_profile_file_refuses_to_start(node_dir, monkeypatch) -> None:
    bad = node_dir / "bad.yaml"
    bad.write_text("profiles:\n  - role: agent\n    default: nope\n")
    monkeypatch.setenv("APPLIANCE_MASKING__PROFILES", str(bad))
    out = CliRunner().invoke(cli, ["ledger", "head"], catch_exceptions=False)
    assert out.exit_code == 2
    assert "masking cannot start" in out.output and "bad.yaml" in out.output


def test_a_changed_profile_file_is_recorded_as_a_new_version(node_dir, monkeypatch) -> None:
    from appliance.masking.service import DEFAULT_PROFILES

    def versions() -> list[str]:
        with Node.open(load_settings()) as node:  # a writable open records a version it has not seen
            entries = [node.ledger.entry(i).as_dict() for i in range(node.ledger.size)]
        return [e["details"]["version"] for e in entries if e["action"] == "masking.profiles_loaded"]

    first = versions()
    assert len(first) == 1
    changed = node_dir / "profiles.yaml"
    mobile = (
        "\n      CN_MOBILE: {operator: partial, params: {keep_first: 3, keep_last: 4}}"  # not the comment
    )
    assert mobile in DEFAULT_PROFILES.read_text()
    changed.write_text(DEFAULT_PROFILES.read_text().replace(mobile, mobile.replace("4}", "2}"), 1))
    monkeypatch.setenv("APPLIANCE_MASKING__PROFILES", str(changed))
    second = versions()
    assert len(second) == 2 and second[0] == first[0] and second[1] != first[0]
    assert versions() == second, "reopening with the same file records nothing new"
