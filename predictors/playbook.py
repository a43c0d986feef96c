"""Playbooks: the YAML a marketing-ops team writes to say whom to contact, when, with what, and how often.

A playbook is untrusted input (people edit it), so it is validated whole at load with pydantic
(``extra="forbid"``: a misspelt key is an error, not a setting that silently does nothing) and then
turned into frozen dataclasses the rest of the package can trust. Checks that span keys (a ratio's
operands exist, a keyword set is defined once, rules name real features) run after the schema, and
every message names the file, the key path and the fix, because the reader is the person who wrote
the file, not someone who can read a stack trace.

Keyword sets are matched on *normalised* text (:func:`normalize_text`): NFKC (full-width "ＴＰＭＳ" is
"TPMS"), case folding, traditional → simplified Chinese (OpenCC ``t2s``: "胎壓" is "胎压") and runs of
white space collapsed, applied the same way to the terms here and to the event texts in
:mod:`predictors.features`, so a term matches every spelling a customer might type.

The schedule is kept as a string: the node validates and runs the cron expression (APScheduler is
not imported by domain packages); here we only insist on five fields, so an obvious slip fails at load.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

import numpy as np
import opencc
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from predictors.errors import DataError, PlaybookError

__all__ = [
    "CHANNELS",
    "DEFAULT_CAPS",
    "DEFAULT_EVENT_CHANNELS",
    "DEFAULT_EVENT_KINDS",
    "DEFAULT_QUIET_HOURS",
    "FEATURE_KINDS",
    "KEYWORDS_FILE",
    "Cap",
    "Condition",
    "Contact",
    "Eligibility",
    "Feature",
    "KeywordSet",
    "Offer",
    "Playbook",
    "QuietHours",
    "Rules",
    "SelectionSpec",
    "Target",
    "load_keywords",
    "load_playbook",
    "load_playbooks",
    "normalize_text",
]

#: The shared keyword sets file in a playbook directory (not itself a playbook).
KEYWORDS_FILE = "keywords.yaml"
#: Event kinds of the shipped store schema (config/store/customer_schema.yaml ``events.kinds``).
DEFAULT_EVENT_KINDS: tuple[str, ...] = (
    "login",
    "logout",
    "page_view",
    "search",
    "add_to_cart",
    "purchase",
    "refund",
    "complaint",
    "support_contact",
    "plan_change",
    "subscription_cancelled",
    "payment_failed",
    "survey",
    "telemetry",
)
#: Event channels of the shipped store schema (``events.channels``).
DEFAULT_EVENT_CHANNELS: tuple[str, ...] = (
    "web",
    "app",
    "phone",
    "chat",
    "email",
    "store",
    "sms",
    "wechat",
    "vehicle",
)
#: Channels an offer can go out on (consent is recorded per channel).
CHANNELS: tuple[str, ...] = ("sms", "email", "phone", "app_push", "wechat")
FEATURE_KINDS: tuple[str, ...] = (
    "count",
    "keyword_hits",
    "recency",
    "sum",
    "ratio",
    "distinct_days",
    "attribute",
    "tenure_days",
)
#: Kinds whose value is numeric whatever the data (an ``attribute`` may be categorical).
_NUMERIC_KINDS = frozenset(FEATURE_KINDS) - {"attribute"}
#: Column names a training frame adds next to the features.
_RESERVED = frozenset({"label", "cutoff", "customer_id"})
_MAX_FILE_BYTES = 1_000_000
_LOWER_SNAKE = r"^[a-z][a-z0-9_]{0,63}$"
_REGION = r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"
_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
_CONDITION = re.compile(
    r"\s*([a-z][a-z0-9_]*)\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*"
)
_SPACES = re.compile(r"\s+")


# -- text normalisation ----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalize_text(text: str) -> str:
    """The form keyword terms and event texts are compared in (see the module docstring)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _SPACES.sub(" ", _t2s().convert(folded)).strip()


# -- values ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeywordSet:
    """A bilingual set of search phrases; ``terms`` are normalised and deduplicated for matching."""

    name: str
    zh: tuple[str, ...]
    en: tuple[str, ...]
    terms: tuple[str, ...]

    def pattern(self) -> re.Pattern[str]:
        """One alternation over every term (longest first), for a single pass over each unique text."""
        ordered = sorted(self.terms, key=lambda t: (-len(t), t))
        return re.compile("|".join(re.escape(t) for t in ordered))


