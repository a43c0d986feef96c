"""A policy library: ``library.yaml`` plus ``rules/*.yaml``, validated whole at load, hashed as content.

Loading is all-or-nothing: a library with one bad rule is refused with the file, the rule id and the
fix, because a half-loaded library would silently stop enforcing the rules it dropped. The YAML is
read with a safe loader that also refuses aliases (no "billion laughs") and duplicate keys (the second
one would silently win). Regexes are compiled here, once, after a safety check (:mod:`policy._regex`
rules out catastrophic backtracking), so an unsafe pattern never reaches a request.

The content hash is SHA-256 over :meth:`PolicyLibrary.canonical`: sorted-key, no-space UTF-8 JSON of
the vocabulary and every rule sorted by id. Moving rules between files, reordering them or editing
comments leaves it unchanged; any change that can alter a decision changes it.
"""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from re._constants import MAXREPEAT  # type: ignore[import-not-found]
from re._parser import parse as _sre_parse  # type: ignore[import-not-found]
from typing import Any

import yaml
from pydantic import ValidationError

from policy.errors import (
    LibraryInvalid,
    PolicyError,
    RuleInvalid,
    UnknownChannel,
    UnknownIndustry,
    UnknownRegion,
)
from policy.normalize import normalize_phrase
from policy.region import GLOBAL, Region, RegionGroups
from policy.rule import Manifest, Rule, RuleFile

__all__ = [
    "MANIFEST",
    "MAX_REGEX_CHARS",
    "Context",
    "LibraryDiff",
    "PolicyLibrary",
    "RuleChange",
    "binds",
    "check_regex",
    "diff",
]

MANIFEST = "library.yaml"
RULES_DIR = "rules"
_MAX_FILE_BYTES = 1_000_000
_MAX_RULES = 50_000  # the speed goal is stated for the shipped library plus 10,000 rules
_FORMAT = "appliance-policy/1"


