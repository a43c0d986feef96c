"""The YAML shapes of a policy library, validated with pydantic because rule files are untrusted input.

A rule file is ``rules: [<rule>, ...]``; ``library.yaml`` is the :class:`Manifest`. Models are frozen
and forbid unknown keys, so a misspelt field (``phrase:`` for ``phrases:``) is an error at load
instead of a rule that silently never fires. Checks that need the whole library (region codes, known
industries, regex safety, duplicate ids) live in :mod:`policy.library`.

Recommendation conditions are *structured*, not an expression string: ``{attr, op, value}`` leaves
combined with ``all`` / ``any`` / ``not``. There is no parser to get wrong and nothing is ever
evaluated as code; every attribute path and operator is validated here.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

__all__ = [
    "ACTIONS",
    "KINDS",
    "AllOf",
    "AnyOf",
    "ClaimSpec",
    "Compare",
    "Condition",
    "ContactSpec",
    "Manifest",
    "MaxContacts",
    "NotOf",
    "QuietHours",
    "Rule",
    "RuleFile",
    "Scope",
]

Action = Literal["block", "review", "rewrite", "disclaimer", "allow"]
Kind = Literal["phrases", "pattern", "claim", "disclaimer", "recommendation", "contact"]
ACTIONS: tuple[str, ...] = ("block", "review", "rewrite", "disclaimer", "allow")
KINDS: tuple[str, ...] = ("phrases", "pattern", "claim", "disclaimer", "recommendation", "contact")

_SEMVER = r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$"
_ATTR = re.compile(r"^(item|customer)(\.[A-Za-z_][A-Za-z0-9_]*){1,4}$")
_MAX_PHRASE = 200
_ID = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,63}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Manifest(_Model):
    """``library.yaml``: what the library is and the vocabulary its rules may use."""

    name: str = Field(min_length=1, max_length=100)
    version: str = Field(pattern=_SEMVER, description="semantic version, e.g. 1.0.0")
    description: str = ""
    industries: list[str] = Field(min_length=1)
    channels: list[str] = Field(min_length=1)
    region_groups: dict[str, list[str]] = Field(default_factory=dict)
    timezones: dict[str, str] = Field(default_factory=dict, description="region code → IANA zone")

    @field_validator("industries", "channels")
    @classmethod
    def _lower_words(cls, values: list[str]) -> list[str]:
        for v in values:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", v):
                raise ValueError(f"{v!r} must be a lower-case word such as 'finance' or 'chat'")
        if len(set(values)) != len(values):
            raise ValueError("lists a value twice; remove the duplicate")
        return values


class Scope(_Model):
    """Where and when a rule binds. Dates are inclusive; ``*`` means every region/industry/channel."""

    regions: list[str] = Field(min_length=1)
    industries: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    channels: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    effective_from: date | None = None
    effective_to: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> Scope:
        if self.effective_from and self.effective_to and self.effective_to < self.effective_from:
            raise ValueError(
                f"effective_to {self.effective_to} is before effective_from {self.effective_from}; swap them"
            )
        return self


# -- recommendation conditions ---------------------------------------------------------------------------
Scalar = bool | int | float | str
_NUMERIC_OPS = (">", ">=", "<", "<=")


class Compare(_Model):
    """One attribute test: ``{attr: item.sugar_g_per_100g, op: ">", value: 22.5}``.

    ``default`` stands in for a missing attribute; without it a missing attribute makes the test
    *unknown* (except ``is_true``: an unset flag is simply not true), and the rule's ``on_unknown``
    decides (fail closed by default).
    """

    attr: str
    op: Literal[">", ">=", "<", "<=", "==", "!=", "in", "not_in", "is_true", "is_false", "exists", "missing"]
    value: Scalar | list[Scalar] | None = None
    default: Scalar | None = None

    @field_validator("attr")
    @classmethod
    def _path(cls, v: str) -> str:
        if not _ATTR.match(v):
            raise ValueError(
                f"attr {v!r} must be 'item.<name>' or 'customer.<name>[.<name>]' (letters, digits, '_')"
            )
        return v

    @model_validator(mode="after")
    def _value_fits_op(self) -> Compare:
        op, value = self.op, self.value
        if op in _NUMERIC_OPS and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"op {op!r} compares numbers; give a numeric value, not {value!r}")
        if op in ("in", "not_in") and not isinstance(value, list):
            raise ValueError(f"op {op!r} needs a list value, e.g. value: [a, b]")
        if op in ("==", "!=") and (value is None or isinstance(value, list)):
            raise ValueError(f"op {op!r} needs a single value")
        if op in ("is_true", "is_false", "exists", "missing") and value is not None:
            raise ValueError(f"op {op!r} takes no value; remove `value`")
        return self


class AllOf(_Model):
    all: list[Condition] = Field(min_length=1)


class AnyOf(_Model):
    any: list[Condition] = Field(min_length=1)


class NotOf(_Model):
    not_: Condition = Field(alias="not")


def _condition_tag(v: Any) -> str | None:
    if isinstance(v, dict):
        for key in ("attr", "all", "any", "not"):
            if key in v:
                return key
        return None
    if isinstance(v, Compare):
        return "attr"
    if isinstance(v, AllOf):
        return "all"
    if isinstance(v, AnyOf):
        return "any"
    if isinstance(v, NotOf):
        return "not"
    return None


Condition = Annotated[
    Annotated[Compare, Tag("attr")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[NotOf, Tag("not")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition",
        custom_error_message="a condition is {attr, op, value} or {all: [...]}, {any: [...]} or {not: ...}",
    ),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()


# -- claims and contact --------------------------------------------------------------------------------
#: A percentage or rate next to a claim term: "8%", "８％", "10 percent", "5个百分点", "百分之八".
#: It runs on the normalised text, where a decimal point has become a space ("7.5%" is "7 5%").
DEFAULT_CLAIM_NUMBER = (
    r"(?:\d{1,6}(?:[., ]\d{1,4})?\s{0,3}(?:%|％|‰|percent|per\s?cent|个百分点|个点)"
    r"|百分之[0-9零〇一二两三四五六七八九十百点.]{1,8})"
)


class ClaimSpec(_Model):
    """How a claim term and a number combine: the number within ``window`` characters of the term."""

    number: str = DEFAULT_CLAIM_NUMBER
    window: int = Field(default=16, ge=0, le=80)
    side: Literal["after", "before", "both"] = "both"


class QuietHours(_Model):
    """Local time window in which no contact is made; may wrap midnight (21:00-08:00)."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("quiet_hours start equals end; give a real window such as 21:00-08:00")
        return self


