"""Checks an outgoing reply against the rules that bind its region, industry, channel and date.

Precedence (one decision per reply, the strongest action among the findings wins)::

    block  >  review  >  rewrite  >  disclaimer  >  allow

- ``block``: the reply must not be sent; ``text`` is returned empty so a careless caller cannot send it.
- ``review``: a human must approve it; ``text`` is the proposed reply (rewrites and disclaimers applied).
- ``rewrite``: matched spans are replaced by the rule's approved phrasing (right to left, overlapping
  spans resolved earliest-then-longest first); a ``disclaimer`` finding appends its text once. Both
  make the decision ``rewrite`` because the text to send differs from the text checked.
- ``allow``: nothing bound, or only ``allow`` (informational) findings; ``text`` is the reply unchanged.

Why this order: a blocked reply is never softened by a rewrite elsewhere in it; a reply a human must
see is not sent just because part of it could be rewritten; appending a disclaimer is the mildest
change. Findings always report every rule that fired, whatever the decision, with offsets into the
text as sent.

Matching: every literal of every rule (phrases, exceptions, disclaimer triggers) is compiled into ONE
:class:`~policy.matcher.PhraseMatcher` here, once; a request normalises the text once and scans it once.
Patterns and claim numbers run over that same normalised text (lower case, simplified Chinese,
separators collapsed; see :mod:`policy.normalize`) and are mapped back to original offsets. An
exception phrase cancels a rule's match it overlaps (最近 cancels 最; 第一次 cancels 第一).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from policy.errors import TextRejected
from policy.library import Context, PolicyLibrary, binds
from policy.matcher import PhraseMatcher
from policy.normalize import Normalized, normalize, normalize_phrase
from policy.rule import DEFAULT_CLAIM_NUMBER, Rule

__all__ = ["DEFAULT_MAX_CHARS", "PRECEDENCE", "Evaluator", "Finding", "ReplyDecision", "decide"]

DEFAULT_MAX_CHARS = 100_000
#: Strongest first. ``disclaimer`` findings yield the decision ``rewrite`` (the text changes).
PRECEDENCE: tuple[str, ...] = ("block", "review", "rewrite", "disclaimer", "allow")
_DECISION = {
    "block": "block",
    "review": "review",
    "rewrite": "rewrite",
    "disclaimer": "rewrite",
    "allow": "allow",
}
_TEXT_KINDS = frozenset({"phrases", "pattern", "claim", "disclaimer"})
_MAX_PATTERN_HITS = 1_000  # per rule and text: a finding list longer than that helps nobody

Decision = Literal["allow", "rewrite", "review", "block"]
_Role = Literal["hit", "except", "trigger", "satisfied"]
Span = tuple[int, int]


@dataclass(frozen=True)
class Finding:
    """One rule that fired on ``text[start:end]`` (original code points)."""

    rule: str
    action: str
    start: int
    end: int
    matched: str
    source: str
    message: str = ""


@dataclass(frozen=True)
class ReplyDecision:
    """What to do with a reply: the decision, the text to send, why, and under which library version."""

    decision: Decision
    text: str
    findings: tuple[Finding, ...]
    policy_version: str

    @property
    def rules(self) -> tuple[str, ...]:
        """The ids of the rules that fired, sorted, once each."""
        return tuple(sorted({f.rule for f in self.findings}))


def decide(actions: Sequence[str]) -> Decision:
    """The decision for a set of finding actions, by :data:`PRECEDENCE`."""
    for action in PRECEDENCE:
        if action in actions:
            return _DECISION[action]  # type: ignore[return-value]
    return "allow"


@dataclass(frozen=True)
class _Compiled:
    """Per-rule artefacts built once: the compiled regex and the claim's number pattern."""

    rule: Rule
    pattern: re.Pattern[str] | None
    number: re.Pattern[str] | None
    window: int
    side: str
    disclaimer_key: str


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class Evaluator:
    """A library compiled for checking replies; build once per library version, share between threads."""

    def __init__(self, library: PolicyLibrary, *, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be positive")
        self.library = library
        self.max_chars = max_chars
        self._compiled: dict[str, _Compiled] = {}
        keys: dict[str, int] = {}
        literals: list[str] = []
        entries: list[list[tuple[str, _Role]]] = []

        def add(phrase: str, rule_id: str, role: _Role) -> None:
            key = normalize_phrase(phrase)
            idx = keys.get(key)
            if idx is None:
                idx = keys[key] = len(literals)
                literals.append(phrase)
                entries.append([])
            if (rule_id, role) not in entries[idx]:
                entries[idx].append((rule_id, role))

        for rule in library.rules:
            if rule.kind not in _TEXT_KINDS:
                continue
            for phrase in rule.phrases or ():
                add(phrase, rule.id, "hit")
            for phrase in rule.exceptions or ():
                add(phrase, rule.id, "except")
            for phrase in rule.triggers or ():
                add(phrase, rule.id, "trigger")
            for phrase in rule.satisfied_by or ([rule.disclaimer] if rule.disclaimer else []):
                add(phrase, rule.id, "satisfied")
            claim = rule.claim
            self._compiled[rule.id] = _Compiled(
                rule=rule,
                pattern=re.compile(rule.pattern, re.IGNORECASE) if rule.pattern else None,
                number=(
                    re.compile(claim.number if claim else DEFAULT_CLAIM_NUMBER, re.IGNORECASE)
                    if rule.kind == "claim"
                    else None
                ),
                window=claim.window if claim else 16,
                side=claim.side if claim else "both",
                disclaimer_key=normalize_phrase(rule.disclaimer) if rule.disclaimer else "",
            )
        self._entries = tuple(tuple(e) for e in entries)
        self._matcher = PhraseMatcher.compile(literals) if literals else None
        self._scopes: dict[tuple[object, ...], tuple[frozenset[str], tuple[str, ...]]] = {}
        self._version = library.version_id  # hashing the library per decision would dominate

    @property
    def policy_version(self) -> str:
        return self._version

    def _rules_for(self, ctx: Context) -> tuple[frozenset[str], tuple[str, ...]]:
        """(rules in scope, those of them that are patterns): per scope, computed once and cached.

        Only pattern rules must run without a phrase hit; every other rule is looked at only when the
        automaton found one of its phrases, so a decision costs what the text matches, not the
        library's size.
        """
        key = (ctx.chain, ctx.industry, ctx.channel, ctx.day)
        found = self._scopes.get(key)
        if found is None:
            ids = frozenset(rid for rid, c in self._compiled.items() if binds(c.rule, ctx))
            patterns = tuple(sorted(rid for rid in ids if self._compiled[rid].rule.kind == "pattern"))
            if len(self._scopes) > 4096:  # bounded: keys come from requests
                self._scopes.clear()
            found = self._scopes[key] = (ids, patterns)
        return found

    def check_reply(
        self, text: str, *, region: str, industry: str, channel: str = "chat", at: datetime | None = None
    ) -> ReplyDecision:
        """Decide on ``text`` for a customer in ``region`` of an ``industry`` enterprise on ``channel``.

        Raises UnknownRegion / UnknownIndustry / UnknownChannel for values the library does not know,
        and TextRejected for a text over ``max_chars`` (judging a truncated text would be unsafe).
        """
        ctx = self.library.context(region=region, industry=industry, channel=channel, at=at)
        if not isinstance(text, str):
            raise TextRejected(f"text must be a string, not {type(text).__name__}")
        if len(text) > self.max_chars:
            raise TextRejected(
                f"text is {len(text)} characters, over the {self.max_chars}-character limit; "
                "check replies one message at a time"
            )
        version = self._version
        if not text.strip():
            return ReplyDecision("allow", text, (), version)
        applicable, pattern_rules = self._rules_for(ctx)
        if not applicable:
            return ReplyDecision("allow", text, (), version)
        norm = normalize(text)
        spans: dict[tuple[str, _Role], list[Span]] = {}
        if self._matcher is not None:
            for m in self._matcher.find_normalized(norm):
                for rule_id, role in self._entries[m.phrase]:
                    if rule_id in applicable:
                        spans.setdefault((rule_id, role), []).append((m.start, m.end))

        findings: list[Finding] = []
        candidates = {rid for rid, role in spans if role in ("hit", "trigger")}
        candidates.update(pattern_rules)
        for rule_id in sorted(candidates):
            c = self._compiled[rule_id]
            rule = c.rule
            exceptions = spans.get((rule_id, "except"), [])
            if rule.kind == "disclaimer":
                triggers = [s for s in spans.get((rule_id, "trigger"), []) if not _cancelled(s, exceptions)]
                if triggers and not spans.get((rule_id, "satisfied")):
                    if not (c.disclaimer_key and c.disclaimer_key in norm.text):
                        findings.append(self._finding(rule, triggers[0], text))
                continue
            hits: list[Span]
            if rule.kind == "pattern":
                hits = _regex_spans(c.pattern, norm) if c.pattern else []
            elif rule.kind == "claim":
                hits = self._claims(c, spans.get((rule_id, "hit"), []), norm)
            else:
                hits = spans.get((rule_id, "hit"), [])
            for span in _outermost(s for s in set(hits) if not _cancelled(s, exceptions)):
                findings.append(self._finding(rule, span, text))

        findings.sort(key=lambda f: (f.start, f.end, f.rule))
        decision = decide([f.action for f in findings])
        if decision == "block":
            return ReplyDecision("block", "", tuple(findings), version)
        final = _apply(text, findings, self._compiled)
        return ReplyDecision(decision, final, tuple(findings), version)

    @staticmethod
    def _finding(rule: Rule, span: Span, text: str) -> Finding:
        return Finding(
            rule.id, rule.action, span[0], span[1], text[span[0] : span[1]], rule.source, rule.message
        )

    @staticmethod
    def _claims(c: _Compiled, terms: list[Span], norm: Normalized) -> list[Span]:
        """A claim term with a number within the window (normalised characters) fires, term to number."""
        if not terms or c.number is None:
            return []
        numbers = [(m.start(), m.end()) for m in c.number.finditer(norm.text) if m.end() > m.start()]
        if not numbers:
            return []
        origin = norm.origin
        out: list[Span] = []
        for start, end in terms:
            ns = bisect.bisect_left(origin, start)
            ne = bisect.bisect_left(origin, end)
            for a, b in numbers:
                after = a >= ne and a - ne <= c.window
                before = b <= ns and ns - b <= c.window
                if (after and c.side in ("after", "both")) or (before and c.side in ("before", "both")):
                    o_start, o_end = norm.span(a, b)
                    out.append((min(start, o_start), max(end, o_end)))
        return out


def _cancelled(span: Span, exceptions: list[Span]) -> bool:
    return any(_overlaps(span, e) for e in exceptions)


def _outermost(spans: Iterable[Span]) -> list[Span]:
    """Drop spans inside a longer span of the same rule: 保本保息 is one finding, not three."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s[0], -s[1])):
        if out and span[1] <= max(e for _, e in out):
            continue
        out.append(span)
    return out


def _regex_spans(pattern: re.Pattern[str], norm: Normalized) -> list[Span]:
    out: list[Span] = []
    for m in pattern.finditer(norm.text):
        if m.end() > m.start():
            out.append(norm.span(m.start(), m.end()))
            if len(out) >= _MAX_PATTERN_HITS:
                break
    return out


def _apply(text: str, findings: Sequence[Finding], compiled: dict[str, _Compiled]) -> str:
    """Rewrites right to left over non-overlapping spans, then each distinct disclaimer once."""
    chosen: list[Finding] = []
    for f in sorted((f for f in findings if f.action == "rewrite"), key=lambda f: (f.start, -f.end, f.rule)):
        if not chosen or f.start >= chosen[-1].end:
            chosen.append(f)
    out = text
    for f in reversed(chosen):
        out = out[: f.start] + (compiled[f.rule].rule.rewrite or "") + out[f.end :]
    appended: list[str] = []
    for f in findings:
        if f.action != "disclaimer":
            continue
        note = compiled[f.rule].rule.disclaimer or ""
        if note and note not in appended:
            appended.append(note)
    if appended:
        out = out.rstrip() + "\n" + "\n".join(appended)
    return out
