"""Demo data: every entity type appears, valid and invalid; look-alikes; a churn story in the events."""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from appliance.masking import validators
from appliance.masking.entities import ENTITY_TYPES
from appliance.store import RecordInvalid, Store, load_demo

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
CHECKSUMMED = ("CN_RESIDENT_ID", "BANK_CARD", "IBAN", "US_SSN")
# Candidate spans in message text: digit runs with the separators people type, and IBAN-shaped runs.
_NUMBER = re.compile(r"(?<![\dA-Za-z])\d[\d \-]{7,28}[\dXx](?![\dA-Za-z])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{2,4}){3,9}\b")
_SHAPES = {
    "CN_RESIDENT_ID": lambda s: len(s) == 18,
    "BANK_CARD": lambda s: 13 <= len(s) <= 19 and s.isdigit(),
    "US_SSN": lambda s: len(s) == 9 and s.isdigit(),
}


def _candidates(text: str) -> list[tuple[str, str]]:
    """(entity type, compact span) pairs a detector would consider in ``text``."""
    text = text.translate({cp: chr(cp - 0xFEE0) for cp in range(0xFF10, 0xFF1A)})
    out = []
    for span in _NUMBER.findall(text):
        compact = validators.normalize_digits(span)
        out += [(t, compact) for t, fits in _SHAPES.items() if fits(compact)]
    out += [("IBAN", span.replace(" ", "")) for span in _IBAN.findall(text)]
    return out


@pytest.fixture
def demo(store):
    report = load_demo(store, 60, seed=7, now=NOW)
    return store, report


def test_every_entity_type_appears_valid_and_invalid(demo):
    store, report = demo
    assert report.customers == store.count_customers() == 60
    customers = store.list_customers(limit=1000)
    entities = store.schema.entities()
    present = {entities[f] for c in customers for f in c if f in entities}
    assert ENTITY_TYPES | {"free_text"} <= present
    assert {c["region"] for c in customers} >= {"CN", "US", "EU", "GB", "HK", "SG"}
    assert {c["preferred_language"] for c in customers} == {"zh", "en"}

    seen: dict[str, Counter[bool]] = {t: Counter() for t in CHECKSUMMED}
    for c in customers:
        for field, entity in entities.items():
            if entity in seen and field in c:
                seen[entity][validators.check(entity, str(c[field]))] += 1
    texts = [m.text for c in customers for tr in store.transcripts_for(c["id"]) for m in tr.messages]
    assert report.messages == len(texts) and report.transcripts == store.count_transcripts()
    for text in texts:
        for entity, span in _candidates(text):
            seen[entity][validators.check(entity, span)] += 1
    for entity, counts in seen.items():
        assert counts[True] and counts[False], (entity, counts)

    joined = "\n".join(texts)
    assert re.search("[\u4e00-\u9fff]", joined) and re.search(r"\b(the|my)\b", joined)
    assert re.search(r"[０-９]{11}", joined)  # typed with a Chinese IME
    # Agents only quote look-alikes (order, ticket, tracking, invoice numbers): none may pass a check.
    agent = [
        m.text
        for c in customers
        for tr in store.transcripts_for(c["id"])
        for m in tr.messages
        if m.speaker == "agent"
    ]
    lookalikes = [span for text in agent for span in _candidates(text)]
    assert len(lookalikes) > 10
    assert not [(t, s) for t, s in lookalikes if validators.check(t, s)]


def test_events_tell_a_churn_story_inside_the_window(demo):
    store, report = demo
    kinds: Counter[str] = Counter()
    cancelled = 0
    for c in store.list_customers(limit=1000):
        events = store.events_for(c["id"])
        assert all(NOW - timedelta(days=91) <= e.ts <= NOW for e in events)
        assert [e.ts for e in events] == sorted(e.ts for e in events)
        kinds.update(e.kind for e in events)
        cancelled += any(e.kind == "subscription_cancelled" for e in events)
    assert sum(kinds.values()) == report.events == store.count_events()
    assert report.events > 10 * report.customers
    assert {
        "login",
        "page_view",
        "purchase",
        "complaint",
        "support_contact",
        "subscription_cancelled",
    } <= set(kinds)
    assert kinds["login"] > kinds["purchase"] > kinds["subscription_cancelled"]
    assert 0 < cancelled < report.customers / 2


def test_the_same_seed_gives_the_same_data_and_is_not_loaded_twice(tmp_path):
    def load(name: str) -> list[dict]:
        with Store.create(f"sqlite:///{tmp_path / name}.db", tmp_path / name / "field.keys") as s:
            load_demo(s, 12, seed=3, now=NOW)
            with pytest.raises(RecordInvalid, match="already exists"):
                load_demo(s, 12, seed=3, now=NOW)
            return s.list_customers(limit=100)

    assert load("a") == load("b")


def test_a_few_thousand_customers_load_well_under_30_seconds(tmp_path):
    with Store.create(f"sqlite:///{tmp_path / 'big.db'}", tmp_path / "keys" / "field.keys") as s:
        started = time.monotonic()
        report = load_demo(s, 3000, seed=11)
        elapsed = time.monotonic() - started
        assert s.count_customers() == 3000 and report.transcripts > 500
    assert elapsed < 30, f"demo load took {elapsed:.1f}s"