class MaxContacts(_Model):
    count: int = Field(ge=0, le=10_000)
    period_hours: int = Field(ge=1, le=24 * 366)


class ContactSpec(_Model):
    """What a contact rule limits; at least one of the three."""

    quiet_hours: QuietHours | None = None
    max_contacts: MaxContacts | None = None
    allowed_channels: list[str] | None = None

    @model_validator(mode="after")
    def _something(self) -> ContactSpec:
        if self.quiet_hours is None and self.max_contacts is None and self.allowed_channels is None:
            raise ValueError("a contact rule needs quiet_hours, max_contacts or allowed_channels")
        return self


# -- the rule --------------------------------------------------------------------------------------------
_KIND_FIELDS: dict[str, frozenset[str]] = {
    "phrases": frozenset({"phrases", "exceptions", "rewrite"}),
    "pattern": frozenset({"pattern", "exceptions", "rewrite"}),
    "claim": frozenset({"phrases", "exceptions", "claim", "rewrite"}),
    "disclaimer": frozenset({"disclaimer", "triggers", "exceptions", "satisfied_by"}),
    "recommendation": frozenset({"condition", "on_unknown"}),
    "contact": frozenset({"contact"}),
}
_KIND_ACTIONS: dict[str, frozenset[str]] = {
    "phrases": frozenset({"block", "review", "rewrite", "allow"}),
    "pattern": frozenset({"block", "review", "rewrite", "allow"}),
    "claim": frozenset({"block", "review", "rewrite", "allow"}),
    "disclaimer": frozenset({"disclaimer", "review", "block"}),
    "recommendation": frozenset({"block"}),
    "contact": frozenset({"block"}),
}
_OPTIONAL_FIELDS = frozenset(
    {
        "phrases",
        "exceptions",
        "pattern",
        "claim",
        "rewrite",
        "disclaimer",
        "triggers",
        "satisfied_by",
        "condition",
        "on_unknown",
        "contact",
    }
)


