"""The small interface every masking operator implements, and the key material operators share.

Operators are configured once (from a profile, at load) and then called on the hot path with a
value, its entity type and a context; validating parameters up front is what lets ``apply`` stay a
few lines with no checks. The context carries the tenant's keys so one configured operator serves
every tenant, and the subject/today values that only some operators read.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar, Generic, TypeVar, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, ValidationError

from appliance.masking.errors import MaskingError, ProfileError

__all__ = ["MaskingKeys", "Operator", "OperatorContext", "OperatorParams"]

_MASTER_LEN = 32
#: HKDF info labels: distinct per purpose, so no two operators ever share a key.
_INFO_PSEUDONYM = b"appliance/masking/v1/pseudonym-hmac-sha256"
_INFO_TOKEN = b"appliance/masking/v1/token-aes-siv-512"
_INFO_FPE = b"appliance/masking/v1/fpe-ff3-1-aes-256"


def _hkdf(master: bytes, info: bytes, tenant: str, length: int) -> bytes:
    # The tenant goes into ``info`` (not the salt) after a NUL, so "a" + label and label + "a" differ.
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=info + b"\x00" + tenant.encode()
    ).derive(master)


@dataclass(frozen=True, slots=True)
class MaskingKeys:
    """One tenant's masking keys; ``repr`` never shows them (they end up in tracebacks otherwise)."""

    pseudonym_key: bytes = field(repr=False)
    token_key: bytes = field(repr=False)
    fpe_key: bytes = field(repr=False)
    tenant: str = ""

    def __post_init__(self) -> None:
        if len(self.pseudonym_key) != 32:
            raise MaskingError("pseudonym_key must be 32 bytes; derive keys with MaskingKeys.derive()")
        if len(self.token_key) != 64:
            raise MaskingError(
                "token_key must be 64 bytes (AES-SIV-512); derive keys with MaskingKeys.derive()"
            )
        if len(self.fpe_key) not in (16, 24, 32):
            raise MaskingError("fpe_key must be 16, 24 or 32 bytes; derive keys with MaskingKeys.derive()")

    @classmethod
    def derive(cls, master: bytes, tenant: str) -> MaskingKeys:
        """Derive the three keys from one 32-byte master key, so the node stores (and rotates) one secret.

        Tenants get unrelated keys from the same master: pseudonyms join within a tenant, never across.
        """
        if len(master) != _MASTER_LEN:
            raise MaskingError(
                f"the masking master key must be {_MASTER_LEN} bytes, got {len(master)}; "
                "create it with `appliance init` (or os.urandom(32))"
            )
        return cls(
            pseudonym_key=_hkdf(master, _INFO_PSEUDONYM, tenant, 32),
            token_key=_hkdf(master, _INFO_TOKEN, tenant, 64),
            fpe_key=_hkdf(master, _INFO_FPE, tenant, 32),
            tenant=tenant,
        )


@dataclass(frozen=True, slots=True)
class OperatorContext:
    """What an operator may read besides the value: keys, the subject (date shifting), today (age bands)."""

    keys: MaskingKeys
    subject: str | None = None
    today: date = field(default_factory=date.today)


class OperatorParams(BaseModel):
    """Base of every operator's parameter model: unknown parameters are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=OperatorParams)


class Operator(ABC, Generic[P]):
    """One masking transformation, configured once with validated parameters.

    Subclasses set ``name`` (the word profiles use) and ``Params`` (a pydantic model), and implement
    ``apply``. ``needs_subject`` tells callers that outputs depend on the subject, so they must not
    share cached results across subjects.
    """

    name: ClassVar[str]
    Params: ClassVar[type[OperatorParams]] = OperatorParams
    needs_subject: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        self.params: P = cast(P, self.validate_params(params or {}))

    @classmethod
    def validate_params(cls, params: Mapping[str, Any]) -> OperatorParams:
        """Check ``params`` once, at load; ProfileError names the parameter and what it accepts."""
        try:
            return cls.Params.model_validate(dict(params))
        except ValidationError as exc:
            allowed = ", ".join(sorted(cls.Params.model_fields)) or "none"
            problems = []
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"]) or "params"
                if err["type"] == "extra_forbidden":
                    problems.append(f"unknown parameter {key!r} (operator {cls.name!r} takes: {allowed})")
                else:
                    problems.append(f"parameter {key!r}: {err['msg']}")
            raise ProfileError(f"operator {cls.name!r}: " + "; ".join(problems)) from exc

    @abstractmethod
    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        """Return the masked form of ``value`` (one detected ``entity_type``)."""

    def apply_many(self, values: Sequence[str], entity_type: str, ctx: OperatorContext) -> list[str]:
        """Mask many values of one type; operators with a cheaper bulk form override this."""
        apply = self.apply
        return [apply(v, entity_type, ctx) for v in values]

    def describe(self) -> dict[str, Any]:
        """Operator name and its full parameters (defaults filled): what canonical profile JSON records."""
        return {"operator": self.name, "params": self.params.model_dump(mode="json")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"
