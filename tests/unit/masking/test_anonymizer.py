"""The anonymizer: spans replaced in place, item offsets, records, DataFrames, de-tokenising."""

from __future__ import annotations

import re
import textwrap
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from appliance.masking.anonymizer import Anonymizer, MaskedItem
from appliance.masking.entities import Finding
from appliance.masking.errors import MaskingError, TokenError, UnknownEntityType
from appliance.masking.operators import MaskingKeys, OperatorContext
from appliance.masking.operators.dateshift import subject_offset
from appliance.masking.profiles import ProfileSet

KEYS = MaskingKeys.derive(b"\x07" * 32, "tenant-a")
TODAY = date(2024, 6, 1)

PROFILES = """\
detokenize_roles: [supervisor]
profiles:
  - role: agent
    default: tag
    entities:
      CN_MOBILE: {operator: partial, params: {keep_first: 3, keep_last: 4}}
      EMAIL: partial
      PERSON: {operator: partial, params: {keep_first: 1, keep_last: 0}}
      DATE_OF_BIRTH: {operator: generalize, params: {mode: age_band}}
      BANK_CARD: {operator: redact, params: {replacement: "[已屏蔽]"}}
  - role: supervisor
    default: tag
    entities:
      CN_RESIDENT_ID: token
      DATE_OF_BIRTH: dateshift
  - role: auditor
    default: pseudonym
"""

_PATTERNS = [
    ("CN_MOBILE", re.compile(r"1[3-9]\d{9}")),
    ("EMAIL", re.compile(r"[\w.]+@[\w.]+\w")),
    ("CN_RESIDENT_ID", re.compile(r"\d{17}[\dX]")),
]


def analyze(text: str) -> list[Finding]:
    """A stand-in analyzer: a few regexes, sorted and non-overlapping like the real one promises."""
    found = [Finding(t, m.start(), m.end(), 1.0, "pattern") for t, p in _PATTERNS for m in p.finditer(text)]
    found.sort(key=lambda f: f.start)
    out: list[Finding] = []
    for f in found:
        if not out or f.start >= out[-1].end:
            out.append(f)
    return out


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> ProfileSet:
    path = Path(tmp_path_factory.mktemp("profiles")) / "profiles.yaml"
    path.write_text(textwrap.dedent(PROFILES), "utf-8")
    return ProfileSet.from_file(path)


@pytest.fixture(scope="module")
def anon(profiles: ProfileSet) -> Anonymizer:
    return Anonymizer(profiles, KEYS, today=lambda: TODAY)


TEXT = "张三的手机是13812345678，邮箱 zhang@example.com。"
FINDINGS = [
    Finding("PERSON", 0, 2, 0.9, "context"),
    Finding("CN_MOBILE", 6, 17, 1.0, "pattern"),
    Finding("EMAIL", 21, 38, 1.0, "pattern"),
]


# --- mask_text ------------------------------------------------------------------------------------


def test_spans_are_replaced_and_items_point_at_the_replacements(
    anon: Anonymizer, profiles: ProfileSet
) -> None:
    masked = anon.mask_text(TEXT, FINDINGS, profiles.resolve("agent"))
    assert masked.text == "张*的手机是138****5678，邮箱 z***@example.com。"
    assert masked.items == (
        MaskedItem("PERSON", 0, 2, 0, 2, "partial"),
        MaskedItem("CN_MOBILE", 6, 17, 6, 17, "partial"),
        MaskedItem("EMAIL", 21, 38, 21, 37, "partial"),
    )
    assert [masked.text[i.new_start : i.new_end] for i in masked.items] == [
        "张*",
        "138****5678",
        "z***@example.com",
    ]
    assert masked.items[2].as_dict()["new_end"] == 37


def test_length_changing_replacements_shift_later_offsets(anon: Anonymizer, profiles: ProfileSet) -> None:
    masked = anon.mask_text(TEXT, FINDINGS, profiles.resolve("supervisor"))
    assert masked.text == "<PERSON>的手机是<CN_MOBILE>，邮箱 <EMAIL>。"
    starts = [(i.new_start, i.new_end) for i in masked.items]
    assert starts == [(0, 8), (12, 23), (27, 34)]
    assert all(masked.text[a:b] == f"<{i.type}>" for (a, b), i in zip(starts, masked.items, strict=True))


def test_no_findings_returns_the_text(anon: Anonymizer, profiles: ProfileSet) -> None:
    masked = anon.mask_text(TEXT, [], profiles.resolve("agent"))
    assert masked.text == TEXT and masked.items == ()


def test_findings_at_the_edges_and_adjacent(anon: Anonymizer, profiles: ProfileSet) -> None:
    text = "1381234567813812345678"
    findings = [Finding("CN_MOBILE", 0, 11, 1, "p"), Finding("CN_MOBILE", 11, 22, 1, "p")]
    assert anon.mask_text(text, findings, profiles.resolve("agent")).text == "138****5678138****5678"