def _phrase_list(values: list[str]) -> list[str]:
    for v in values:
        if not v.strip():
            raise ValueError("contains an empty phrase; remove it")
        if len(v) > _MAX_PHRASE:
            raise ValueError(f"phrase {v[:20]!r}... is longer than {_MAX_PHRASE} characters; shorten it")
    return values


class Rule(_Model):
    """One rule; which fields it may carry depends on ``kind`` (see ``config/policies/README.md``)."""

    id: str = Field(description="e.g. CN-ADV-009-ABSOLUTE")
    title: str = ""
    source: str = Field(min_length=3, description="the clause the rule enforces")
    kind: Kind
    action: Action
    severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    message: str = ""
    scope: Scope
    phrases: list[str] | None = None
    exceptions: list[str] | None = None
    pattern: str | None = None
    claim: ClaimSpec | None = None
    rewrite: str | None = None
    disclaimer: str | None = None
    triggers: list[str] | None = None
    satisfied_by: list[str] | None = None
    condition: Condition | None = None
    on_unknown: Literal["block", "allow"] = "block"
    contact: ContactSpec | None = None

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not _ID.match(v):
            raise ValueError(
                f"{v!r} is not a rule id: use 2-64 upper-case letters, digits and '-' (CN-ADV-009-ABSOLUTE)"
            )
        return v

    @field_validator("phrases", "exceptions", "triggers", "satisfied_by")
    @classmethod
    def _check_phrases(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _phrase_list(v)

    @model_validator(mode="after")
    def _fits_kind(self) -> Rule:
        allowed = _KIND_FIELDS[self.kind]
        stray = sorted(f for f in _OPTIONAL_FIELDS - allowed if f in self.model_fields_set)
        if stray:
            raise ValueError(f"field(s) {', '.join(stray)} are not used by kind {self.kind!r}; remove them")
        if self.action not in _KIND_ACTIONS[self.kind]:
            ok = ", ".join(sorted(_KIND_ACTIONS[self.kind]))
            raise ValueError(f"action {self.action!r} does not fit kind {self.kind!r}; use one of: {ok}")
        need: dict[str, tuple[str, ...]] = {
            "phrases": ("phrases",),
            "pattern": ("pattern",),
            "claim": ("phrases",),
            "disclaimer": ("disclaimer", "triggers"),
            "recommendation": ("condition",),
            "contact": ("contact",),
        }
        for name in need[self.kind]:
            if not getattr(self, name):
                raise ValueError(f"kind {self.kind!r} needs a non-empty `{name}`; add it")
        if self.action == "rewrite" and not (self.rewrite and self.rewrite.strip()):
            raise ValueError("action 'rewrite' needs `rewrite:` with the approved phrasing; add it")
        if self.action != "rewrite" and self.rewrite is not None:
            raise ValueError(f"`rewrite` is only used by action 'rewrite', not {self.action!r}; remove it")
        return self

    def all_phrases(self) -> list[str]:
        """Every literal the phrase matcher must look for on behalf of this rule."""
        out: list[str] = []
        for group in (self.phrases, self.exceptions, self.triggers, self.satisfied_by):
            out.extend(group or ())
        if self.kind == "disclaimer" and not self.satisfied_by and self.disclaimer:
            out.append(self.disclaimer)
        return out


class RuleFile(_Model):
    """A file under ``rules/``: a list of rules and nothing else (comments are free)."""

    rules: list[dict[str, Any]] = Field(min_length=1)
