"""The masking engine's speed and accuracy, measured side by side with its peers in one run.

    python bench/bench_masking.py [--messages 20000] [--rounds 5] [--quick]

Targets (issue: masking engine):
  speed     >= 50,000 messages/s per core on mixed Chinese/English customer-service chat (~135 bytes
            each), every recognizer and validator on; ratio to Presidio (expect hundreds) and to a
            plain `re` masker (>= 2x)
  accuracy  precision/recall per entity type on a generated bilingual set (checksum-valid and
            checksum-invalid look-alikes) and on Presidio's own test sentences; F1 above Presidio's on
            every type both support

Peers (bench/peers_masking.py), on the same messages:
  re        a dozen regexes applied in turn with re.sub to type tags, no validation
  presidio  presidio-analyzer + presidio-anonymizer (defaults, English, the small spaCy model),
            timed on a subsample and its rate extrapolated (it takes milliseconds a message)

Ours is ``Analyzer.default().analyze`` + ``Anonymizer.mask_text`` with the shipped ``agent`` profile,
timed with the scanner the picker chose (compiled when ``ext/`` is built) and again with an Analyzer
over the pure-Python twin scanner (same lexicon; the two must agree on every message). Everything runs
in one process on one core, one thing at a time. Each throughput is the median of --rounds passes over
the whole corpus. Accuracy: exact match of type and span is the headline (a span one character short
leaks that character), overlap F1 next to it tells boundary errors from misses. Prints tables; writes
the same figures as JSON to bench/out/masking.json.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # run from a checkout, installed or not
sys.path.insert(0, str(HERE))

from peers_masking import (  # noqa: E402
    PRESIDIO_TO_CANONICAL,
    PresidioPeer,
    ReMasker,
    Span,
    comparison_type,
    presidio_canonical,
)

from appliance.masking import _kernel, _lexicon, _scan_py  # noqa: E402
from appliance.masking.analyzer import Analyzer  # noqa: E402
from appliance.masking.anonymizer import Anonymizer  # noqa: E402
from appliance.masking.corpus import generate_corpus, pair_overlaps  # noqa: E402
from appliance.masking.entities import ENTITY_TYPES  # noqa: E402
from appliance.masking.operators.base import MaskingKeys  # noqa: E402
from appliance.masking.profiles import ProfileSet  # noqa: E402

PROFILES = ROOT / "config" / "masking" / "profiles.yaml"
PRESIDIO_SENTENCES = ROOT / "tests" / "vectors" / "masking" / "presidio_sentences.jsonl"
OUT = HERE / "out" / "masking.json"
SPEED_SEED = 20261124
ACCURACY_SEED = {"dev": 1101, "heldout": 2202}
MASTER = bytes(range(32))  # a fixed bench key: pseudonyms cost the same whatever the key


# -- ours -------------------------------------------------------------------------------------------
def twin_analyzer() -> Analyzer:
    """An Analyzer over the pure-Python twin scanner, whatever the picker chose for this process."""
    return Analyzer(_scan_py.Scanner(**_lexicon.scanner_arguments(_kernel.TYPES)))


def our_masker(analyzer: Analyzer) -> tuple[Callable[[str], str], Callable[[str], list[Span]]]:
    """(mask, findings) for ours: every recognizer and validator on, the shipped ``agent`` profile."""
    profiles = ProfileSet.from_file(PROFILES)
    profile = profiles.resolve("agent")
    anonymizer = Anonymizer(profiles, MaskingKeys.derive(MASTER, "bench"))
    analyze, mask_text = analyzer.analyze, anonymizer.mask_text

    def mask(text: str) -> str:
        return mask_text(text, analyze(text), profile).text

    def findings(text: str) -> list[Span]:
        return [(f.type, f.start, f.end) for f in analyze(text)]

    return mask, findings


# -- timing -----------------------------------------------------------------------------------------
def rates(mask: Callable[[str], Any], texts: Sequence[str], rounds: int) -> list[float]:
    """Messages per second of each round over all of ``texts``, after one untimed warm-up pass (the
    first pass over fresh text ran ~25% slower than the rest: allocator and cache warm-up)."""
    for t in texts:
        mask(t)
    out = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        for t in texts:
            mask(t)
        out.append(len(texts) / (time.perf_counter() - start))
    return out


# -- accuracy ---------------------------------------------------------------------------------------
@dataclass
class Counts:
    """tp/fp/fn of one type, with ``appliance.masking.corpus.evaluate``'s conventions: a type nobody
    claimed has precision 1.0, one with no gold spans recall 1.0 (read them with their counts)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


