"""The declared customer schema: which fields a customer has, how sensitive each is, what it holds.

The schema is data (``config/store/customer_schema.yaml``) so that a deployment can
add a field without code, but it is checked hard at load: a field that holds an
identifier must be encrypted, names are unique and not reserved, patterns compile.
Rows from files and API calls are untrusted input, so they go through pydantic
models built from the schema; a refusal names the field and the reason but never
echoes the value (it may be a secret).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from appliance.masking.entities import ENTITY_TYPES
from appliance.store.errors import RecordInvalid, SchemaError

__all__ = [
    "CORE_COLUMNS",
    "ENCRYPTED",
    "FREE_TEXT",
    "SCHEMA_FILE",
    "SENSITIVITIES",
    "SPEAKERS",
    "CustomerRecord",
    "CustomerSchema",
    "EventRecord",
    "FieldSpec",
    "MessageRecord",
]

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "config" / "store" / "customer_schema.yaml"

SENSITIVITIES = ("public", "internal", "sensitive", "secret")
#: Classes whose values are encrypted at rest.
ENCRYPTED = frozenset({"sensitive", "secret"})
#: ``entity`` of a field whose text the masking engine scans for any entity.
FREE_TEXT = "free_text"
#: Columns every customer has; a declared field may not take these names.
CORE_COLUMNS = ("id", "external_id", "region", "created")
SPEAKERS = ("customer", "agent", "bot", "system")

_DEFAULT_MAX_LENGTH = 256
_MAX_DETAILS_BYTES = 2048


# -- the YAML file (untrusted: validated with pydantic) --------------------------------------------
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _FieldIn(_In):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    type: Literal["string", "date", "bool", "int", "number", "choice"]
    sensitivity: Literal["public", "internal", "sensitive", "secret"]
    required: bool = False
    entity: str | None = None
    pattern: str | None = None
    max_length: int | None = Field(None, ge=1, le=65_536)
    choices: tuple[str, ...] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> _FieldIn:
        if self.name in CORE_COLUMNS:
            raise ValueError(f"the name {self.name!r} is reserved for a core column; rename the field")
        if self.entity is not None:
            if self.entity != FREE_TEXT and self.entity not in ENTITY_TYPES:
                raise ValueError(
                    f"entity {self.entity!r} is not a masking entity type; use one of "
                    f"{', '.join(sorted(ENTITY_TYPES))}, or {FREE_TEXT}, or leave it out"
                )
            if self.type != "string" and not (self.type == "date" and self.entity == "DATE_OF_BIRTH"):
                raise ValueError(f"a {self.type} field cannot hold entity {self.entity}; make it a string")
            if self.sensitivity not in ENCRYPTED:
                raise ValueError(
                    f"it holds {self.entity} but is declared {self.sensitivity}, which is stored "
                    "unencrypted; declare it sensitive or secret"
                )
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("a choice field needs `choices: [...]`, and only a choice field may have them")
        if self.pattern is not None:
            if self.type != "string":
                raise ValueError("only string fields may have a pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern does not compile ({exc}); fix the regular expression") from None
        if self.max_length is not None and self.type != "string":
            raise ValueError("only string fields may have max_length")
        return self


class _EventsIn(_In):
    kinds: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")], ...] = Field(
        min_length=1
    )
    channels: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,15}$")], ...] = Field(
        min_length=1
    )


class _SchemaIn(_In):
    version: int = Field(ge=1)
    regions: tuple[Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")], ...] = Field(min_length=1)
    fields: tuple[_FieldIn, ...] = Field(min_length=1)
    events: _EventsIn

    @field_validator("fields")
    @classmethod
    def _unique(cls, fields: tuple[_FieldIn, ...]) -> tuple[_FieldIn, ...]:
        seen: set[str] = set()
        for f in fields:
            if f.name in seen:
                raise ValueError(f"field {f.name!r} is declared twice; keep one")
            seen.add(f.name)
        return fields


# -- internal values --------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldSpec:
    """One declared field (see the comments in ``config/store/customer_schema.yaml``)."""

    name: str
    type: str
    sensitivity: str
    required: bool
    entity: str | None
    pattern: str | None
    max_length: int | None
    choices: tuple[str, ...] | None
    description: str

    @property
    def encrypted(self) -> bool:
        """Whether values of this field are sealed with a field key before they reach the database."""
        return self.sensitivity in ENCRYPTED

    def encode(self, value: Any) -> str:
        """The canonical text form a validated value is stored (and encrypted) as."""
        if self.type == "bool":
            return "true" if value else "false"
        if self.type == "date":
            return value.isoformat()
        if self.type == "number":
            return repr(float(value))  # shortest text that reads back as the same double
        return str(value)

    def decode(self, text: str) -> Any:
        """The Python value of a stored text (the inverse of :meth:`encode`)."""
        if self.type == "bool":
            return text == "true"
        if self.type == "date":
            return date.fromisoformat(text)
        if self.type == "int":
            return int(text)
        if self.type == "number":
            return float(text)
        return text


@dataclass(frozen=True)
class CustomerRecord:
    """A validated customer: core columns plus the declared fields present, in canonical text form."""

    external_id: str
    region: str
    created: datetime | None
    values: Mapping[str, str]


@dataclass(frozen=True)
class EventRecord:
    """A validated event; exactly one of ``customer_id`` and ``external_id`` names the customer."""

    customer_id: int | None
    external_id: str | None
    ts: datetime
    kind: str
    channel: str | None
    amount: float | None
    currency: str | None
    details: Mapping[str, Any]
    text: str | None = None


@dataclass(frozen=True)
class MessageRecord:
    """A validated transcript message."""

    ts: datetime
    speaker: str
    text: str


# -- row models --------------------------------------------------------------------------------------
_ROW_CONFIG = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True, str_strip_whitespace=True)


def _shape(pattern: str, entity: str | None) -> AfterValidator:
    compiled = re.compile(pattern)
    what = f"a {entity} value" if entity and entity != FREE_TEXT else "the declared shape"

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise PydanticCustomError(
                "pattern_mismatch",
                "does not look like {what} (declared pattern {pattern})",
                {"what": what, "pattern": pattern},
            )
        return value

    return AfterValidator(check)


def _annotation(spec: FieldSpec) -> Any:
    if spec.type == "string":
        base: Any = Annotated[
            str, StringConstraints(min_length=1, max_length=spec.max_length or _DEFAULT_MAX_LENGTH)
        ]
        if spec.pattern is not None:
            base = Annotated[base, _shape(spec.pattern, spec.entity)]
        return base
    if spec.type == "date":
        return date
    if spec.type == "bool":
        return bool
    if spec.type == "int":
        return Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
    if spec.type == "number":
        return Annotated[float, Field(allow_inf_nan=False)]
    assert spec.choices is not None
    return Literal[spec.choices]


def _json_object(value: Any) -> Any:
    """CSV cells hold ``details`` as JSON text; JSONL and Parquet hold an object (or nothing)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise PydanticCustomError(
                "json_invalid", "is not valid JSON; give an object such as {}"
            ) from None
    return {} if value is None else value


