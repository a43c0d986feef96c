"""appliance.masking.corpus: gold spans are right, negatives are really negative, scoring adds up.

The corpus is what every accuracy figure of the masking engine rests on, so these tests check the gold
labels independently of how they were made: each span's text is re-validated, the unlabelled rest of
each message is scanned for anything a checksum would accept, and a tiny regex detector must score
perfectly on the entity type it can prove.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest
from stdnum import luhn as std_luhn

from appliance.masking import corpus as C
from appliance.masking import validators as v
from appliance.masking.entities import EntityType, Finding
from appliance.masking.errors import MaskingError

N = 1500


@pytest.fixture(scope="module")
def dev() -> list[C.LabelledMessage]:
    return C.generate_corpus(N, 20240501, family="dev")


@pytest.fixture(scope="module")
def heldout() -> list[C.LabelledMessage]:
    return C.generate_corpus(N, 20240501, family="heldout")


@pytest.fixture(scope="module", params=["dev", "heldout"])
def corpus(request: pytest.FixtureRequest, dev, heldout) -> list[C.LabelledMessage]:
    return dev if request.param == "dev" else heldout


def test_spans_lie_inside_the_text_and_do_not_overlap(corpus) -> None:
    for m in corpus:
        previous_end = 0
        for entity_type, start, end in sorted(m.spans, key=lambda s: s[1]):
            assert entity_type in {t.value for t in EntityType}
            assert 0 <= start < end <= len(m.text), m
            assert start >= previous_end, f"overlapping spans in {m}"
            previous_end = end


def test_every_span_passes_its_validator(corpus) -> None:
    checked = Counter()
    for m in corpus:
        for entity_type, start, end in m.spans:
            assert v.check(entity_type, m.text[start:end]), (entity_type, m.text[start:end], m.template)
            checked[entity_type] += 1
    assert all(checked[t] > 0 for t in v.CHECKSUM_TYPES)


_WORDISH = re.compile(r"[0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")


def test_spans_cover_whole_tokens(corpus) -> None:
    """No span stops inside a number: the character on either side is no letter or digit (names and
    addresses excepted, they sit between CJK characters)."""
    for m in corpus:
        for entity_type, start, end in m.spans:
            if entity_type in (EntityType.PERSON, EntityType.ADDRESS):
                continue
            before = m.text[start - 1] if start else " "
            after = m.text[end] if end < len(m.text) else " "
            assert not _WORDISH.match(before) and not _WORDISH.match(after), (m.text, entity_type)


_TITLE_BEFORE = re.compile(r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.? $")


def test_english_names_are_labelled_without_their_title(corpus) -> None:
    """A title stays outside the span: "Dr. Jane Doe" is labelled "Jane Doe" (the NER and Presidio
    convention); suffixes ("Jr.", "MD") stay in."""
    titled = 0
    for m in corpus:
        for entity_type, start, end in m.spans:
            if entity_type != EntityType.PERSON or not m.text[start:end].isascii():
                continue
            name = m.text[start:end]
            assert not re.match(r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.? ", name), (name, m.text)
            titled += bool(_TITLE_BEFORE.search(m.text[max(0, start - 6) : start]))
    assert titled > 0, "Faker draws titled names: some must have been stripped"


_CANDIDATE = re.compile(r"\+?[0-9A-Za-z][0-9A-Za-z \-·]*[0-9A-Za-z]")


def _unlabelled(m: C.LabelledMessage) -> str:
    folded = m.text.translate({cp: chr(cp - 0xFEE0) for cp in range(0xFF01, 0xFF5F)})  # 1:1 width fold
    chars = list(folded)
    for _, start, end in m.spans:
        chars[start:end] = ["\x00"] * (end - start)
    return "".join(chars)


def test_unlabelled_text_holds_no_checksum_valid_identifier(corpus) -> None:
    """Look-alikes and near misses are labelled as nothing, so nothing outside the gold spans may pass
    a proof-carrying check, whether read as one run or token by token."""
    for m in corpus:
        rest = _unlabelled(m)
        candidates = set(_CANDIDATE.findall(rest)) | set(re.findall(r"[0-9A-Za-z]+", rest))
        for raw in candidates:
            for piece in {raw, *raw.split()}:
                n = v.normalize_digits(piece)
                for fn in (v.cn_resident_id, v.payment_card, v.cn_uscc, v.iban, v.cn_mobile, v.us_itin):
                    assert not fn(n), (fn.__name__, piece, m.text)
                assert not (13 <= len(n) <= 19 and n.isdigit() and std_luhn.is_valid(n)), (piece, m.text)


def test_same_seed_same_corpus() -> None:
    first = C.generate_corpus(200, 7, family="all")
    assert C.generate_corpus(200, 7, family="all") == first
    assert C.generate_corpus(200, 8, family="all") != first


def test_families_are_disjoint_and_each_covers_every_type(dev, heldout) -> None:
    by_family = {f: {t.text for t in C.TEMPLATES if t.family == f} for f in C.FAMILIES}
    assert by_family["dev"] and by_family["heldout"]
    assert not by_family["dev"] & by_family["heldout"]
    assert {m.family for m in dev} == {"dev"} and {m.family for m in heldout} == {"heldout"}
    assert not {m.template for m in dev} & {m.template for m in heldout}
    every = {t.value for t in EntityType}
    for messages in (dev, heldout):
        assert {s[0] for m in messages for s in m.spans} == every


def test_mix_of_languages_and_pii_free_messages(dev) -> None:
    langs = Counter(m.lang for m in dev)
    assert set(langs) == {"zh", "en", "mixed"}
    assert 0.4 < (langs["zh"] + langs["mixed"]) / N < 0.6
    no_pii = sum(not m.spans for m in dev) / N
    assert 0.15 < no_pii < 0.25
    assert all(m.lang == "en" for m in C.generate_corpus(100, 1, lang_mix=0.0))
    assert all(m.lang != "en" for m in C.generate_corpus(100, 1, lang_mix=1.0))
    assert all(not m.spans for m in C.generate_corpus(50, 1, no_pii_share=1.0))


def test_messages_average_about_135_bytes(corpus) -> None:
    average = sum(len(m.text.encode("utf-8")) for m in corpus) / len(corpus)
    assert 110 < average < 165, average


def test_context_words_of_both_kinds_occur(dev) -> None:
    text = "\n".join(m.text for m in dev)
    for word in ("身份证", "卡号", "手机", "card", "SSN", "IBAN", "passport", "born on"):
        assert word in text, word
    negative = [m for m in dev if re.search(r"订单|工单|快递单号|order|[Tt]icket|[Tt]racking", m.text)]
    assert len(negative) > N // 10


def test_near_misses_appear_in_positive_context(dev) -> None:
    """The hard negatives: an invalid ID right after 身份证号, an invalid card after "card"."""
    templates = {t.id: t for t in C.TEMPLATES}
    near_miss = [m for m in dev if "{!" in templates[m.template].text]
    assert len(near_miss) > N // 30
    assert any("身份证号" in templates[m.template].text for m in near_miss)


def test_jsonl_round_trip(tmp_path: Path, dev) -> None:
    path = tmp_path / "corpus.jsonl"
    C.to_jsonl(dev[:300], path)
    assert C.from_jsonl(path) == dev[:300]
    assert "身份证" in path.read_text("utf-8"), "non-ASCII stays readable"


def test_from_jsonl_refuses_spans_outside_the_text(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "abc", "spans": [["EMAIL", 1, 9]]}\n', "utf-8")
    with pytest.raises(MaskingError, match="outside"):
        C.from_jsonl(path)


def test_unknown_family_and_bad_shares_are_refused() -> None:
    with pytest.raises(MaskingError, match="heldout"):
        C.generate_corpus(1, 1, family="test")
    with pytest.raises(MaskingError, match="between 0 and 1"):
        C.generate_corpus(1, 1, lang_mix=1.5)


# ------------------------------------------------------------------------------------------------------
# evaluate


def _gold(corpus):
    spans = {m.text: m.spans for m in corpus}
    return lambda text: spans[text]


def test_perfect_detector_scores_one(dev) -> None:
    report = C.evaluate(_gold(dev), dev)
    total = sum(len(m.spans) for m in dev)
    assert report["ALL"]["tp"] == total and report["ALL"]["fp"] == 0 and report["ALL"]["fn"] == 0
    for entity_type in EntityType:
        assert report[entity_type]["f1"] == 1.0


def test_silent_detector_has_zero_recall(dev) -> None:
    report = C.evaluate(lambda text: [], dev)
    assert report["ALL"]["recall"] == 0.0 and report["ALL"]["precision"] == 1.0
    assert report[EntityType.BANK_CARD]["fn"] == sum(s[0] == "BANK_CARD" for m in dev for s in m.spans)


def test_boundary_errors_count_only_in_exact_mode(dev) -> None:
    gold = _gold(dev)

    def short_by_one(text: str):
        return [(t, s, e - 1) for t, s, e in gold(text)]

    exact = C.evaluate(short_by_one, dev)
    overlap = C.evaluate(short_by_one, dev, match="overlap")
    assert exact["ALL"]["tp"] == 0
    assert overlap["ALL"]["tp"] == sum(len(m.spans) for m in dev) and overlap["ALL"]["fp"] == 0


def test_wrong_type_is_a_false_positive_and_a_miss() -> None:
    message = C.LabelledMessage("card 4111111111111111", (("BANK_CARD", 5, 21),))
    report = C.evaluate(lambda text: [("IBAN", 5, 21), ("MADE_UP", 0, 4)], [message])
    assert report["IBAN"]["fp"] == 1 and report["BANK_CARD"]["fn"] == 1
    assert report["MADE_UP"]["fp"] == 1, "types a detector invents are reported, not dropped"
    assert report["ALL"] == {"tp": 0, "fp": 2, "fn": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_overlap_mode_pairs_one_prediction_with_one_gold_span() -> None:
    message = C.LabelledMessage("aaaa bbbb", (("PERSON", 0, 4), ("PERSON", 5, 9)))
    report = C.evaluate(lambda text: [("PERSON", 0, 9)], [message], match="overlap")
    assert report["PERSON"]["tp"] == 1 and report["PERSON"]["fn"] == 1
    report = C.evaluate(lambda text: [("PERSON", 0, 2), ("PERSON", 2, 4)], [message], match="overlap")
    assert report["PERSON"]["tp"] == 1 and report["PERSON"]["fp"] == 1


def test_findings_are_accepted_as_predictions() -> None:
    message = C.LabelledMessage("x 13812345678", (("CN_MOBILE", 2, 13),))
    report = C.evaluate(lambda text: [Finding("CN_MOBILE", 2, 13, 0.9, "cn-mobile-prefix")], [message])
    assert report["CN_MOBILE"]["tp"] == 1 and report["CN_MOBILE"]["precision"] == 1.0


def test_unknown_match_mode_is_refused(dev) -> None:
    with pytest.raises(MaskingError, match="overlap"):
        C.evaluate(lambda text: [], dev[:1], match="fuzzy")


_ALNUM = "0-9A-Za-z\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
_CARD_RUN = re.compile(rf"(?<![{_ALNUM}])[0-9０-９](?:[0-9０-９]|[ \-](?=[0-9０-９])){{11,22}}(?![{_ALNUM}])")


def test_a_checksum_only_card_detector_is_precise_on_both_families(dev, heldout) -> None:
    """Digit runs + Luhn + IIN, no context at all: every look-alike and near miss in the corpus fails the
    checksum, so precision is perfect; recall shows the corpus's card formats are all findable."""

    def detect(text: str):
        return [
            ("BANK_CARD", m.start(), m.end())
            for m in _CARD_RUN.finditer(text)
            if v.payment_card(v.normalize_digits(m.group()))
        ]

    for messages in (dev, heldout):
        card = C.evaluate(detect, messages)[EntityType.BANK_CARD]
        assert card["fp"] == 0 and card["precision"] == 1.0
        assert card["recall"] > 0.95, card


def test_corpus_is_not_just_one_template(dev) -> None:
    used = Counter(m.template for m in dev)
    assert len(used) > 40
    assert max(used.values()) < N // 15
    rng = random.Random(0)
    assert len({rng.choice(dev).text for _ in range(200)}) > 150, "messages are not repeated"