Fold = Callable[[str], str | None]


def score(
    gold: Sequence[Iterable[Span]],
    pred: Sequence[Iterable[Span]],
    fold: Fold,
    scope: Sequence[frozenset[str]] | None = None,
    match: str = "exact",
) -> dict[str, Counts]:
    """Per-type counts; with ``match="exact"`` a hit is the same (folded) type and exactly the same span.

    ``fold`` renames types (to comparison types) or drops them (None). ``scope[i]``, when given, is
    the set of folded types message i's labels are complete for: predictions of other types are
    not counted, as no one said whether they are right.
    """
    counts: dict[str, Counts] = {}
    for i, (g_spans, p_spans) in enumerate(zip(gold, pred, strict=True)):
        g = {(t, s, e) for t0, s, e in g_spans if (t := fold(t0)) is not None}
        p = {(t, s, e) for t0, s, e in p_spans if (t := fold(t0)) is not None}
        if scope is not None:
            g = {x for x in g if x[0] in scope[i]}
            p = {x for x in p if x[0] in scope[i]}
        if match == "exact":
            hits, false, missed = g & p, p - g, g - p
        else:
            hits, false, missed = pair_overlaps(g, p)
        for t, *_ in hits:
            counts.setdefault(t, Counts()).tp += 1
        for t, *_ in false:
            counts.setdefault(t, Counts()).fp += 1
        for t, *_ in missed:
            counts.setdefault(t, Counts()).fn += 1
    return counts


def micro(counts: dict[str, Counts], types: Iterable[str]) -> Counts:
    total = Counts()
    for t in types:
        c = counts.get(t, Counts())
        total.tp, total.fp, total.fn = total.tp + c.tp, total.fp + c.fp, total.fn + c.fn
    return total


@dataclass
class System:
    """One system under test: its findings per message and the (folded) types it claims to detect."""

    name: str
    preds: list[list[Span]]
    supports: frozenset[str]
    counts: dict[str, Counts] = field(default_factory=dict)
    overlap: dict[str, Counts] = field(default_factory=dict)


_NA = f"{'–':>6} {'–':>6} {'–':>6} {'–':>6}"


def _cell(c: Counts | None, o: Counts | None) -> str:
    if c is None or o is None:
        return _NA
    return f"{c.precision:6.3f} {c.recall:6.3f} {c.f1:6.3f} {o.f1:6.3f}"


