from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.errors import LibraryInvalid, RuleInvalid
from policy.library import PolicyLibrary, check_regex, diff

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "policies"

MANIFEST: dict[str, Any] = {
    "name": "test",
    "version": "1.0.0",
    "industries": ["finance", "retail"],
    "channels": ["chat", "sms"],
    "region_groups": {"EU": ["DE", "FR"]},
}


def rule(rid: str = "T-001", **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": rid,
        "source": "Test Act Art. 1",
        "kind": "phrases",
        "action": "block",
        "scope": {"regions": ["CN"]},
        "phrases": ["保本"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def write(root: Path, files: dict[str, Any], manifest: dict[str, Any] | None = None) -> Path:
    (root / "rules").mkdir(parents=True, exist_ok=True)
    (root / "library.yaml").write_text(yaml.safe_dump(manifest or MANIFEST, allow_unicode=True), "utf-8")
    for name, content in files.items():
        text = content if isinstance(content, str) else yaml.safe_dump(content, allow_unicode=True)
        (root / "rules" / name).write_text(text, "utf-8")
    return root


def test_from_dir_loads_rules_sorted_and_records_files(tmp_path: Path) -> None:
    lib = PolicyLibrary.from_dir(write(tmp_path, {"b.yaml": {"rules": [rule("B-1"), rule("A-1")]}}))
    assert [r.id for r in lib.rules] == ["A-1", "B-1"]
    assert lib.version == "1.0.0"
    assert lib.files["A-1"].endswith("b.yaml")
    assert lib.version_id == f"1.0.0+{lib.content_hash[:12]}"
    assert "A-1" in lib and lib.rule("A-1").id == "A-1"


def test_content_hash_ignores_layout_comments_and_order(tmp_path: Path) -> None:
    one = PolicyLibrary.from_dir(write(tmp_path / "one", {"all.yaml": {"rules": [rule("A-1"), rule("B-1")]}}))
    two = PolicyLibrary.from_dir(
        write(
            tmp_path / "two",
            {
                "x.yaml": "# a comment\n" + yaml.safe_dump({"rules": [rule("B-1")]}, allow_unicode=True),
                "y.yaml": {"rules": [rule("A-1")]},
            },
        )
    )
    assert one.content_hash == two.content_hash
    assert one.canonical() == two.canonical()
    three = PolicyLibrary.from_dir(
        write(tmp_path / "three", {"all.yaml": {"rules": [rule("A-1"), rule("B-1", phrases=["保息"])]}})
    )
    assert three.content_hash != one.content_hash


def test_canonical_is_sorted_compact_json() -> None:
    lib = PolicyLibrary.from_data(MANIFEST, [rule()])
    raw = lib.canonical()
    assert b", " not in raw and b": " not in raw
    assert "保本".encode() in raw  # UTF-8, not \\u escapes


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(LibraryInvalid, match=r"has no library\.yaml"):
        PolicyLibrary.from_dir(tmp_path)


def test_no_rule_files(tmp_path: Path) -> None:
    write(tmp_path, {})
    with pytest.raises(LibraryInvalid, match=r"no \*\.yaml rule files"):
        PolicyLibrary.from_dir(tmp_path)


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"bad.yaml": "rules: [\n  - id: X\n    phrases: [unclosed\n"})
    with pytest.raises(LibraryInvalid) as info:
        PolicyLibrary.from_dir(tmp_path)
    assert "bad.yaml" in str(info.value) and "malformed YAML" in str(info.value)


def test_aliases_are_refused(tmp_path: Path) -> None:
    text = "common: &p [保本]\nrules:\n  - id: A-1\n    phrases: *p\n"
    write(tmp_path, {"a.yaml": text})
    with pytest.raises(LibraryInvalid, match="aliases"):
        PolicyLibrary.from_dir(tmp_path)


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    text = "rules:\n  - id: A-1\n    id: A-2\n"
    write(tmp_path, {"a.yaml": text})
    with pytest.raises(LibraryInvalid, match="duplicate key 'id'"):
        PolicyLibrary.from_dir(tmp_path)


def test_norway_stays_a_country_code(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a.yaml": "rules:\n  - id: A-1\n    source: Act Art. 1\n    kind: phrases\n    action: block\n"
            "    scope: {regions: [NO]}\n    phrases: [x]\n"
        },
    )
    lib = PolicyLibrary.from_dir(tmp_path)
    assert lib.rules[0].scope.regions == ["NO"]


def test_rule_error_names_file_rule_and_fix(tmp_path: Path) -> None:
    write(tmp_path, {"fin.yaml": {"rules": [rule("CN-FIN-002", action="rewrite")]}})
    with pytest.raises(RuleInvalid) as info:
        PolicyLibrary.from_dir(tmp_path)
    err = info.value
    assert err.file is not None and err.file.endswith("fin.yaml")
    assert err.rule == "CN-FIN-002"
    assert "rule CN-FIN-002" in str(err) and "needs `rewrite:`" in str(err)


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": {"rules": [rule("A-1")]}, "b.yaml": {"rules": [rule("A-1")]}})
    with pytest.raises(RuleInvalid, match="duplicate id"):
        PolicyLibrary.from_dir(tmp_path)