def _small(details: dict[str, Any]) -> dict[str, Any]:
    # A cheap upper bound first: serialising every event's details twice showed up in imports.
    bound = sum(len(k) + (len(v) * 6 if isinstance(v, str) else 24) + 8 for k, v in details.items())
    if (
        bound > _MAX_DETAILS_BYTES
        and len(json.dumps(details, ensure_ascii=False).encode()) > _MAX_DETAILS_BYTES
    ):
        raise PydanticCustomError(
            "too_large", "is larger than {n} bytes; keep details small", {"n": _MAX_DETAILS_BYTES}
        )
    for v in details.values():
        if isinstance(v, float) and not math.isfinite(v):
            raise PydanticCustomError("finite", "holds NaN or infinity; give finite numbers")
    return details


_Scalar = str | int | float | bool | None
_Details = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64)], _Scalar],
    BeforeValidator(_json_object),
    AfterValidator(_small),
]


def _reason(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "is required but missing or empty"
    if kind == "extra_forbidden":
        return "is not a declared field; remove the column or declare it in config/store/customer_schema.yaml"
    return str(err["msg"])


def _raise(exc: ValidationError) -> RecordInvalid:
    err = exc.errors(include_url=False, include_input=False)[0]
    loc = [str(p) for p in err["loc"]]
    field = loc[0] if loc else None
    if err["type"] == "aware_datetime" or (err["type"].startswith("datetime") and field in ("ts", "created")):
        return RecordInvalid(
            field, f"{err['msg']}; give an ISO 8601 time with a zone, e.g. 2024-05-01T08:00:00Z"
        )
    if len(loc) > 1:
        return RecordInvalid(field, f"{'.'.join(loc[1:])} {_reason(err)}")
    return RecordInvalid(field, _reason(err))


def _present(row: Mapping[str, Any]) -> dict[str, Any]:
    """Drop absent values: None and blank strings (an empty CSV cell means "not given")."""
    out = {}
    for k, v in row.items():
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        if isinstance(v, float) and math.isnan(v):  # pandas / Arrow nulls
            continue
        out[str(k)] = v
    return out


class CustomerSchema:
    """The loaded schema; builds the row models once and validates rows against them."""

    def __init__(
        self,
        version: int,
        regions: tuple[str, ...],
        fields: tuple[FieldSpec, ...],
        event_kinds: tuple[str, ...],
        channels: tuple[str, ...],
    ) -> None:
        self.version = version
        self.regions = regions
        self.fields = fields
        self.event_kinds = event_kinds
        self.channels = channels
        self._by_name = {f.name: f for f in fields}
        # Row models are built from data, so their field types are values here (hence Any).
        customer: dict[str, Any] = {
            "external_id": (
                Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f]+$")],
                ...,
            ),
            "region": (Literal[regions], ...),
            "created": (AwareDatetime | None, None),
        }
        for f in fields:
            customer[f.name] = (_annotation(f), ...) if f.required else (_annotation(f) | None, None)
        event: dict[str, Any] = {
            "customer_id": (Annotated[int, Field(ge=1, strict=True)] | None, None),
            "external_id": (Annotated[str, StringConstraints(min_length=1, max_length=64)] | None, None),
            "ts": (AwareDatetime, ...),
            "kind": (Literal[event_kinds], ...),
            "channel": (Literal[channels] | None, None),
            "amount": (Annotated[float, Field(allow_inf_nan=False)] | None, None),
            "currency": (Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None, None),
            "details": (_Details, {}),
            # A search query or telemetry code (keyword features match it); the node masks identifiers
            # in it before it is stored, so it holds no raw PII.
            "text": (Annotated[str, StringConstraints(min_length=1, max_length=256)] | None, None),
        }
        message: dict[str, Any] = {
            "ts": (AwareDatetime, ...),
            "speaker": (Literal[SPEAKERS], ...),
            "text": (Annotated[str, StringConstraints(min_length=1, max_length=8000)], ...),
        }
        self._customer: Any = create_model("CustomerRow", __config__=_ROW_CONFIG, **customer)
        self._event: Any = create_model("EventRow", __config__=_ROW_CONFIG, **event)
        self._message: Any = create_model(
            "MessageRow", __config__=ConfigDict(extra="forbid", frozen=True), **message
        )

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path = SCHEMA_FILE) -> CustomerSchema:
        """Read and check a schema file; every problem names the field and how to fix it."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SchemaError(
                f"customer schema {path} cannot be read ({exc.strerror}); fix the path"
            ) from exc
        except yaml.YAMLError as exc:
            raise SchemaError(f"customer schema {path} is not valid YAML: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "customer schema") -> CustomerSchema:
        try:
            parsed = _SchemaIn.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors(include_url=False):
                loc = list(err["loc"])
                where = ".".join(str(p) for p in loc)
                if (
                    len(loc) >= 2
                    and loc[0] == "fields"
                    and isinstance(loc[1], int)
                    and isinstance(data, dict)
                ):
                    try:
                        where = f"field {data['fields'][loc[1]]['name']!r}" + "".join(
                            f".{p}" for p in loc[2:]
                        )
                    except (KeyError, IndexError, TypeError):
                        pass
                msg = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{where}: {msg}")
            raise SchemaError(f"{source} is invalid:\n  " + "\n  ".join(problems)) from None
        fields = tuple(
            FieldSpec(
                f.name,
                f.type,
                f.sensitivity,
                f.required,
                f.entity,
                f.pattern,
                f.max_length,
                f.choices,
                f.description,
            )
            for f in parsed.fields
        )
        return cls(parsed.version, parsed.regions, fields, parsed.events.kinds, parsed.events.channels)

    # -- lookup -------------------------------------------------------------------------------------
    def field(self, name: str) -> FieldSpec | None:
        return self._by_name.get(name)

    @property
    def encrypted_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.encrypted)

    def entities(self) -> dict[str, str]:
        """Field name → entity type (or ``free_text``) for the fields that hold one: the masking map."""
        return {f.name: f.entity for f in self.fields if f.entity is not None}

    # -- validation ---------------------------------------------------------------------------------
    def validate_customer(self, row: Mapping[str, Any]) -> CustomerRecord:
        """Check one customer row; raises :class:`RecordInvalid` naming the first bad field."""
        if not isinstance(row, Mapping):
            raise RecordInvalid(None, "is not an object of field names to values")
        try:
            m = self._customer.model_validate(_present(row))
        except ValidationError as exc:
            raise _raise(exc) from None
        values = {}
        for f in self.fields:
            v = getattr(m, f.name)
            if v is not None:
                values[f.name] = f.encode(v)
        created = m.created.astimezone(UTC) if m.created is not None else None
        return CustomerRecord(m.external_id, m.region, created, values)

    def validate_event(self, row: Mapping[str, Any]) -> EventRecord:
        """Check one event; it names its customer by ``customer_id`` or by ``external_id``."""
        if not isinstance(row, Mapping):
            raise RecordInvalid(None, "is not an object of field names to values")
        try:
            m = self._event.model_validate(_present(row))
        except ValidationError as exc:
            raise _raise(exc) from None
        if (m.customer_id is None) == (m.external_id is None):
            raise RecordInvalid(
                "external_id", "name the customer with exactly one of external_id or customer_id"
            )
        return EventRecord(
            m.customer_id,
            m.external_id,
            m.ts.astimezone(UTC),
            m.kind,
            m.channel,
            m.amount,
            m.currency,
            dict(m.details),
            m.text,
        )

    def validate_message(self, row: Mapping[str, Any]) -> MessageRecord:
        if not isinstance(row, Mapping):
            raise RecordInvalid(None, "is not an object with ts, speaker and text")
        try:
            m = self._message.model_validate(dict(row))
        except ValidationError as exc:
            raise _raise(exc) from None
        if not m.text.strip():
            raise RecordInvalid("text", "is blank; a message needs words")
        return MessageRecord(m.ts.astimezone(UTC), m.speaker, m.text)