def accuracy_table(
    title: str,
    gold: Sequence[Iterable[Span]],
    systems: list[System],
    fold: Fold,
    scope: Sequence[frozenset[str]] | None = None,
    texts: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Print per-type P/R/F1 (exact) and F1 (overlap) of each system; flag the types where ours' exact
    F1 is below Presidio's. Types a system does not have are shown as '–', not as zeros.

    With ``texts``, the returned dict also holds a few of ours' misses and false positives per type
    (JSON only): the detector's to-do list.
    """
    gold_n: dict[str, int] = {}
    for i, spans in enumerate(gold):
        for t0, _, _ in spans:
            t = fold(t0)
            if t is not None and (scope is None or t in scope[i]):
                gold_n[t] = gold_n.get(t, 0) + 1
    for s in systems:
        s.counts = score(gold, s.preds, fold, scope)
        s.overlap = score(gold, s.preds, fold, scope, match="overlap")
    types = sorted(set(gold_n) | {t for s in systems for t in s.counts})
    print(f"\n{title}")
    head = "".join(f" | {s.name + ' P':>13} {'R':>6} {'F1':>6} {'F1ov':>6}" for s in systems)
    print(f"  {'type':<15} {'gold':>5}{head} | flag")
    ours, presidio = systems[0], next((s for s in systems if s.name == "presidio"), None)
    losses = []
    rows: dict[str, Any] = {}
    for t in types:
        cells, entry = [], {"gold": gold_n.get(t, 0)}
        for s in systems:
            c, o = (
                (s.counts.get(t, Counts()), s.overlap.get(t, Counts())) if t in s.supports else (None, None)
            )
            cells.append(_cell(c, o))
            entry[s.name] = None if c is None or o is None else {**c.as_dict(), "f1_overlap": round(o.f1, 4)}
        flag = ""
        if presidio is not None and t in presidio.supports and t in ours.supports:
            mine, theirs = ours.counts.get(t, Counts()).f1, presidio.counts.get(t, Counts()).f1
            if mine < theirs:
                flag = "LOSS vs presidio"
                losses.append(t)
            elif mine == theirs:
                flag = "tie"
        entry["flag"] = flag
        rows[t] = entry
        print(f"  {t:<15} {gold_n.get(t, 0):>5}" + "".join(f" | {c:>27}" for c in cells) + f" | {flag}")
    overall = {}
    cells = []
    for s in systems:
        own = [t for t in types if t in s.supports]
        c, o = micro(s.counts, own), micro(s.overlap, own)
        overall[s.name] = {**c.as_dict(), "f1_overlap": round(o.f1, 4)}
        cells.append(_cell(c, o))
    print(f"  {'micro, own':<15} {sum(gold_n.values()):>5}" + "".join(f" | {c:>27}" for c in cells))
    out: dict[str, Any] = {"types": rows, "micro": overall, "losses_vs_presidio": losses}
    if texts is not None:
        out["ours_errors"] = error_examples(texts, gold, ours.preds, fold, scope)
    return out


def error_examples(
    texts: Sequence[str],
    gold: Sequence[Iterable[Span]],
    pred: Sequence[Iterable[Span]],
    fold: Fold,
    scope: Sequence[frozenset[str]] | None,
    per_type: int = 8,
) -> dict[str, dict[str, list[str]]]:
    """Up to ``per_type`` missed and falsely reported values per type, each with its message."""
    out: dict[str, dict[str, list[str]]] = {}
    for i, (text, g_spans, p_spans) in enumerate(zip(texts, gold, pred, strict=True)):
        g = {(t, s, e) for t0, s, e in g_spans if (t := fold(t0)) is not None}
        p = {(t, s, e) for t0, s, e in p_spans if (t := fold(t0)) is not None}
        if scope is not None:
            g = {x for x in g if x[0] in scope[i]}
            p = {x for x in p if x[0] in scope[i]}
        for kind, spans in (("missed", g - p), ("false", p - g)):
            for t, s, e in sorted(spans, key=lambda x: x[1]):
                bucket = out.setdefault(t, {"missed": [], "false": []})[kind]
                if len(bucket) < per_type:
                    bucket.append(f"{text[s:e]!r} in {text!r}")
    return out


def load_presidio_sentences() -> list[dict[str, Any]]:
    with open(PRESIDIO_SENTENCES, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def presidio_fold(presidio_type: str) -> str | None:
    """Gold labels of Presidio's sentences, in comparison types (their own names first made canonical)."""
    t = presidio_canonical(presidio_type)
    return None if t is None else comparison_type(t)


# -- the run ----------------------------------------------------------------------------------------
def row(name: str, value: float, unit: str, note: str = "") -> None:
    print(f"  {name:<44} {value:>12,.0f} {unit:<11} {note}")


def ratio(label: str, ours: float, peer: float) -> float:
    r = ours / peer
    print(f"  ratio {label:<38} {r:>10,.1f}x")
    return r


def pin_to_one_core() -> int | None:
    """Pin this process to one CPU: "per core" figures, and no BLAS/spaCy threads helping Presidio."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return core


def make_presidio() -> tuple[PresidioPeer | None, str]:
    try:
        return PresidioPeer(), ""
    except RuntimeError as exc:
        return None, str(exc)


@click.command()
@click.option("--messages", default=20_000, show_default=True, help="Messages in the speed corpus.")
@click.option("--rounds", default=5, show_default=True, help="Timed passes; medians are reported.")
@click.option("--presidio-messages", default=300, show_default=True, help="Presidio's speed subsample.")
@click.option("--presidio-rounds", default=3, show_default=True, help="Timed passes for Presidio.")
@click.option("--accuracy-messages", default=1500, show_default=True, help="Messages per corpus family.")
@click.option("--quick", is_flag=True, help="Small sizes, to check the script runs.")
@click.option("--no-presidio", is_flag=True, help="Leave Presidio out (it is reported as skipped).")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=str(OUT), show_default=True)
def main(
    messages: int,
    rounds: int,
    presidio_messages: int,
    presidio_rounds: int,
    accuracy_messages: int,
    quick: bool,
    no_presidio: bool,
    out_path: str,
) -> None:
    if quick:
        messages, rounds, presidio_messages, presidio_rounds, accuracy_messages = 2_000, 3, 40, 2, 200
    core = pin_to_one_core()
    texts = [m.text for m in generate_corpus(messages, SPEED_SEED, family="all")]
    result: dict[str, Any] = {
        "machine": {
            "cores": os.cpu_count(),
            "arch": platform.machine(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "kernel": _kernel.IMPLEMENTATION,
        "pinned_core": core,
    }
    avg_bytes = statistics.fmean(len(t.encode("utf-8")) for t in texts)
    avg_chars = statistics.fmean(len(t) for t in texts)
    cjk = sum(any("\u4e00" <= ch <= "\u9fff" for ch in t) for t in texts) / len(texts)
    pinned = f"pinned to core {core}" if core is not None else "not pinned"
    print(
        f"masking benchmarks (one process, {pinned}; scanner kernel: {_kernel.IMPLEMENTATION}"
        f"{' (compiled)' if _kernel.IMPLEMENTATION == 'c' else ' (NOT compiled: build ext/ first)'})"
    )
    print(
        f"corpus: {len(texts):,} generated chat messages (seed {SPEED_SEED}), {avg_bytes:.1f} bytes / "
        f"{avg_chars:.1f} characters on average, {cjk:.0%} with Chinese"
    )
    result["corpus"] = {"messages": len(texts), "avg_bytes": avg_bytes, "avg_chars": avg_chars, "cjk": cjk}

    presidio, why_not = (None, "--no-presidio given") if no_presidio else make_presidio()
    analyzer = Analyzer.default()
    our_mask, our_findings = our_masker(analyzer)
    twin_mask, twin_findings = our_masker(twin_analyzer())
    re_masker = ReMasker()
    check = texts[: min(len(texts), 2_000)]
    differ = sum(our_findings(t) != twin_findings(t) for t in check)
    print(f"compiled and twin scanners {'agree' if not differ else 'DISAGREE'} on {len(check):,} messages")
    result["twin_disagreements"] = differ

    # -- speed ------------------------------------------------------------------------------------
    print(f"\n[speed] mask every message (analyze + mask_text, profile agent); median of {rounds} rounds")
    ours = rates(our_mask, texts, rounds)
    row(
        f"ours, kernel {_kernel.IMPLEMENTATION} ({len(texts):,} msgs)",
        statistics.median(ours),
        "msgs/s",
        "target >= 50,000",
    )
    analyze_only = rates(analyzer.analyze, texts, rounds)
    row("  of which analyze alone", statistics.median(analyze_only), "msgs/s")
    twin = rates(twin_mask, texts, rounds)
    row("ours, pure-Python twin scanner", statistics.median(twin), "msgs/s")
    plain = rates(re_masker.mask, texts, rounds)
    row(f"re masker ({len(re_masker.rules)} regexes)", statistics.median(plain), "msgs/s")
    speed: dict[str, Any] = {
        "ours": {"rates": ours, "median": statistics.median(ours)},
        "ours_analyze_only": {"rates": analyze_only, "median": statistics.median(analyze_only)},
        "ours_twin": {"rates": twin, "median": statistics.median(twin)},
        "re": {"rates": plain, "median": statistics.median(plain)},
    }
    if presidio is not None:
        sub = texts[:presidio_messages]
        pres = rates(presidio.mask, sub, presidio_rounds)
        row(
            f"presidio ({len(sub):,}-msg subsample, {presidio_rounds} rounds)",
            statistics.median(pres),
            "msgs/s",
            "extrapolated",
        )
        speed["presidio"] = {"rates": pres, "median": statistics.median(pres), "messages": len(sub)}
    else:
        print(f"  presidio: SKIPPED ({why_not})")
    speed["ratio_ours_re"] = ratio("ours/re", speed["ours"]["median"], speed["re"]["median"])
    speed["ratio_ours_twin"] = ratio("ours/twin", speed["ours"]["median"], speed["ours_twin"]["median"])
    speed["ratio_twin_re"] = ratio("twin/re", speed["ours_twin"]["median"], speed["re"]["median"])
    if presidio is not None:
        speed["ratio_ours_presidio"] = ratio(
            "ours/presidio", speed["ours"]["median"], speed["presidio"]["median"]
        )
    result["speed"] = speed

    # -- accuracy ---------------------------------------------------------------------------------
    print("\n[accuracy] exact type + span; P / R / F1; '–' = the system has no such type")
    ours_types = frozenset(ENTITY_TYPES)
    ours_cmp = frozenset(comparison_type(t) for t in ours_types)
    re_cmp = frozenset(comparison_type(t) for t in re_masker.types)
    presidio_cmp = frozenset(comparison_type(t) for t in PRESIDIO_TO_CANONICAL.values())
    accuracy: dict[str, Any] = {}
    for family, seed in ACCURACY_SEED.items():
        corpus = generate_corpus(accuracy_messages, seed, family=family)
        gold = [list(m.spans) for m in corpus]
        t_ours = [our_findings(m.text) for m in corpus]
        t_re = [re_masker.findings(m.text) for m in corpus]
        native = [System("ours", t_ours, ours_types), System("re", t_re, re_masker.types)]
        block = {
            "messages": len(corpus),
            "canonical": accuracy_table(
                f"generated bilingual, family {family!r} ({len(corpus):,} msgs, seed {seed}): "
                "canonical types",
                gold,
                native,
                lambda t: t,
                texts=[m.text for m in corpus],
            ),
        }
        compared = [System("ours", t_ours, ours_cmp), System("re", t_re, re_cmp)]
        if presidio is not None:
            compared.append(
                System("presidio", [list(presidio.run(m.text).spans) for m in corpus], presidio_cmp)
            )
        block["compared"] = accuracy_table(
            f"generated bilingual, family {family!r}: comparison types (phones and passports folded)",
            gold,
            compared,
            comparison_type,
            texts=[m.text for m in corpus],
        )
        accuracy[family] = block

    sentences = load_presidio_sentences()
    gold_p = [[(t, s, e) for t, s, e in x["spans"]] for x in sentences]
    scope = [frozenset(f for t in x["types"] if (f := presidio_fold(t)) is not None) for x in sentences]
    p_ours = [our_findings(x["text"]) for x in sentences]
    p_re = [re_masker.findings(x["text"]) for x in sentences]
    sys_p = [System("ours", p_ours, ours_cmp), System("re", p_re, re_cmp)]
    if presidio is not None:
        sys_p.append(
            System("presidio", [list(presidio.run(x["text"]).spans) for x in sentences], presidio_cmp)
        )

    def fold_any(t: str) -> str | None:  # gold is in Presidio's names, predictions in canonical ones
        if t in PRESIDIO_TO_CANONICAL:
            return presidio_fold(t)
        return comparison_type(t) if t in ours_types else None

    accuracy["presidio_sentences"] = {
        "messages": len(sentences),
        "compared": accuracy_table(
            f"Presidio's own test sentences ({len(sentences)}; each scored only for the types "
            "it is labelled for)",
            gold_p,
            sys_p,
            fold_any,
            scope,
            texts=[x["text"] for x in sentences],
        ),
    }
    result["accuracy"] = accuracy
    if presidio is None:
        result["presidio_skipped"] = why_not

    losses = sorted({t for b in accuracy.values() for t in b["compared"]["losses_vs_presidio"]})
    print(f"\ntypes where ours' F1 is below Presidio's (any set): {', '.join(losses) or 'none'}")
    result["losses_vs_presidio"] = losses
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    Path(out_path).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"written: {out_path}")


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # spaCy: the 3.6 model under spaCy 3.8
        main()
