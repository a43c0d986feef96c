"""Properties of the masking operators and of mask_text, over random values, texts and findings."""

from __future__ import annotations

import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.masking.anonymizer import Anonymizer
from appliance.masking.entities import ENTITY_TYPES, Finding
from appliance.masking.operators import (
    DateShiftOperator,
    FpeOperator,
    MaskingKeys,
    OperatorContext,
    PartialOperator,
    PseudonymOperator,
    TokenOperator,
    detokenize,
)
from appliance.masking.operators._dates import parse_date
from appliance.masking.operators.dateshift import subject_offset
from appliance.masking.profiles import Profile, ProfileSet

KEYS = MaskingKeys.derive(b"\x2a" * 32, "props")
CTX = OperatorContext(KEYS, subject="subj", today=date(2024, 6, 1))
TYPES = sorted(ENTITY_TYPES)

# A profile that uses every operator, so the mask_text property exercises them all.
MIXED = """\
profiles:
  - role: agent
    default: {operator: partial, params: {keep_first: 1, keep_last: 1}}
    entities:
      PERSON: redact
      ADDRESS: {operator: redact, params: {replacement: "[已屏蔽]"}}
      EMAIL: tag
      CN_MOBILE: pseudonym
      CN_RESIDENT_ID: token
      BANK_CARD: fpe
      DATE_OF_BIRTH: {operator: generalize, params: {mode: age_band}}
      US_SSN: dateshift
"""


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Anonymizer, Profile]:
    path = Path(tmp_path_factory.mktemp("props")) / "profiles.yaml"
    path.write_text(textwrap.dedent(MIXED), "utf-8")
    profiles = ProfileSet.from_file(path)
    return Anonymizer(profiles, KEYS, today=lambda: date(2024, 6, 1)), profiles.resolve("agent")


@st.composite
def text_and_findings(draw: st.DrawFn) -> tuple[str, list[Finding]]:
    text = draw(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=80))
    cuts = sorted(draw(st.sets(st.integers(0, len(text)), max_size=12)))
    findings = []
    # Consecutive cut pairs become spans: sorted, non-overlapping, adjacent or apart, at the edges.
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        if start < end:
            findings.append(Finding(draw(st.sampled_from(TYPES)), start, end, 1.0, "pattern"))
    return text, findings


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=text_and_findings(), subject=st.none() | st.sampled_from(["s1", "s2"]))
def test_mask_text_items_index_the_replacements_and_keep_the_rest(
    mixed: tuple[Anonymizer, Profile], case: tuple[str, list[Finding]], subject: str | None
) -> None:
    anon, profile = mixed
    text, findings = case
    masked = anon.mask_text(text, findings, profile, subject=subject)
    assert len(masked.items) == len(findings)
    prev_old, prev_new = 0, 0
    for item, f in zip(masked.items, findings, strict=True):
        assert (item.type, item.start, item.end) == (f.type, f.start, f.end)
        assert item.operator == profile.operator_for(f.type).name
        # The text between replacements is the original text between findings.
        assert masked.text[prev_new : item.new_start] == text[prev_old : item.start]
        expected = anon.mask_value(text[f.start : f.end], f.type, profile, subject=subject)
        assert masked.text[item.new_start : item.new_end] == expected
        prev_old, prev_new = item.end, item.new_end
    assert masked.text[prev_new:] == text[prev_old:]


@given(
    value=st.text(max_size=40),
    keep_first=st.integers(0, 8),
    keep_last=st.integers(0, 8),
)
def test_partial_keeps_shape_and_never_more_than_allowed(value: str, keep_first: int, keep_last: int) -> None:
    out = PartialOperator({"keep_first": keep_first, "keep_last": keep_last}).apply(value, "PHONE", CTX)
    assert len(out) == len(value)
    alnum = [i for i, c in enumerate(value) if c.isalnum()]
    for i, (a, b) in enumerate(zip(value, out, strict=True)):
        if i not in alnum:
            assert a == b
    shown = sum(1 for i in alnum if out[i] == value[i])
    limit = keep_first + keep_last if keep_first + keep_last < len(alnum) else len(alnum) // 2
    assert shown <= limit


digit_strings = st.text(alphabet="0123456789", min_size=6, max_size=40)


@settings(deadline=None)
@given(digits=digit_strings, sep=st.sampled_from(["", " ", "-"]), keep=st.integers(0, 4))
def test_fpe_round_trips_and_keeps_separators(digits: str, sep: str, keep: int) -> None:
    value = sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    op = FpeOperator({"keep_last": keep})
    out = op.apply(value, "BANK_CARD", CTX)
    assert len(out) == len(value)
    for a, b in zip(value, out, strict=True):
        assert b.isdigit() or b == "*" if a.isdigit() else a == b
    if "*" in out:  # too few digits between the kept ones for FF3-1: partial fallback
        assert len(digits) - keep < 6
    else:
        assert op.decrypt(out, "BANK_CARD", CTX) == value


@given(value=st.text(min_size=1, max_size=60), entity_type=st.sampled_from(TYPES))
def test_token_round_trips(value: str, entity_type: str) -> None:
    token = TokenOperator().apply(value, entity_type, CTX)
    assert detokenize(token, KEYS) == (entity_type, value)


@given(digits=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), data=st.data())
def test_pseudonym_ignores_separators_and_country_code(digits: str, data: st.DataObject) -> None:
    spaced = "".join(c + data.draw(st.sampled_from(["", " ", "-", ". "])) for c in digits)
    prefix = data.draw(st.sampled_from(["", "+86 ", "0086-", "86"]))
    op = PseudonymOperator()
    assert op.digest(prefix + spaced, "CN_MOBILE", CTX) == op.digest(digits, "CN_MOBILE", CTX)


@given(
    born=st.dates(min_value=date(1900, 2, 1), max_value=date(2099, 11, 30)),
    subject=st.text(min_size=1, max_size=20),
    form=st.sampled_from(
        ["{y:04d}-{m:02d}-{d:02d}", "{y}/{m}/{d}", "{y}年{m}月{d}日", "{d:02d}.{m:02d}.{y}"]
    ),
)
def test_dateshift_moves_by_the_subject_offset_in_the_same_form(born: date, subject: str, form: str) -> None:
    value = form.format(y=born.year, m=born.month, d=born.day)
    ctx = OperatorContext(KEYS, subject=subject)
    out = DateShiftOperator().apply(value, "DATE_OF_BIRTH", ctx)
    shifted = born + timedelta(days=subject_offset(KEYS.pseudonym_key, subject, 30))
    if "{m}" in form and born.month > 9 and born.day > 9:
        form = form.replace("{m}", "{m:02d}").replace("{d}", "{d:02d}")  # 12/25 reads as zero-padded
    assert out == form.format(y=shifted.year, m=shifted.month, d=shifted.day)
    parsed = parse_date(out, day_first=True)
    assert parsed is not None and parsed.value == shifted