# -- YAML ------------------------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """Safe YAML without aliases or duplicate keys (both hide what a reviewer reads), and with YAML 1.2
    booleans: only true/false, so the country code NO (Norway) stays a string instead of becoming False.
    """

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                "while composing", None, "aliases (*name) are not allowed in policy files", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a mapping or list as a key: the schema refuses it later
            # Compare resolved tag + text: constructing every key twice doubled the load time.
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.MarkedYAMLError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"duplicate key {key_node.value!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return yaml.constructor.SafeConstructor.construct_mapping(self, node, deep=deep)


_CBase: Any = getattr(yaml, "CSafeLoader", None)


for _loader in (_StrictLoader,):
    _loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )


class _Events:
    """Python values built straight from libyaml's parse events, under the rules of :class:`_StrictLoader`.

    Building from events skips PyYAML's node graph and recursive constructor, which cost most of the
    load of a large library. Scalars are resolved and constructed exactly as the strict loader does
    (same implicit resolvers: YAML 1.2 booleans; same constructors: dates, ints, floats, null);
    aliases, duplicate keys and unknown tags are refused with the position.
    """

    _resolver = _StrictLoader.__new__(_StrictLoader)  # resolve() needs only the class tables
    _constructor = yaml.constructor.SafeConstructor()

    @classmethod
    def _scalar(cls, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = cls._resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
        construct = cls._constructor.yaml_constructors.get(tag)
        if construct is None:
            raise yaml.MarkedYAMLError(
                "while constructing", None, f"tag {tag!r} is not allowed in policy files", event.start_mark
            )
        if tag == "tag:yaml.org,2002:str":
            return event.value
        return construct(
            cls._constructor, yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
        )

    @classmethod
    def load(cls, text: str) -> Any:
        stack: list[Any] = []  # open containers: [dict, pending key, key mark] or [list]
        result: Any = None
        for event in yaml.parse(text, Loader=_CBase):
            kind = type(event)
            if kind is yaml.ScalarEvent:
                value = cls._scalar(event)
            elif kind is yaml.MappingStartEvent:
                stack.append([{}, _NO_KEY, None])
                continue
            elif kind is yaml.SequenceStartEvent:
                stack.append([[]])
                continue
            elif kind in (yaml.MappingEndEvent, yaml.SequenceEndEvent):
                value = stack.pop()[0]
            elif kind is yaml.AliasEvent:
                raise yaml.MarkedYAMLError(
                    "while composing",
                    None,
                    "aliases (*name) are not allowed in policy files",
                    event.start_mark,  # type: ignore[arg-type]
                )
            else:
                continue  # stream and document start/end
            if not stack:
                result = value
                continue
            top = stack[-1]
            if len(top) == 1:
                top[0].append(value)
            elif top[1] is _NO_KEY:
                top[1], top[2] = value, event.start_mark
            else:
                key = top[1]
                if isinstance(key, dict | list):
                    raise yaml.MarkedYAMLError(
                        "while constructing a mapping", None, "a mapping or list cannot be a key", top[2]
                    )
                if key in top[0]:
                    raise yaml.MarkedYAMLError(
                        "while constructing a mapping", None, f"duplicate key {key!r}", top[2]
                    )
                top[0][key] = value
                top[1] = _NO_KEY
        return result


_NO_KEY = object()


def _load(text: str) -> Any:
    if _CBase is None:
        return yaml.load(text, Loader=_StrictLoader)  # _StrictLoader is a SafeLoader
    return _Events.load(text)


def _read_yaml(path: Path, label: str) -> Any:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LibraryInvalid(f"cannot read it ({exc.strerror})", file=label, fix="check the path") from exc
    if size > _MAX_FILE_BYTES:
        raise LibraryInvalid(
            f"is {size} bytes, over the {_MAX_FILE_BYTES}-byte limit", file=label, fix="split it into files"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LibraryInvalid("is not UTF-8", file=label, fix="save it as UTF-8") from exc
    try:
        return _load(text)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise LibraryInvalid(f"malformed YAML ({detail})", file=label, fix="fix the YAML syntax") from exc


def _pydantic_problem(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


# -- regex safety ----------------------------------------------------------------------------------------
MAX_REGEX_CHARS = 500
_MAX_BOUND = 1000
_NARROW_CATEGORIES = frozenset({"CATEGORY_DIGIT", "CATEGORY_SPACE"})
_NESTED_FIX = "rewrite it without nested quantifiers (e.g. '(ab)+' → 'ab(?:ab){0,20}' or a phrase list)"


def _first(items: Sequence[tuple[Any, Any]]) -> tuple[frozenset[object], bool]:
    """Tokens that can start a match of ``items`` (ints: code points; strings: classes) and nullability."""
    out: set[object] = set()
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            out.add(chr(av).casefold())
            return frozenset(out), False
        if name == "IN":
            for sub_op, sub_av in av:
                sub = str(sub_op)
                if sub == "LITERAL":
                    out.add(chr(sub_av).casefold())
                elif sub == "CATEGORY":
                    out.add(str(sub_av))
                else:  # ranges, negations: too broad to reason about, assume anything
                    out.add("ANY")
            return frozenset(out), False
        if name in ("ANY", "NOT_LITERAL"):
            out.add("ANY")
            return frozenset(out), False
        if name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        if name == "SUBPATTERN":
            sub_first, nullable = _first(av[3])
        elif name == "ATOMIC_GROUP":
            sub_first, nullable = _first(av)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            sub_first, nullable = _first(av[2])
            nullable = nullable or av[0] == 0
        elif name == "BRANCH":
            nullable = False
            sub_first = frozenset()
            for alt in av[1]:
                f, n = _first(alt)
                sub_first |= f
                nullable = nullable or n
        else:
            out.add("ANY")
            return frozenset(out), False
        out |= sub_first
        if not nullable:
            return frozenset(out), False
    return frozenset(out), True


def _overlap(a: frozenset[object], b: frozenset[object]) -> bool:
    if "ANY" in a or "ANY" in b or a & b:
        return True
    tests = {"CATEGORY_DIGIT": str.isdigit, "CATEGORY_SPACE": str.isspace, "CATEGORY_WORD": str.isalnum}
    for x, y in ((a, b), (b, a)):
        for cat in (t for t in x if isinstance(t, str) and t in tests):
            if any(isinstance(c, str) and len(c) == 1 and tests[cat](c) for c in y):
                return True
    return False


def _broad(items: Sequence[tuple[Any, Any]]) -> bool:
    """Whether ``items`` can consume ordinary text wholesale (``.``, ``\\w``, ``[^x]``, wide ranges)."""
    for op, av in items:
        name = str(op)
        if name in ("ANY", "NOT_LITERAL"):
            return True
        if name == "IN":
            for o, v in av:
                o_name = str(o)
                if o_name == "NEGATE" or (o_name == "CATEGORY" and str(v) not in _NARROW_CATEGORIES):
                    return True
                if o_name == "RANGE" and v[1] - v[0] >= 128:
                    return True
        elif name == "SUBPATTERN":
            if _broad(av[3]):
                return True
        elif name == "ATOMIC_GROUP":
            if _broad(av):
                return True
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            if _broad(av[2]):
                return True
        elif name == "BRANCH":
            if any(_broad(alt) for alt in av[1]):
                return True
    return False


def _walk(items: Sequence[tuple[Any, Any]], in_repeat: bool) -> tuple[str, str] | None:
    for op, av in items:
        name = str(op)
        if name in ("GROUPREF", "GROUPREF_EXISTS"):
            return (
                "uses a backreference, which can backtrack exponentially",
                "match the text without \\1 or (?(1)...)",
            )
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _lo, hi, body = av
            repeats = hi > 1
            if repeats and in_repeat:
                return "nests a quantifier inside another and can backtrack catastrophically", _NESTED_FIX
            if hi != MAXREPEAT and hi > _MAX_BOUND:
                return (
                    f"repeats up to {hi} times, over {_MAX_BOUND}",
                    f"bound it at {{0,{_MAX_BOUND}}} or less",
                )
            if repeats and _first(body)[1]:
                return (
                    "repeats something that can match nothing",
                    "make the repeated part match at least one character",
                )
            problem = _walk(body, in_repeat or repeats)
            if problem:
                return problem
            if hi == MAXREPEAT and _broad(body):
                return (
                    "repeats a broad class without a bound, which is quadratic on long texts",
                    "bound it, e.g. '.{0,20}' instead of '.*'",
                )
        elif name == "BRANCH":
            alts = av[1]
            if in_repeat:
                firsts = [_first(alt) for alt in alts]
                if any(n for _, n in firsts):
                    return (
                        "repeats an alternation whose branches can match the same text (like (a|aa)*) "
                        "and can backtrack catastrophically",
                        "make the branches start differently or drop the repeat",
                    )
                for i in range(len(firsts)):
                    for j in range(i + 1, len(firsts)):
                        if _overlap(firsts[i][0], firsts[j][0]):
                            return (
                                "repeats an alternation whose branches can start alike (like (a|aa)*) "
                                "and can backtrack catastrophically",
                                "make the branches start differently or drop the repeat",
                            )
            for alt in alts:
                problem = _walk(alt, in_repeat)
                if problem:
                    return problem
        elif name == "SUBPATTERN":
            problem = _walk(av[3], in_repeat)
            if problem:
                return problem
        elif name == "ATOMIC_GROUP":
            problem = _walk(av, in_repeat)
            if problem:
                return problem
        elif name in ("ASSERT", "ASSERT_NOT"):
            problem = _walk(av[1], in_repeat)
            if problem:
                return problem
    return None


def check_regex(pattern: str) -> tuple[str, str] | None:
    """``None`` if ``pattern`` is safe to run on untrusted text, else ``(problem, fix)``.

    Refused: over :data:`MAX_REGEX_CHARS` characters; backreferences; a quantifier inside a quantifier
    (``(a+)+``, ``(.*)*``); a repeated alternation whose branches can start alike or be empty
    (``(a|aa)*``); a repeat that can match nothing; an unbounded repeat of anything broader than one
    literal, digits, whitespace or a small set (``.*`` → ``.{0,20}``), which is quadratic on a long text.
    """
    if len(pattern) > MAX_REGEX_CHARS:
        return (
            f"is {len(pattern)} characters, over {MAX_REGEX_CHARS}",
            "split it into rules or use a phrase list",
        )
    try:
        parsed = _sre_parse(pattern, re.IGNORECASE)
    except re.error as exc:
        return (f"is not a valid regex ({exc})", "fix the regex syntax")
    return _walk(list(parsed), False)


# -- scope ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Context:
    """A validated request: where (region and its inheritance chain), which industry, channel and day."""

    region: Region
    chain: tuple[str, ...]
    industry: str | None
    channel: str | None
    day: date


def binds(rule: Rule, ctx: Context) -> bool:
    """Whether ``rule``'s scope covers ``ctx``: region via inheritance, industry, channel, dates inclusive."""
    scope = rule.scope
    if not any(code in ctx.chain for code in scope.regions):
        return False
    if ctx.industry is not None and GLOBAL not in scope.industries and ctx.industry not in scope.industries:
        return False
    if ctx.channel is not None and GLOBAL not in scope.channels and ctx.channel not in scope.channels:
        return False
    if scope.effective_from is not None and ctx.day < scope.effective_from:
        return False
    return not (scope.effective_to is not None and ctx.day > scope.effective_to)


