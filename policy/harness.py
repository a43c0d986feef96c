"""Policy-as-code tooling: YAML test cases against a library (like ``opa test``) and a linter.

A case file under a cases directory is ``cases: [...]``; each case has a ``name`` and exactly one of
``check_reply``, ``filter_recommendations`` or ``contact`` (the inputs), and ``expect``::

    cases:
      - name: 最近 is not an absolute term
        check_reply: {text: 最近有优惠, region: CN, industry: retail, channel: chat}
        expect: {decision: allow, rules: []}
      - name: sugary snack withheld in England
        filter_recommendations:
          customer: {age: 30}
          items: [{id: a, category: snack, sugar_g_per_100g: 40}]
          region: GB-ENG
          industry: food
        expect: {blocked: [a], allowed: [], rules: [GB-ENG-HFSS-SUGAR]}

``expect.rules`` is the exact set of rule ids that must fire (``[]``: none, for benign cases); leave it
out to not check. Coverage is the set of rules that fired in passing cases: a rule no case exercises is
a rule nobody has seen work.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from policy.contact import ContactRules
from policy.errors import LibraryInvalid, PolicyError
from policy.evaluator import Evaluator
from policy.library import PolicyLibrary, _read_yaml
from policy.normalize import normalize_phrase
from policy.recommend import filter_recommendations
from policy.region import Region

__all__ = ["CaseResult", "LintIssue", "TestReport", "lint", "run_tests"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ReplyIn(_Model):
    text: str
    region: str
    industry: str
    channel: str = "chat"
    at: datetime | None = None


class _RecommendIn(_Model):
    customer: dict[str, Any] = Field(default_factory=dict)
    items: list[dict[str, Any]]
    region: str
    industry: str
    channel: str | None = None
    at: datetime | None = None
    id_field: str = "id"


class _ContactIn(_Model):
    region: str
    channel: str
    at: datetime
    contacts_in_window: int = 0
    industry: str | None = None
    timezone: str | None = None


class _Expect(_Model):
    decision: Literal["allow", "rewrite", "review", "block"] | None = None
    rules: list[str] | None = None
    text: str | None = None
    text_contains: list[str] | None = None
    allowed: list[Any] | None = None
    blocked: list[Any] | None = None
    contact_allowed: bool | None = None
    error: str | None = None  # the error class name, e.g. UnknownRegion


class _Case(_Model):
    name: str = Field(min_length=1)
    check_reply: _ReplyIn | None = None
    filter_recommendations: _RecommendIn | None = None
    contact: _ContactIn | None = None
    expect: _Expect

    @model_validator(mode="after")
    def _one_input(self) -> _Case:
        given = [
            n for n in ("check_reply", "filter_recommendations", "contact") if getattr(self, n) is not None
        ]
        if len(given) != 1:
            raise ValueError("a case needs exactly one of check_reply, filter_recommendations, contact")
        return self


class _CaseFile(_Model):
    cases: list[_Case] = Field(min_length=1)


@dataclass(frozen=True)
class CaseResult:
    file: str
    name: str
    passed: bool
    problems: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestReport:
    """Per-case results and rule coverage of one run."""

    __test__ = False  # not a pytest class

    library: str
    cases: tuple[CaseResult, ...]
    covered: frozenset[str]
    uncovered: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases)

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        return tuple(c for c in self.cases if not c.passed)

    @property
    def coverage(self) -> float:
        total = len(self.covered) + len(self.uncovered)
        return 1.0 if total == 0 else len(self.covered) / total


def _load_cases(cases_dir: Path) -> list[tuple[str, _Case]]:
    files = sorted([*cases_dir.glob("*.yaml"), *cases_dir.glob("*.yml")]) if cases_dir.is_dir() else []
    if not files:
        raise PolicyError(f"{cases_dir} holds no *.yaml case files; point at the directory of test cases")
    out: list[tuple[str, _Case]] = []
    for f in files:
        data = _read_yaml(f, str(f))
        try:
            parsed = _CaseFile.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors(include_url=False)
            )
            raise LibraryInvalid(
                problems, file=str(f), fix="see policy/harness.py for the case format"
            ) from exc
        out.extend((str(f), case) for case in parsed.cases)
    return out


def _item_id(item: Mapping[str, Any], id_field: str) -> Any:
    return item.get(id_field)


def _run_case(case: _Case, evaluator: Evaluator, contacts: ContactRules) -> tuple[list[str], set[str]]:
    exp = case.expect
    problems: list[str] = []
    fired: set[str] = set()
    try:
        if case.check_reply is not None:
            r = case.check_reply
            d = evaluator.check_reply(
                r.text, region=r.region, industry=r.industry, channel=r.channel, at=r.at
            )
            fired = set(d.rules)
            if exp.decision is not None and d.decision != exp.decision:
                problems.append(f"decision {d.decision!r}, expected {exp.decision!r}")
            if exp.text is not None and d.text != exp.text:
                problems.append(f"text {d.text!r}, expected {exp.text!r}")
            for part in exp.text_contains or ():
                if part not in d.text:
                    problems.append(f"text {d.text!r} lacks {part!r}")
        elif case.filter_recommendations is not None:
            q = case.filter_recommendations
            res = filter_recommendations(
                evaluator.library,
                q.customer,
                q.items,
                region=q.region,
                industry=q.industry,
                channel=q.channel,
                at=q.at,
            )
            fired = {reason["rule"] for b in res.blocked for reason in b["reasons"]}
            allowed = [_item_id(i, q.id_field) for i in res.allowed]
            blocked = [_item_id(b["item"], q.id_field) for b in res.blocked]
            if exp.allowed is not None and allowed != exp.allowed:
                problems.append(f"allowed {allowed}, expected {exp.allowed}")
            if exp.blocked is not None and blocked != exp.blocked:
                problems.append(f"blocked {blocked}, expected {exp.blocked}")
        elif case.contact is not None:
            c = case.contact
            cd = contacts.check_contact(
                c.region,
                c.channel,
                c.at,
                contacts_in_window=c.contacts_in_window,
                industry=c.industry,
                timezone=c.timezone,
            )
            fired = {cd.rule} if cd.rule else set()
            if exp.contact_allowed is not None and cd.allowed != exp.contact_allowed:
                problems.append(f"contact allowed={cd.allowed} ({cd.reason}), expected {exp.contact_allowed}")
        if exp.error is not None:
            problems.append(f"expected {exp.error}, but no error was raised")
    except PolicyError as exc:
        if exp.error != type(exc).__name__:
            problems.append(f"raised {type(exc).__name__}: {exc}")
        return problems, fired
    if exp.rules is not None and fired != set(exp.rules):
        problems.append(f"rules {sorted(fired)}, expected {sorted(exp.rules)}")
    return problems, fired


def run_tests(library: PolicyLibrary, cases_dir: str | Path) -> TestReport:
    """Run every case under ``cases_dir`` against ``library``; report pass/fail per case and coverage."""
    evaluator = Evaluator(library)
    contacts = ContactRules(library)
    results: list[CaseResult] = []
    covered: set[str] = set()
    for file, case in _load_cases(Path(cases_dir)):
        problems, fired = _run_case(case, evaluator, contacts)
        results.append(CaseResult(file, case.name, not problems, tuple(problems), tuple(sorted(fired))))
        if not problems:
            covered |= fired
    ids = [r.id for r in library.rules]
    return TestReport(
        library=library.version_id,
        cases=tuple(results),
        covered=frozenset(covered & set(ids)),
        uncovered=tuple(i for i in ids if i not in covered),
    )


# -- lint ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LintIssue:
    """A finding of :func:`lint`: ``error`` means the rule cannot work as written, ``warning`` may."""

    rule: str
    code: str
    severity: Literal["error", "warning"]
    message: str
    file: str | None = field(default=None)

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}rule {self.rule}: [{self.code}] {self.message}"


def _covers(outer: list[str], inner: list[str]) -> bool:
    """Whether scope values ``outer`` include every value of ``inner`` (``*`` includes everything)."""
    return "*" in outer or all(i in outer for i in inner)


def _covers_regions(library: PolicyLibrary, outer: list[str], inner: list[str]) -> bool:
    """Like :func:`_covers`, with inheritance: ``CN`` covers ``CN-GD``, ``EU`` covers ``DE``."""
    if "*" in outer:
        return True
    for code in inner:
        if code in outer:
            continue
        if code == "*" or code in library.groups.names:
            return False
        if not set(Region.parse(code).chain(library.groups)) & set(outer):
            return False
    return True


def lint(library: PolicyLibrary, *, today: datetime | None = None) -> list[LintIssue]:
    """Problems a load cannot refuse but a reviewer should see, sorted by rule id.

    - ``shadowed-phrase``: an exception sits inside a phrase, so the phrase can never fire;
    - ``unused-exception``: an exception that overlaps none of the rule's phrases or triggers;
    - ``unreachable``: every phrase is also blocked by a rule of the same or wider scope, or the rule
      expired (``effective_to`` in the past);
    - ``duplicate-phrase``: the same phrase twice in one rule;
    - ``weak-source``: a citation that names no clause (no digit, §, Art., 第...条);
    - ``rewrite-trips-rule``: an approved phrasing or disclaimer that itself contains another rule's phrase.
    """
    issues: list[LintIssue] = []
    day = (today or datetime.now()).date()

    def add(rule_id: str, code: str, severity: Literal["error", "warning"], message: str) -> None:
        issues.append(LintIssue(rule_id, code, severity, message, library.files.get(rule_id)))

    blockers = [r for r in library.rules if r.action == "block" and r.kind == "phrases"]
    phrase_owners: dict[str, list[str]] = {}
    for rule in library.rules:
        if rule.kind in ("phrases", "claim"):
            for p in rule.phrases or ():
                phrase_owners.setdefault(normalize_phrase(p), []).append(rule.id)

    for rule in library.rules:
        phrases = [normalize_phrase(p) for p in (rule.phrases or []) + (rule.triggers or [])]
        exceptions = [normalize_phrase(e) for e in rule.exceptions or ()]
        seen: set[str] = set()
        for p in phrases:
            if p in seen:
                add(rule.id, "duplicate-phrase", "warning", f"phrase {p!r} is listed twice; remove one")
            seen.add(p)
            for e in exceptions:
                if e in p:
                    add(
                        rule.id,
                        "shadowed-phrase",
                        "error",
                        f"phrase {p!r} contains the exception {e!r}, so it can never fire; drop one of them",
                    )
        for e in exceptions:
            if phrases and not any(p in e or e in p or _touches(p, e) for p in phrases):
                add(
                    rule.id,
                    "unused-exception",
                    "warning",
                    f"exception {e!r} overlaps none of the phrases; remove it",
                )
        if rule.scope.effective_to is not None and rule.scope.effective_to < day:
            add(
                rule.id,
                "unreachable",
                "warning",
                f"expired on {rule.scope.effective_to}; delete it or extend it",
            )
        if rule.kind == "phrases" and rule.action != "block" and phrases:
            for b in blockers:
                if b.id == rule.id or b.exceptions:
                    continue
                bp = {normalize_phrase(p) for p in b.phrases or ()}
                if (
                    all(any(x in p for x in bp) for p in phrases)
                    and _covers_regions(library, b.scope.regions, rule.scope.regions)
                    and _covers(b.scope.industries, rule.scope.industries)
                    and _covers(b.scope.channels, rule.scope.channels)
                ):
                    add(
                        rule.id,
                        "unreachable",
                        "warning",
                        f"every phrase is also blocked by {b.id} in a scope at least as wide; its "
                        f"{rule.action} never decides",
                    )
                    break
        low = rule.source.lower()
        if not any(ch.isdigit() for ch in rule.source) and not any(
            m in low for m in ("§", "art.", "article", "条", "rule ")
        ):
            add(
                rule.id, "weak-source", "warning", f"source {rule.source!r} names no clause; cite the article"
            )
        for label, text in (("rewrite", rule.rewrite), ("disclaimer", rule.disclaimer)):
            if not text:
                continue
            norm = normalize_phrase(text)
            for phrase, owners in phrase_owners.items():
                if phrase and phrase in norm:
                    others = [o for o in owners if o != rule.id]
                    if others:
                        add(
                            rule.id,
                            "rewrite-trips-rule",
                            "error",
                            f"its {label} text contains {phrase!r}, a phrase of "
                            f"{', '.join(others)}; reword it",
                        )
    return sorted(issues, key=lambda i: (i.rule, i.code, i.message))


def _touches(p: str, e: str) -> bool:
    """Whether the exception can overlap the phrase at its edges (e.g. 最近 and 近期 sharing 近)."""
    return any(e.endswith(p[:k]) or e.startswith(p[-k:]) for k in range(1, len(p) + 1))