def test_file_over_size_limit(tmp_path: Path) -> None:
    write(tmp_path, {"big.yaml": "# " + "x" * 1_000_001 + "\n"})
    with pytest.raises(LibraryInvalid, match="over the 1000000-byte limit"):
        PolicyLibrary.from_dir(tmp_path)


@pytest.mark.parametrize(
    ("scope", "message"),
    [
        ({"regions": ["ZZ"]}, "scope.regions: 'ZZ'"),
        ({"regions": ["CN"], "industries": ["crypto"]}, "scope.industries: 'crypto' is not declared"),
        ({"regions": ["CN"], "channels": ["fax"]}, "scope.channels: 'fax'"),
    ],
)
def test_scope_vocabulary_is_checked(scope: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleInvalid, match=message):
        PolicyLibrary.from_data(MANIFEST, [rule(scope=scope)])


def test_groups_are_valid_scope() -> None:
    lib = PolicyLibrary.from_data(MANIFEST, [rule(scope={"regions": ["EU", "US-CA", "*"]})])
    assert lib.rules[0].scope.regions == ["EU", "US-CA", "*"]


def test_punctuation_only_phrase_is_refused() -> None:
    with pytest.raises(RuleInvalid, match="only punctuation"):
        PolicyLibrary.from_data(MANIFEST, [rule(phrases=["!!!"])])


@pytest.mark.parametrize(
    "regex", ["(a+)+", "(a|aa)*", "(.*)*", "(a)\\1", ".*foo", "\\w+", "(x|y|xy)+", "a{1,5000}"]
)
def test_unsafe_regex_is_refused_at_load(regex: str) -> None:
    with pytest.raises(RuleInvalid) as info:
        PolicyLibrary.from_data(MANIFEST, [rule(kind="pattern", phrases=None, pattern=regex)])
    assert f"pattern {regex!r}" in str(info.value)


def test_nested_quantifier_message_says_what_to_do() -> None:
    with pytest.raises(RuleInvalid) as info:
        PolicyLibrary.from_data(MANIFEST, [rule("CN-FIN-002", kind="pattern", phrases=None, pattern="(a+)+")])
    assert "rule CN-FIN-002: pattern '(a+)+'" in str(info.value)
    assert "backtrack catastrophically" in str(info.value) and "without nested quantifiers" in str(info.value)


def test_overlong_and_invalid_regex() -> None:
    assert check_regex("a" * 501) is not None
    problem = check_regex("(unclosed")
    assert problem is not None and "not a valid regex" in problem[0]


@pytest.mark.parametrize(
    "regex", ["保证.{0,10}\\d{1,4}%", "(?:收益|回报)+", "guaranteed\\s+\\d{1,3}\\s?%", "[a-z]+", "a(?=b)"]
)
def test_safe_regexes_pass(regex: str) -> None:
    assert check_regex(regex) is None


def test_unsafe_claim_number_regex_is_refused() -> None:
    with pytest.raises(RuleInvalid, match=r"claim\.number"):
        PolicyLibrary.from_data(MANIFEST, [rule(kind="claim", claim={"number": "(\\d+)+%"})])


def test_bad_timezone_in_manifest() -> None:
    with pytest.raises(LibraryInvalid, match="not an IANA time zone"):
        PolicyLibrary.from_data({**MANIFEST, "timezones": {"CN": "Mars/Olympus"}}, [rule()])


def test_diff_reports_added_removed_changed() -> None:
    a = PolicyLibrary.from_data(MANIFEST, [rule("A-1"), rule("B-1")])
    b = PolicyLibrary.from_data(
        {**MANIFEST, "version": "1.1.0", "channels": ["chat", "sms", "email"]},
        [rule("A-1", action="review"), rule("C-1")],
    )
    d = diff(a, b)
    assert d.added == ("C-1",)
    assert d.removed == ("B-1",)
    assert [(c.id, c.fields) for c in d.changed] == [("A-1", ("action",))]
    assert d.vocabulary_changed == ("channels",)
    assert d.as_dict()["to"].startswith("1.1.0+")
    assert diff(a, a).empty


def test_default_library_loads(tmp_path: Path) -> None:
    lib = PolicyLibrary.from_dir(DEFAULT)
    assert lib.version == "1.0.0"
    copy = tmp_path / "copy"
    shutil.copytree(DEFAULT, copy)
    assert PolicyLibrary.from_dir(copy).content_hash == lib.content_hash


def test_the_event_loader_builds_what_the_strict_pyyaml_loader_builds():
    """The fast path (values straight from libyaml events) must read every shipped file identically."""
    from pathlib import Path

    import yaml

    from policy.library import _load, _StrictLoader

    root = Path(__file__).resolve().parents[3] / "config" / "policies"
    files = sorted(root.rglob("*.yaml"))
    assert len(files) > 5
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert _load(text) == yaml.load(text, Loader=_StrictLoader), path
    tricky = "a: 1\nb: [x, {c: NO}]\nd: true\ne: 2022-10-01\nf: 1.5e3\ng: ~\nh: '07'\ni: 0x1F\nj: ''\n"
    assert _load(tricky) == yaml.load(tricky, Loader=_StrictLoader)