# -- the library -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyLibrary:
    """A validated library; build it with :meth:`from_dir` (or :meth:`from_data` in tests)."""

    name: str
    version: str
    description: str
    rules: tuple[Rule, ...]
    industries: tuple[str, ...]
    channels: tuple[str, ...]
    groups: RegionGroups
    timezones: Mapping[str, str]
    files: Mapping[str, str] = field(default_factory=dict)  # rule id → file it came from
    origin: str = "<memory>"
    _canonical: bytes = field(default=b"", repr=False)
    _by_id: Mapping[str, Rule] = field(default_factory=dict, repr=False)

    # -- construction --------------------------------------------------------------------------------
    @classmethod
    def from_dir(cls, path: str | Path) -> PolicyLibrary:
        """Load ``<path>/library.yaml`` and every ``<path>/rules/*.yaml`` (sorted), or refuse the lot."""
        root = Path(path)
        manifest_path = root / MANIFEST
        if not manifest_path.is_file():
            raise LibraryInvalid(
                f"{root} has no {MANIFEST}", fix="add one with name, version, industries and channels"
            )
        label = str(manifest_path)
        manifest = _read_yaml(manifest_path, label)
        rules_dir = root / RULES_DIR
        files = sorted([*rules_dir.glob("*.yaml"), *rules_dir.glob("*.yml")]) if rules_dir.is_dir() else []
        if not files:
            raise LibraryInvalid(f"{rules_dir} holds no *.yaml rule files", fix="add at least one rule file")
        raw: list[tuple[str, Any]] = []
        for f in files:
            raw.append((str(f), _read_yaml(f, str(f))))
        return cls._build(manifest, raw, manifest_label=label, origin=str(root))

    @classmethod
    def from_data(
        cls, manifest: Mapping[str, Any], rules: Sequence[Mapping[str, Any]], *, origin: str = "<memory>"
    ) -> PolicyLibrary:
        """A library from already-parsed data (tests, tools); validated exactly like :meth:`from_dir`."""
        return cls._build(
            dict(manifest), [(origin, {"rules": list(rules)})], manifest_label=origin, origin=origin
        )

    @classmethod
    def _build(
        cls, manifest_raw: Any, files: Iterable[tuple[str, Any]], *, manifest_label: str, origin: str
    ) -> PolicyLibrary:
        try:
            manifest = Manifest.model_validate(manifest_raw)
        except ValidationError as exc:
            raise LibraryInvalid(
                _pydantic_problem(exc), file=manifest_label, fix="correct library.yaml"
            ) from exc
        try:
            groups = RegionGroups(manifest.region_groups)
        except UnknownRegion as exc:
            raise LibraryInvalid(str(exc), file=manifest_label) from exc
        for code, tz in manifest.timezones.items():
            if not groups.is_scope_code(code) or code in groups.names or code == GLOBAL:
                raise LibraryInvalid(
                    f"timezones: {code!r} is not a country or subdivision code",
                    file=manifest_label,
                    fix="key timezones by codes such as CN or US-CA",
                )
            try:
                zoneinfo.ZoneInfo(tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise LibraryInvalid(
                    f"timezones: {tz!r} (for {code}) is not an IANA time zone",
                    file=manifest_label,
                    fix="use a name such as Asia/Shanghai",
                ) from exc

        rules: list[Rule] = []
        where: dict[str, str] = {}
        for label, data in files:
            try:
                rule_file = RuleFile.model_validate(data)
            except ValidationError as exc:
                raise LibraryInvalid(
                    _pydantic_problem(exc),
                    file=label,
                    fix="a rule file is `rules:` followed by a list of rules",
                ) from exc
            for n, item in enumerate(rule_file.rules):
                rid = item.get("id") if isinstance(item.get("id"), str) else f"#{n + 1}"
                try:
                    rule = Rule.model_validate(item)
                except ValidationError as exc:
                    raise RuleInvalid(
                        _pydantic_problem(exc),
                        file=label,
                        rule=rid,
                        fix="see config/policies/README.md for the fields of each kind",
                    ) from exc
                if rule.id in where:
                    raise RuleInvalid(
                        f"duplicate id (also in {where[rule.id]})",
                        file=label,
                        rule=rule.id,
                        fix="give each rule its own id",
                    )
                _check_rule(rule, manifest, groups, label)
                where[rule.id] = label
                rules.append(rule)
        if len(rules) > _MAX_RULES:
            raise LibraryInvalid(
                f"has {len(rules)} rules, over {_MAX_RULES}", file=origin, fix="split the library"
            )
        ordered = tuple(sorted(rules, key=lambda r: r.id))
        canonical = _canonical(manifest, groups, ordered)
        return cls(
            name=manifest.name,
            version=manifest.version,
            description=manifest.description,
            rules=ordered,
            industries=tuple(manifest.industries),
            channels=tuple(manifest.channels),
            groups=groups,
            timezones=dict(manifest.timezones),
            files=where,
            origin=origin,
            _canonical=canonical,
            _by_id={r.id: r for r in ordered},
        )

    # -- identity ------------------------------------------------------------------------------------
    def canonical(self) -> bytes:
        """The bytes the content hash covers (and the node signs): layout- and comment-independent."""
        return self._canonical

    @cached_property
    def content_hash(self) -> str:
        """Hex SHA-256 of :meth:`canonical`."""
        return hashlib.sha256(self._canonical).hexdigest()

    @property
    def version_id(self) -> str:
        """``<semver>+<12 hex of the content hash>``: what decisions cite as ``policy_version``."""
        return f"{self.version}+{self.content_hash[:12]}"

    def rule(self, rule_id: str) -> Rule:
        try:
            return self._by_id[rule_id]
        except KeyError:
            raise PolicyError(f"library {self.version_id} has no rule {rule_id!r}") from None

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._by_id

    # -- scope ---------------------------------------------------------------------------------------
    def context(
        self, *, region: str, industry: str | None, channel: str | None, at: datetime | None = None
    ) -> Context:
        """Validate a request's region, industry and channel against this library's vocabulary.

        ``None`` for industry or channel means "not known": every rule binds whatever it says for that
        dimension (fail closed), which is what a caller that cannot tell gets.
        """
        parsed = Region.parse(region)
        ind = None if industry is None else str(industry).strip().lower()
        if ind is not None and ind not in self.industries:
            raise UnknownIndustry(
                f"industry {industry!r} is unknown to policy library {self.version_id}; "
                f"use one of: {', '.join(self.industries)}",
                industry=str(industry),
                known=self.industries,
            )
        ch = None if channel is None else str(channel).strip().lower()
        if ch is not None and ch not in self.channels:
            raise UnknownChannel(
                f"channel {channel!r} is unknown to policy library {self.version_id}; "
                f"use one of: {', '.join(self.channels)}",
                channel=str(channel),
                known=self.channels,
            )
        when = at if at is not None else datetime.now(UTC)
        day = when.astimezone(UTC).date() if when.tzinfo is not None else when.date()
        return Context(parsed, parsed.chain(self.groups), ind, ch, day)

    def applicable(self, ctx: Context, kinds: Iterable[str] | None = None) -> tuple[Rule, ...]:
        """The rules of ``kinds`` (all when ``None``) that bind in ``ctx``, by id."""
        wanted = None if kinds is None else frozenset(kinds)
        return tuple(r for r in self.rules if (wanted is None or r.kind in wanted) and binds(r, ctx))


def _canonical(manifest: Manifest, groups: RegionGroups, rules: Sequence[Rule]) -> bytes:
    doc = {
        "format": _FORMAT,
        "industries": sorted(manifest.industries),
        "channels": sorted(manifest.channels),
        "region_groups": {k: sorted(v) for k, v in groups.as_dict().items()},
        "timezones": dict(sorted(manifest.timezones.items())),
        "rules": [r.model_dump(mode="json", exclude_none=True, by_alias=True) for r in rules],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _check_rule(rule: Rule, manifest: Manifest, groups: RegionGroups, label: str) -> None:
    """Library-wide checks pydantic cannot do alone: vocabulary, region codes, regexes, phrases."""

    def bad(problem: str, fix: str) -> RuleInvalid:
        return RuleInvalid(problem, file=label, rule=rule.id, fix=fix)

    for code in rule.scope.regions:
        if not groups.is_scope_code(code):
            raise bad(
                f"scope.regions: {code!r} is not '*', a region group ({', '.join(groups.names) or 'none'}) "
                "or an ISO 3166-1/3166-2 code",
                "use codes such as CN, CN-GD, US-CA or a group from library.yaml",
            )
    for name, values, known in (
        ("industries", rule.scope.industries, manifest.industries),
        ("channels", rule.scope.channels, manifest.channels),
    ):
        for v in values:
            if v != GLOBAL and v not in known:
                raise bad(
                    f"scope.{name}: {v!r} is not declared in library.yaml", f"use one of: {', '.join(known)}"
                )
    if rule.contact and rule.contact.allowed_channels:
        for v in rule.contact.allowed_channels:
            if v not in manifest.channels:
                raise bad(
                    f"contact.allowed_channels: {v!r} is unknown",
                    f"use one of: {', '.join(manifest.channels)}",
                )
    for group_name in ("phrases", "exceptions", "triggers", "satisfied_by"):
        for phrase in getattr(rule, group_name) or ():
            if not normalize_phrase(phrase):
                raise bad(
                    f"{group_name}: {phrase!r} is only punctuation or invisible characters",
                    "remove it or write the words it should match",
                )
    for fld, regex in (
        ("pattern", rule.pattern),
        ("claim.number", rule.claim.number if rule.claim else None),
    ):
        if regex is None:
            continue
        problem = check_regex(regex)
        if problem is not None:
            raise bad(f"{fld} {regex[:60]!r}: {problem[0]}", problem[1])
        try:
            re.compile(regex)
        except re.error as exc:  # pragma: no cover - check_regex parses first
            raise bad(f"{fld} {regex[:60]!r} is not a valid regex ({exc})", "fix the regex") from exc


# -- diff ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RuleChange:
    """A rule present in both libraries whose content differs; ``fields`` are the top-level keys."""

    id: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class LibraryDiff:
    """What changed between two library versions, by rule id."""

    version_a: str
    version_b: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[RuleChange, ...]
    vocabulary_changed: tuple[str, ...]  # industries, channels, region_groups, timezones

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.vocabulary_changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.version_a,
            "to": self.version_b,
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": [{"id": c.id, "fields": list(c.fields)} for c in self.changed],
            "vocabulary_changed": list(self.vocabulary_changed),
        }


def diff(a: PolicyLibrary, b: PolicyLibrary) -> LibraryDiff:
    """Rules added, removed and changed from ``a`` to ``b`` (what a reviewer approves before publishing)."""
    ids_a = {r.id for r in a.rules}
    ids_b = {r.id for r in b.rules}
    changed: list[RuleChange] = []
    for rid in sorted(ids_a & ids_b):
        da = a.rule(rid).model_dump(mode="json", exclude_none=True, by_alias=True)
        db = b.rule(rid).model_dump(mode="json", exclude_none=True, by_alias=True)
        fields = tuple(sorted(k for k in da.keys() | db.keys() if da.get(k) != db.get(k)))
        if fields:
            changed.append(RuleChange(rid, fields))
    ca, cb = json.loads(a.canonical()), json.loads(b.canonical())
    vocab = tuple(k for k in ("industries", "channels", "region_groups", "timezones") if ca[k] != cb[k])
    return LibraryDiff(
        version_a=a.version_id,
        version_b=b.version_id,
        added=tuple(sorted(ids_b - ids_a)),
        removed=tuple(sorted(ids_a - ids_b)),
        changed=tuple(changed),
        vocabulary_changed=vocab,
    )