@dataclass(frozen=True)
class Feature:
    """One declared feature. Which fields matter depends on ``kind`` (the loader checked them):

    count / sum / distinct_days / recency: ``events``, ``window`` (days) and optional ``channel``;
    keyword_hits: ``events`` (default search, telemetry), ``window``, ``keywords``;
    ratio: ``numerator``, ``denominator``, ``zero`` (value when the denominator is 0);
    attribute: ``column`` and optional fixed ``categories``; tenure_days: nothing else.
    """

    name: str
    kind: str
    events: tuple[str, ...] = ()
    window: int | None = None
    channel: str | None = None
    keywords: KeywordSet | None = None
    numerator: str | None = None
    denominator: str | None = None
    zero: float = 0.0
    column: str | None = None
    categories: tuple[str, ...] | None = None


_OPS = {
    ">=": np.greater_equal,
    ">": np.greater,
    "<=": np.less_equal,
    "<": np.less,
    "==": np.equal,
    "!=": np.not_equal,
}


@dataclass(frozen=True)
class Condition:
    """``feature op value``, e.g. ``tire_hits_7d >= 3``; a missing (NaN) feature value never holds."""

    feature: str
    op: str
    value: float

    def holds(self, values: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            result: np.ndarray = _OPS[self.op](values, self.value)
        return result & ~np.isnan(values)

    def __str__(self) -> str:
        return f"{self.feature} {self.op} {self.value:g}"


@dataclass(frozen=True)
class Rules:
    """Threshold rules of a playbook that triggers without a model; ``match`` is all or any."""

    match: str
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class Eligibility:
    """Who can have a label at all: e.g. a customer who already cancelled cannot churn again."""

    exclude_events: tuple[str, ...] = ()
    attributes: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    min_tenure_days: int | None = None


@dataclass(frozen=True)
class Target:
    """Label 1 when an event of ``events`` (on ``channel`` if set) occurs within ``horizon_days`` after
    the cutoff."""

    events: tuple[str, ...]
    horizon_days: int
    channel: str | None = None
    eligible: Eligibility = field(default_factory=Eligibility)
    #: Which way the lift report counts as success: more target events (uptake) or fewer (churn).
    goal: str = "increase"


@dataclass(frozen=True)
class SelectionSpec:
    """How many scored customers become candidates: ``top_k`` (``k`` a count, or a share when < 1) or
    everyone at or above ``threshold``; ``holdout`` of the chosen are kept back as the control group."""

    mode: str
    k: int | float | None = None
    threshold: float | None = None
    holdout: float = 0.10
    min_score: float | None = None


@dataclass(frozen=True)
class Offer:
    channel: str
    industry: str
    category: str
    text: Mapping[str, str] = field(hash=False)


@dataclass(frozen=True)
class Cap:
    """At most ``max`` contacts in the last ``days`` days, from this playbook or from all of them."""

    scope: str
    max: int
    days: int


@dataclass(frozen=True)
class QuietHours:
    """A local wall-clock window (start inclusive, end exclusive) that may wrap midnight."""

    start: time
    end: time

    @property
    def wraps(self) -> bool:
        return self.start > self.end

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


DEFAULT_CAPS: tuple[Cap, ...] = (Cap("playbook", 1, 7), Cap("overall", 3, 30))
DEFAULT_QUIET_HOURS = QuietHours(time(21, 0), time(8, 0))


@dataclass(frozen=True)
class Contact:
    caps: tuple[Cap, ...] = DEFAULT_CAPS
    quiet_hours: QuietHours | None = DEFAULT_QUIET_HOURS
    regions: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Playbook:
    """One validated playbook. ``model`` is the registry name a model playbook scores with (None for a
    rules playbook); ``source`` is the file it came from (for messages)."""

    name: str
    description: str
    schedule: str
    enabled: bool
    features: tuple[Feature, ...]
    selection: SelectionSpec
    offer: Offer
    contact: Contact
    target: Target | None = None
    model: str | None = None
    rules: Rules | None = None
    keywords: Mapping[str, KeywordSet] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    source: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def max_window_days(self) -> int:
        """The days of event history a scoring run needs (the longest feature window, at least 1)."""
        return max((f.window for f in self.features if f.window is not None), default=1)

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def rule_scores(self, features: pd.DataFrame) -> np.ndarray:
        """Scores of a rules playbook: 1.0 where the rules hold (all, or any, as declared), else 0.0.

        Binary on purpose: a rule is a business decision ("three searches this week"), not a ranking;
        ties among the 1.0s are broken by customer id in selection, and ``top_k`` caps how many.
        """
        if self.rules is None:
            raise DataError(
                f"playbook {self.name} has no rules; it scores with model {self.model!r} from the registry"
            )
        held = []
        for cond in self.rules.conditions:
            if cond.feature not in features.columns:
                raise DataError(
                    f"playbook {self.name}: rule '{cond}' needs feature {cond.feature!r}, which the feature "
                    "frame lacks; build it with predictors.features.build_features(..., playbook)"
                )
            column = features[cond.feature]
            if isinstance(column.dtype, pd.CategoricalDtype):
                raise DataError(
                    f"playbook {self.name}: rule '{cond}' compares a categorical feature with a number; "
                    "compare numeric features only"
                )
            held.append(cond.holds(column.to_numpy(dtype=np.float64, na_value=np.nan)))
        combined = np.logical_and.reduce(held) if self.rules.match == "all" else np.logical_or.reduce(held)
        return combined.astype(np.float64)


# -- YAML ---------------------------------------------------------------------------------------------------
class _StrictLoader(yaml.SafeLoader):
    """Safe YAML without aliases or duplicate keys, and with YAML 1.2 booleans only (true/false), so a
    region code such as NO stays a string."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                "while composing", None, "aliases (*name) are not allowed in playbooks", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
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


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _read_yaml(path: Path) -> Any:
    label = str(path)
    try:
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise PlaybookError(f"{label}: is {size} bytes, over the {_MAX_FILE_BYTES}-byte limit; split it")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlaybookError(f"{label}: cannot read it ({exc.strerror}); check the path") from exc
    except UnicodeDecodeError as exc:
        raise PlaybookError(f"{label}: is not UTF-8 text ({exc.reason}); save it as UTF-8") from exc
    try:
        return yaml.load(text, Loader=_StrictLoader)  # _StrictLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{label}: is not valid YAML: {exc}; fix the syntax at the line shown") from exc


# -- schema (pydantic: untrusted input) ------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Name = Annotated[str, Field(pattern=_LOWER_SNAKE)]
Window = Annotated[int, Field(ge=1, le=365, strict=True, description="days")]
Term = Annotated[str, Field(min_length=1, max_length=200)]


class _KeywordSet(_Model):
    zh: list[Term] = []
    en: list[Term] = []

    @model_validator(mode="after")
    def _not_empty(self) -> _KeywordSet:
        if not self.zh and not self.en:
            raise ValueError("a keyword set needs at least one term under zh: or en:")
        return self


class _KeywordFile(_Model):
    keywords: dict[Name, _KeywordSet]


class _EventFeature(_Model):
    """What every feature over events of some kinds in a window declares."""

    name: Name
    events: list[Name] = Field(min_length=1)
    window: Window
    channel: Name | None = None


class _Count(_EventFeature):
    kind: Literal["count"]


class _Sum(_EventFeature):
    kind: Literal["sum"]


class _DistinctDays(_EventFeature):
    kind: Literal["distinct_days"]


class _Recency(_EventFeature):
    kind: Literal["recency"]
    window: Window = 90


class _KeywordHits(_Model):
    kind: Literal["keyword_hits"]
    name: Name
    keywords: Name
    window: Window
    events: list[Name] = Field(default=["search", "telemetry"], min_length=1)


class _Ratio(_Model):
    kind: Literal["ratio"]
    name: Name
    numerator: Name
    denominator: Name
    zero: float = 0.0


class _Attribute(_Model):
    kind: Literal["attribute"]
    name: Name
    column: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    categories: list[Annotated[str, Field(min_length=1)]] | None = None


class _Tenure(_Model):
    kind: Literal["tenure_days"]
    name: Name


_FeatureSpec = Annotated[
    _Count | _Sum | _DistinctDays | _Recency | _KeywordHits | _Ratio | _Attribute | _Tenure,
    Field(discriminator="kind"),
]


class _Rules(_Model):
    match: Literal["all", "any"] = "all"
    when: list[str] = Field(min_length=1)


class _Eligible(_Model):
    exclude_events: list[Name] = []
    attributes: dict[Name, list[str]] = {}
    min_tenure_days: Annotated[int, Field(ge=0, le=36500, strict=True)] | None = None


class _Target(_Model):
    events: list[Name] = Field(min_length=1)
    horizon_days: Window
    channel: Name | None = None
    eligible: _Eligible = _Eligible()
    goal: Literal["increase", "decrease"] = "increase"


class _Selection(_Model):
    mode: Literal["top_k", "threshold"]
    k: Annotated[int, Field(ge=1, strict=True)] | Annotated[float, Field(gt=0, lt=1)] | None = None
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.10
    min_score: float | None = None

    @model_validator(mode="after")
    def _mode_fields(self) -> _Selection:
        if self.mode == "top_k" and self.k is None:
            raise ValueError("mode top_k needs k: a count (e.g. 1000) or a share below 1 (e.g. 0.02)")
        if self.mode == "threshold" and self.threshold is None:
            raise ValueError("mode threshold needs threshold: a score between 0 and 1 (e.g. 0.6)")
        if self.mode == "top_k" and self.threshold is not None:
            raise ValueError("threshold is for mode threshold; with top_k use min_score to set a floor")
        if self.mode == "threshold" and self.k is not None:
            raise ValueError("k is for mode top_k; remove it or switch mode")
        if self.min_score is not None and not math.isfinite(self.min_score):
            raise ValueError("min_score must be a finite number")
        return self


class _OfferText(_Model):
    zh: str = Field(min_length=1, max_length=2000)
    en: str = Field(min_length=1, max_length=2000)


class _Offer(_Model):
    channel: Literal["sms", "email", "phone", "app_push", "wechat"]
    industry: Name
    category: Name
    text: _OfferText


class _Cap(_Model):
    scope: Literal["playbook", "overall"]
    max: Annotated[int, Field(ge=1, le=1000, strict=True)]
    days: Window


class _Quiet(_Model):
    start: str = Field(pattern=_HHMM)
    end: str = Field(pattern=_HHMM)

    @model_validator(mode="after")
    def _not_empty(self) -> _Quiet:
        if self.start == self.end:
            raise ValueError(
                "start and end are equal, which is an empty (or all-day) window; "
                "write e.g. start: '21:00', end: '08:00', or quiet_hours: null for none"
            )
        return self


_DEFAULT_QUIET = _Quiet(start="21:00", end="08:00")


class _Contact(_Model):
    caps: list[_Cap] = [_Cap(scope="playbook", max=1, days=7), _Cap(scope="overall", max=3, days=30)]
    quiet_hours: _Quiet | None = _DEFAULT_QUIET
    regions: list[Annotated[str, Field(pattern=_REGION)]] | None = Field(default=None, min_length=1)


class _PlaybookFile(_Model):
    name: Name
    description: str = Field(min_length=1, max_length=2000)
    schedule: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    keywords: dict[Name, _KeywordSet] = {}
    features: list[_FeatureSpec] = Field(min_length=1, max_length=500)
    target: _Target | None = None
    model: Name | None = None
    rules: _Rules | None = None
    selection: _Selection
    offer: _Offer
    contact: _Contact = _Contact()


# -- messages --------------------------------------------------------------------------------------------
def _where(loc: tuple[Any, ...], raw: Any) -> str:
    """``features[2] (logins_7d).window`` from pydantic's ``('features', 2, 'count', 'window')``."""
    parts: list[str] = []
    node = raw
    skip_tag = False
    for item in loc:
        if skip_tag and isinstance(item, str) and item in FEATURE_KINDS:
            skip_tag = False
            continue
        skip_tag = False
        if isinstance(item, int):
            label = f"[{item}]"
            child = node[item] if isinstance(node, list) and 0 <= item < len(node) else None
            if isinstance(child, dict) and isinstance(child.get("name"), str):
                label += f" ({child['name']})"
                skip_tag = True
            parts.append(label)
            node = child
        else:
            parts.append(f".{item}" if parts else str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return "".join(parts)


def _pydantic_problem(exc: ValidationError, raw: Any) -> str:
    out = []
    for err in exc.errors(include_url=False):
        where = _where(tuple(err["loc"]), raw)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a playbook key (misspelt?); see config/playbooks/README.md for the keys"
        elif err["type"] == "union_tag_invalid":
            msg = f"{msg}; use one of the kinds listed in config/playbooks/README.md"
        elif err["type"] == "string_pattern_mismatch" and "a-z" in str(err.get("ctx", {}).get("pattern")):
            msg = f"{err['input']!r} must be lower_snake_case (a-z, 0-9, _; starting with a letter)"
        elif err["type"] == "missing":
            msg = "is required; add it (see config/playbooks/README.md)"
        last = err["loc"][-1] if err["loc"] else None
        if last in _HINTS and err["type"] not in ("missing", "extra_forbidden"):
            msg = f"{msg}; {_HINTS[last]}"
        out.append(f"{where}: {msg}" if where else msg)
    return "; ".join(out)


_HINTS = {
    "window": "a window is whole days from 1 to 365 (7, 30 and 90 are typical)",
    "horizon_days": "the horizon is whole days from 1 to 365",
    "days": "a cap's period is whole days from 1 to 365",
    "holdout": "the holdout is a share from 0 to 0.5 (default 0.10)",
    "k": "k is a count (e.g. 1000) or a share below 1 (e.g. 0.02)",
    "threshold": "the threshold is a score from 0 to 1",
    "max": "a cap's max is a whole number of contacts from 1 to 1000",
    "start": "write the time as HH:MM (24 h), e.g. '21:00'",
    "end": "write the time as HH:MM (24 h), e.g. '08:00'",
}


def _fail(label: str, where: str, problem: str) -> PlaybookError:
    return PlaybookError(f"{label}: {where}: {problem}")


# -- building --------------------------------------------------------------------------------------------
def _keyword_set(name: str, spec: _KeywordSet, label: str, where: str) -> KeywordSet:
    terms: list[str] = []
    for term in [*spec.zh, *spec.en]:
        norm = normalize_text(term)
        if not norm:
            raise _fail(label, where, f"term {term!r} is empty after normalisation; remove it")
        if norm not in terms:
            terms.append(norm)
    return KeywordSet(name, tuple(spec.zh), tuple(spec.en), tuple(terms))


def load_keywords(path: Path | str) -> dict[str, KeywordSet]:
    """The shared keyword sets of a ``keywords.yaml`` (``keywords: {name: {zh: [...], en: [...]}}``)."""
    path = Path(path)
    raw = _read_yaml(path)
    try:
        spec = _KeywordFile.model_validate(raw)
    except ValidationError as exc:
        raise PlaybookError(
            f"{path}: {_pydantic_problem(exc, raw)}; a keyword file is `keywords:` mapping set names to "
            "zh:/en: lists"
        ) from exc
    return {name: _keyword_set(name, s, str(path), f"keywords.{name}") for name, s in spec.keywords.items()}


def _check_names(
    values: Iterable[str], allowed: tuple[str, ...], label: str, where: str, what: str, key: str
) -> None:
    for value in values:
        if value not in allowed:
            raise _fail(
                label,
                where,
                f"{value!r} is not a known {what}; use one of: {', '.join(allowed)} "
                f"(or pass {key}= to the loader when the store schema declares more)",
            )


def _build(
    spec: _PlaybookFile,
    label: str,
    shared: Mapping[str, KeywordSet],
    event_kinds: tuple[str, ...],
    event_channels: tuple[str, ...],
) -> Playbook:
    local: dict[str, KeywordSet] = {}
    for name, kw in spec.keywords.items():
        if name in shared:
            raise _fail(
                label,
                f"keywords.{name}",
                f"is also defined in the shared {KEYWORDS_FILE}; rename one of them or use the shared set",
            )
        local[name] = _keyword_set(name, kw, label, f"keywords.{name}")
    known_sets = {**shared, **local}

    features: list[Feature] = []
    kinds: dict[str, str] = {}
    for i, f in enumerate(spec.features):
        where = f"features[{i}] ({f.name})"
        if f.name in kinds:
            raise _fail(
                label, where, f"feature name {f.name!r} is used twice; give every feature its own name"
            )
        if f.name in _RESERVED:
            raise _fail(label, where, f"{f.name!r} is reserved for training frames; choose another name")
        kinds[f.name] = f.kind
        events = tuple(getattr(f, "events", ()))
        _check_names(events, event_kinds, label, f"{where}.events", "event kind", "event_kinds")
        channel = getattr(f, "channel", None)
        if channel is not None:
            _check_names(
                (channel,), event_channels, label, f"{where}.channel", "event channel", "event_channels"
            )
        if isinstance(f, _KeywordHits):
            if f.keywords not in known_sets:
                defined = ", ".join(sorted(known_sets)) or "none"
                raise _fail(
                    label,
                    f"{where}.keywords",
                    f"keyword set {f.keywords!r} is not defined (defined: {defined}); declare it under "
                    f"keywords: in this playbook or in {KEYWORDS_FILE}",
                )
            features.append(Feature(f.name, f.kind, events, f.window, keywords=known_sets[f.keywords]))
        elif isinstance(f, _Ratio):
            features.append(
                Feature(f.name, f.kind, numerator=f.numerator, denominator=f.denominator, zero=f.zero)
            )
        elif isinstance(f, _Attribute):
            cats = tuple(f.categories) if f.categories is not None else None
            if cats is not None and len(set(cats)) != len(cats):
                raise _fail(label, f"{where}.categories", "lists a category twice; list each once")
            features.append(Feature(f.name, f.kind, column=f.column, categories=cats))
        elif isinstance(f, _Tenure):
            features.append(Feature(f.name, f.kind))
        else:
            features.append(Feature(f.name, f.kind, events, f.window, channel=channel))
    for i, feat in enumerate(features):
        if feat.kind != "ratio":
            continue
        for key in ("numerator", "denominator"):
            ref = getattr(feat, key)
            where = f"features[{i}] ({feat.name}).{key}"
            if ref == feat.name:
                raise _fail(label, where, "a ratio cannot refer to itself; name another feature")
            if ref not in kinds:
                raise _fail(
                    label,
                    where,
                    f"{ref!r} is not a feature of this playbook; declare it under features: or fix the name",
                )
            if kinds[ref] == "ratio":
                raise _fail(
                    label, where, f"{ref!r} is itself a ratio; a ratio's operands must be plain features"
                )

    rules = None
    if spec.rules is not None:
        conditions = []
        for j, text in enumerate(spec.rules.when):
            where = f"rules.when[{j}]"
            m = _CONDITION.fullmatch(text)
            if m is None:
                raise _fail(
                    label,
                    where,
                    f"{text!r} is not '<feature> <op> <number>'; write e.g. 'tire_hits_7d >= 3' "
                    "(op one of >=, >, <=, <, ==, !=)",
                )
            name, op, number = m.groups()
            if name not in kinds:
                raise _fail(label, where, f"{name!r} is not a feature of this playbook; declare it first")
            value = float(number)
            if not math.isfinite(value):
                raise _fail(label, where, f"{number!r} is not a finite number")
            conditions.append(Condition(name, op, value))
        rules = Rules(spec.rules.match, tuple(conditions))
        if spec.model is not None:
            raise _fail(
                label,
                "model",
                "a playbook either scores with a model or triggers on rules, not both; remove one",
            )
        sel = spec.selection
        if sel.mode == "top_k" and (sel.min_score is None or sel.min_score <= 0):
            raise _fail(
                label,
                "selection",
                "a rules playbook scores 1.0 (rules hold) or 0.0, so top_k would also pick customers who "
                "do not match; add min_score: 1.0 (k then caps how many are contacted) or use "
                "mode: threshold with threshold: 1.0",
            )
        if sel.mode == "threshold" and (sel.threshold or 0.0) <= 0:
            raise _fail(
                label,
                "selection.threshold",
                "a rules playbook scores 1.0 or 0.0; threshold 0 would select everyone: use 1.0",
            )
    model = None if rules is not None else (spec.model or spec.name)

    target = None
    if spec.target is not None:
        t = spec.target
        _check_names(t.events, event_kinds, label, "target.events", "event kind", "event_kinds")
        _check_names(
            t.eligible.exclude_events,
            event_kinds,
            label,
            "target.eligible.exclude_events",
            "event kind",
            "event_kinds",
        )
        if t.channel is not None:
            _check_names(
                (t.channel,), event_channels, label, "target.channel", "event channel", "event_channels"
            )
        target = Target(
            tuple(t.events),
            t.horizon_days,
            t.channel,
            Eligibility(
                tuple(t.eligible.exclude_events),
                MappingProxyType({k: tuple(v) for k, v in t.eligible.attributes.items()}),
                t.eligible.min_tenure_days,
            ),
            t.goal,
        )
    elif model is not None:
        raise _fail(
            label,
            "target",
            "a model playbook needs a target to train on, e.g. target: {events: [subscription_cancelled], "
            "horizon_days: 30}; or give it rules: instead",
        )

    fields = spec.schedule.split()
    if len(fields) != 5:
        raise _fail(
            label,
            "schedule",
            f"{spec.schedule!r} has {len(fields)} fields; write a 5-field cron expression "
            "(minute hour day-of-month month day-of-week), e.g. '0 9 * * *' for 09:00 daily",
        )

    sel = spec.selection
    selection = SelectionSpec(sel.mode, sel.k, sel.threshold, sel.holdout, sel.min_score)
    offer = Offer(
        spec.offer.channel,
        spec.offer.industry,
        spec.offer.category,
        MappingProxyType({"zh": spec.offer.text.zh, "en": spec.offer.text.en}),
    )
    c = spec.contact
    quiet = None
    if c.quiet_hours is not None:
        quiet = QuietHours(time.fromisoformat(c.quiet_hours.start), time.fromisoformat(c.quiet_hours.end))
    contact = Contact(
        tuple(Cap(cap.scope, cap.max, cap.days) for cap in c.caps),
        quiet,
        tuple(c.regions) if c.regions is not None else None,
    )
    return Playbook(
        name=spec.name,
        description=spec.description,
        schedule=" ".join(fields),
        enabled=spec.enabled,
        features=tuple(features),
        selection=selection,
        offer=offer,
        contact=contact,
        target=target,
        model=model,
        rules=rules,
        keywords=MappingProxyType(known_sets),
        source=label,
    )


def load_playbook(
    path: Path | str,
    *,
    shared_keywords: Mapping[str, KeywordSet] | None = None,
    event_kinds: Iterable[str] = DEFAULT_EVENT_KINDS,
    event_channels: Iterable[str] = DEFAULT_EVENT_CHANNELS,
) -> Playbook:
    """Load and validate one playbook file.

    ``shared_keywords`` defaults to the ``keywords.yaml`` next to the file, if there is one.
    ``event_kinds`` / ``event_channels`` are the store schema's vocabulary, so a misspelt kind is an
    error at load rather than a feature that is always 0.
    """
    path = Path(path)
    if shared_keywords is None:
        shared_file = path.parent / KEYWORDS_FILE
        shared_keywords = load_keywords(shared_file) if shared_file.is_file() else {}
    raw = _read_yaml(path)
    if not isinstance(raw, dict):
        raise PlaybookError(
            f"{path}: a playbook is a mapping (name:, description:, schedule:, features:, ...), "
            f"not {type(raw).__name__}; see config/playbooks/README.md"
        )
    try:
        spec = _PlaybookFile.model_validate(raw)
    except ValidationError as exc:
        raise PlaybookError(f"{path}: {_pydantic_problem(exc, raw)}") from exc
    return _build(spec, str(path), shared_keywords, tuple(event_kinds), tuple(event_channels))


def load_playbooks(
    directory: Path | str,
    *,
    event_kinds: Iterable[str] = DEFAULT_EVENT_KINDS,
    event_channels: Iterable[str] = DEFAULT_EVENT_CHANNELS,
) -> dict[str, Playbook]:
    """Every ``*.yaml`` / ``*.yml`` playbook of a directory (``keywords.yaml`` is the shared sets), by name.

    All or nothing: one bad file refuses the directory, so a scheduler never runs half a configuration.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise PlaybookError(f"{directory}: is not a directory; point the loader at the playbooks directory")
    shared_file = directory / KEYWORDS_FILE
    shared = load_keywords(shared_file) if shared_file.is_file() else {}
    kinds, channels = tuple(event_kinds), tuple(event_channels)
    out: dict[str, Playbook] = {}
    files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for path in files:
        if path.name == KEYWORDS_FILE:
            continue
        pb = load_playbook(path, shared_keywords=shared, event_kinds=kinds, event_channels=channels)
        if pb.name in out:
            raise PlaybookError(
                f"{path}: playbook name {pb.name!r} is already used by {out[pb.name].source}; "
                "playbook names must be unique: rename one"
            )
        out[pb.name] = pb
    return out