def test_unsorted_and_overlapping_findings_are_merged_not_dropped(
    anon: Anonymizer, profiles: ProfileSet
) -> None:
    text = "call 13812345678 now"
    findings = [
        Finding("CN_MOBILE", 5, 16, 1, "p"),
        Finding("PERSON", 10, 18, 0.5, "context"),  # overlaps the end and runs past it
        Finding("EMAIL", 0, 0, 1, "p"),  # empty: ignored
    ]
    masked = anon.mask_text(text, list(reversed(findings)), profiles.resolve("supervisor"))
    assert masked.text == "call <CN_MOBILE>ow"
    assert masked.items == (MaskedItem("CN_MOBILE", 5, 18, 5, 16, "tag"),)


@pytest.mark.parametrize("span", [(-1, 3), (5, 99)])
def test_findings_outside_the_text_are_refused(anon: Anonymizer, profiles: ProfileSet, span: tuple) -> None:
    with pytest.raises(MaskingError, match="outside the text"):
        anon.mask_text("short text", [Finding("PERSON", *span, 1, "p")], profiles.resolve("agent"))


def test_unlisted_types_get_the_profile_default(anon: Anonymizer, profiles: ProfileSet) -> None:
    masked = anon.mask_text("ip 10.0.0.1", [Finding("IP_ADDRESS", 3, 11, 1, "p")], profiles.resolve("agent"))
    assert masked.text == "ip <IP_ADDRESS>" and masked.items[0].operator == "tag"


def test_age_band_uses_the_injected_today(profiles: ProfileSet) -> None:
    text = "born 1990-06-02"
    findings = [Finding("DATE_OF_BIRTH", 5, 15, 1, "context")]
    assert Anonymizer(profiles, KEYS, today=lambda: TODAY).mask_text(
        text, findings, profiles.resolve("agent")
    ).text == ("born 30-39")
    later = Anonymizer(profiles, KEYS, today=lambda: date(2034, 6, 2))
    assert later.mask_text(text, findings, profiles.resolve("agent")).text == "born 40-49"


def test_subject_drives_date_shifting(anon: Anonymizer, profiles: ProfileSet) -> None:
    sup = profiles.resolve("supervisor")
    assert sup.needs_subject
    findings = [Finding("DATE_OF_BIRTH", 5, 15, 1, "context")]
    out_a = anon.mask_text("born 1990-03-07", findings, sup, subject="cust:a").text
    out_b = anon.mask_text("born 1990-03-07", findings, sup, subject="cust:b").text
    days = subject_offset(KEYS.pseudonym_key, "cust:a", 30)
    assert out_a == "born " + (date(1990, 3, 7).fromordinal(date(1990, 3, 7).toordinal() + days)).isoformat()
    assert out_a != out_b
    assert anon.mask_text("born 1990-03-07", findings, sup).text == "born 1990"  # no subject: year only


def test_tokens_round_trip_through_the_anonymizer(anon: Anonymizer, profiles: ProfileSet) -> None:
    text = "ID 11010119900307777X please"
    masked = anon.mask_text(text, analyze(text), profiles.resolve("supervisor"))
    item = masked.items[0]
    token = masked.text[item.new_start : item.new_end]
    assert item.operator == "token" and token.startswith("tok_CN_RESIDENT_ID_")
    assert anon.detokenize(token) == ("CN_RESIDENT_ID", "11010119900307777X")
    other = Anonymizer(profiles, MaskingKeys.derive(b"\x07" * 32, "tenant-b"))
    with pytest.raises(TokenError):
        other.detokenize(token)


def test_auditor_pseudonyms_join_across_messages(anon: Anonymizer, profiles: ProfileSet) -> None:
    aud = profiles.resolve("auditor")
    a = anon.mask_text("mobile 138 1234 5678", [Finding("CN_MOBILE", 7, 20, 1, "p")], aud).text
    b = anon.mask_text("13812345678 called", [Finding("CN_MOBILE", 0, 11, 1, "p")], aud).text
    assert a.split(" ", 1)[1] == b.split(" ", 1)[0]
    assert "5678" not in a


# --- records --------------------------------------------------------------------------------------


