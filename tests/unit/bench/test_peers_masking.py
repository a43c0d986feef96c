"""The masking benchmark's peers: the plain ``re`` masker tags what it should, the Presidio type maps
cover what is compared, and Presidio's test sentences are well-formed.

A wrong peer makes every ratio and every F1 in ``bench/bench_masking.py`` wrong without any error, so
the peer gets tests of its own. None of them needs Presidio; the one check against a live Presidio
registry is skipped, with its reason shown, when the bench extras are not installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from appliance.masking.entities import ENTITY_TYPES

ROOT = Path(__file__).resolve().parents[3]
SENTENCES = ROOT / "tests" / "vectors" / "masking" / "presidio_sentences.jsonl"


def _load_peers() -> ModuleType:
    # bench/ is scripts, not a package: load the module by path (registered, as dataclasses require).
    spec = importlib.util.spec_from_file_location("peers_masking", ROOT / "bench" / "peers_masking.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("peers_masking", module)
    spec.loader.exec_module(module)
    return module


peers = _load_peers()


@pytest.fixture(scope="module")
def masker():
    return peers.ReMasker()


# -- the re masker ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, masked",
    [
        ("我的手机13812345678，谢谢", "我的手机<CN_MOBILE>，谢谢"),  # no \b trap next to Chinese
        ("call +86 138 1234 5678 now", "call <CN_MOBILE> now"),
        ("座机010-62345678", "座机<CN_LANDLINE>"),
        ("身份证号11010519491231002X。", "身份证号<CN_RESIDENT_ID>。"),
        ("卡号 6222 0212 3456 7890 123", "卡号 <BANK_CARD>"),
        ("card 4111-1111-1111-1111.", "card <BANK_CARD>."),
        ("mail zhang.san@example.com.cn!", "mail <EMAIL>!"),
        ("ip 192.168.1.1.", "ip <IP_ADDRESS>."),
        ("v6 2001:db8::8a2e:370:7334 ok", "v6 <IP_ADDRESS> ok"),
        ("mac aa:bb:cc:dd:ee:ff", "mac <MAC_ADDRESS>"),
        ("ssn 078-05-1123", "ssn <US_SSN>"),
        ("IBAN DE89 3704 0044 0532 0130 00", "IBAN <IBAN>"),
        ("护照E12345678", "护照<CN_PASSPORT>"),
        ("phone (415) 555-0132 or +1 415 555 0132", "phone <PHONE> or <PHONE>"),
    ],
)
def test_re_masker_tags_each_type(masker, text: str, masked: str) -> None:
    assert masker.mask(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "time 12:34:56, version 1.2.3, std::cout",
        "订单号 20231124000123456789",  # 20 digits: longer than any card, so not a card
        "ip 256.1.1.1 and 192.168.1",
        "tracking 1Z999AA10123456784",
    ],
)
def test_re_masker_leaves_non_entities(masker, text: str) -> None:
    assert masker.mask(text) == text
    assert masker.findings(text) == []


def test_re_masker_does_not_validate(masker) -> None:
    """The baseline is shape only: a Luhn-invalid card and an impossible ID date-check pass as entities."""
    assert masker.mask("4111 1111 1111 1112") == "<BANK_CARD>"
    assert masker.findings("id 110105194912310021") == [("CN_RESIDENT_ID", 3, 21)]  # wrong check char


@pytest.mark.parametrize(
    "text",
    [
        "客户张三，手机13812345678，邮箱a@b.cn，卡4111111111111111，IP 10.0.0.1",
        "SSN 078-05-1123; 座机(021)62345678; IBAN GB29NWBK60161331926819; E12345678",
        "nothing to see here",
    ],
)
def test_re_masker_findings_are_what_mask_replaced(masker, text: str) -> None:
    rebuilt, pos = [], 0
    for entity_type, start, end in masker.findings(text):
        assert pos <= start < end <= len(text)
        rebuilt += [text[pos:start], f"<{entity_type}>"]
        pos = end
    rebuilt.append(text[pos:])
    assert "".join(rebuilt) == masker.mask(text)


def test_re_masker_types_are_canonical(masker) -> None:
    assert masker.types <= ENTITY_TYPES
    assert len(masker.rules) >= 12


# -- type maps --------------------------------------------------------------------------------------
def test_presidio_map_targets_canonical_types() -> None:
    assert set(peers.PRESIDIO_TO_CANONICAL.values()) <= ENTITY_TYPES
    assert not set(peers.PRESIDIO_TO_CANONICAL) & set(peers.PRESIDIO_IGNORED)
    assert peers.presidio_canonical("CREDIT_CARD") == "BANK_CARD"
    assert peers.presidio_canonical("DATE_TIME") is None  # not DATE_OF_BIRTH: see PRESIDIO_IGNORED


def test_comparison_types_fold_phones_and_passports() -> None:
    assert {peers.comparison_type(t) for t in ("CN_MOBILE", "CN_LANDLINE", "PHONE")} == {"PHONE"}
    assert {peers.comparison_type(t) for t in ("CN_PASSPORT", "PASSPORT")} == {"PASSPORT"}
    assert peers.comparison_type("CN_RESIDENT_ID") == "CN_RESIDENT_ID"
    assert set(peers.COMPARISON_FOLD) <= ENTITY_TYPES
    # Every Presidio type we compare lands on a comparison type that ours also produces.
    ours = {peers.comparison_type(t) for t in ENTITY_TYPES}
    for canonical in peers.PRESIDIO_TO_CANONICAL.values():
        assert peers.comparison_type(canonical) in ours


#: Presidio's default English entities (2.2.x: predefined recognizers plus spaCy NER labels).
PRESIDIO_DEFAULT_ENTITIES = (
    "AGE CREDIT_CARD CRYPTO DATE_TIME EMAIL EMAIL_ADDRESS IBAN_CODE ID IP_ADDRESS LOCATION MAC_ADDRESS "
    "MEDICAL_LICENSE NRP ORGANIZATION PERSON PHONE_NUMBER UK_NHS URL US_BANK_NUMBER US_DRIVER_LICENSE "
    "US_ITIN US_PASSPORT US_SSN UUID"
).split()


@pytest.mark.parametrize("presidio_type", PRESIDIO_DEFAULT_ENTITIES)
def test_every_presidio_default_entity_is_mapped_or_ignored(presidio_type: str) -> None:
    assert (presidio_type in peers.PRESIDIO_TO_CANONICAL) != (presidio_type in peers.PRESIDIO_IGNORED)


def test_live_presidio_registry_is_covered() -> None:
    """Against the installed Presidio, when there is one: a new default entity must be mapped or ignored."""
    registry_mod = pytest.importorskip(
        "presidio_analyzer", reason="presidio-analyzer not installed (bench extras: pip install '.[bench]')"
    )
    registry = registry_mod.RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"])
    live = {e for rec in registry.recognizers for e in rec.supported_entities}
    assert live
    unknown = live - set(peers.PRESIDIO_TO_CANONICAL) - set(peers.PRESIDIO_IGNORED)
    assert not unknown, f"map or ignore these Presidio entities in bench/peers_masking.py: {sorted(unknown)}"


# -- Presidio's sentences ---------------------------------------------------------------------------
def _sentences() -> list[dict]:
    with open(SENTENCES, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_presidio_sentences_parse_and_spans_index_the_text() -> None:
    rows = _sentences()
    assert len(rows) > 400
    assert any(r["spans"] for r in rows) and any(not r["spans"] for r in rows)
    for r in rows:
        assert set(r) == {"text", "spans", "types", "source"}
        assert r["text"] and r["source"].startswith("presidio-analyzer/tests/")
        assert r["types"] and all(t in peers.PRESIDIO_TO_CANONICAL for t in r["types"])
        last_end = 0
        for entity_type, start, end in r["spans"]:
            assert entity_type in r["types"]
            assert last_end <= start < end <= len(r["text"]), r
            assert r["text"][start:end].strip() == r["text"][start:end], r  # no blank edges
            last_end = end


def test_presidio_sentences_known_answers() -> None:
    by_text = {r["text"]: r for r in _sentences()}
    r = by_text["my email address is info@presidio.site"]
    assert r["spans"] == [["EMAIL_ADDRESS", 20, 38]]
    assert r["text"][20:38] == "info@presidio.site"
    assert by_text["4012-8888-8888-1882"]["spans"] == []  # Luhn-invalid: upstream expects no card