def test_mask_record(anon: Anonymizer, profiles: ProfileSet) -> None:
    record = {
        "name": "张三",
        "mobile": "13812345678",
        "note": "客户说新号码是13987654321，邮箱 a.b@example.com",
        "card": "6222021234567890",
        "customer_id": "C-0042",
        "extra": "回拨 13700001111",  # not declared: scanned
        "count": 42,  # not declared, nothing found: unchanged, still an int
        "phone_number": 13800001111,  # not declared, a number holding a mobile: scanned as text
        "flags": None,
        "nested": {"contact": "13512345678", "tags": ["vip", "13612345678"]},
        "dob": "1990-06-01",
    }
    fields = {
        "name": "PERSON",
        "mobile": "CN_MOBILE",
        "note": "free_text",
        "card": "BANK_CARD",
        "customer_id": None,
        "dob": "DATE_OF_BIRTH",
    }
    before = repr(record)
    out = anon.mask_record(record, fields, profiles.resolve("agent"), analyze=analyze)
    assert repr(record) == before  # the input is untouched
    assert out == {
        "name": "张*",
        "mobile": "138****5678",
        "note": "客户说新号码是139****4321，邮箱 a***@example.com",
        "card": "[已屏蔽]",
        "customer_id": "C-0042",
        "extra": "回拨 137****1111",
        "count": 42,
        "phone_number": "138****1111",
        "flags": None,
        "nested": {"contact": "135****5678", "tags": ["vip", "136****5678"]},
        "dob": "30-39",
    }


def test_mask_record_refuses_unknown_field_kinds(anon: Anonymizer, profiles: ProfileSet) -> None:
    with pytest.raises(UnknownEntityType, match=r"field 'mobile' is declared as 'MOBILE'.*free_text"):
        anon.mask_record({"mobile": "1"}, {"mobile": "MOBILE"}, profiles.resolve("agent"), analyze=analyze)


def test_mask_value(anon: Anonymizer, profiles: ProfileSet) -> None:
    assert anon.mask_value("13812345678", "CN_MOBILE", profiles.resolve("agent")) == "138****5678"


# --- DataFrames -----------------------------------------------------------------------------------


def test_mask_dataframe(anon: Anonymizer, profiles: ProfileSet) -> None:
    df = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "mobile": ["13812345678", None, "13812345678"],
            "note": ["call 13987654321", "nothing here", None],
            "amount": [10.5, 20.0, 30.25],
            "name": ["张三", "李四", "王五"],
        }
    )
    original = df.copy()
    out = anon.mask_dataframe(
        df,
        {"customer_id": None, "mobile": "CN_MOBILE", "note": "free_text", "name": "PERSON"},
        profiles.resolve("agent"),
        analyze=analyze,
    )
    pd.testing.assert_frame_equal(df, original)  # untouched
    assert out is not df
    assert out["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert out["mobile"].iloc[0] == "138****5678" and out["mobile"].iloc[2] == "138****5678"
    assert pd.isna(out["mobile"].iloc[1])
    assert out["note"].iloc[0] == "call 139****4321" and out["note"].iloc[1] == "nothing here"
    assert pd.isna(out["note"].iloc[2])
    assert out["amount"].tolist() == [10.5, 20.0, 30.25]  # undeclared, scanned, nothing found
    assert out["amount"].dtype == df["amount"].dtype
    assert out["name"].tolist() == ["张*", "李*", "王*"]
    assert out["name"].dtype == df["name"].dtype


def test_mask_dataframe_shifts_dates_per_row_subject(anon: Anonymizer, profiles: ProfileSet) -> None:
    df = pd.DataFrame({"subject": ["cust:a", "cust:b", "cust:a"], "dob": ["1990-03-07"] * 3})
    sup = profiles.resolve("supervisor")
    out = anon.mask_dataframe(df, {"dob": "DATE_OF_BIRTH"}, sup, analyze=analyze, subject_column="subject")
    expected = [
        anon.mask_value("1990-03-07", "DATE_OF_BIRTH", sup, subject=s) for s in ("cust:a", "cust:b", "cust:a")
    ]
    assert out["dob"].tolist() == expected
    assert expected[0] != expected[1]
    assert out["subject"].tolist() == df["subject"].tolist()  # the subject column is not scanned
    with pytest.raises(MaskingError, match="subject_column 'who'"):
        anon.mask_dataframe(df, {}, sup, analyze=analyze, subject_column="who")


def test_context_is_shared_only_without_subject(anon: Anonymizer) -> None:
    assert anon._context(None) is anon._context(None)
    ctx = anon._context("s")
    assert isinstance(ctx, OperatorContext) and ctx.subject == "s" and ctx.today == TODAY


def test_mask_dataframe_numbers_in_typed_columns_and_bulk_operators(
    anon: Anonymizer, profiles: ProfileSet
) -> None:
    df = pd.DataFrame({"card": [6222021234567890, 6222021234567891], "mobile": ["13812345678"] * 2})
    out = anon.mask_dataframe(
        df, {"card": "BANK_CARD", "mobile": "EMAIL"}, profiles.resolve("supervisor"), analyze=analyze
    )
    assert out["card"].tolist() == ["<BANK_CARD>", "<BANK_CARD>"]  # numbers are masked as their text
    assert out["mobile"].tolist() == ["<EMAIL>", "<EMAIL>"]  # the declared type wins over the content
    assert df["card"].tolist() == [6222021234567890, 6222021234567891]
