"""Masking operators: one class per module behind the small ``Operator`` interface (as Presidio does).

Profiles name operators by ``Operator.name``; :func:`create_operator` validates the parameters and
returns a configured instance, so a typo in a profile fails at load, not on a customer's message.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from appliance.masking.errors import ProfileError
from appliance.masking.operators.base import MaskingKeys, Operator, OperatorContext, OperatorParams
from appliance.masking.operators.dateshift import DateShiftOperator
from appliance.masking.operators.fpe import FpeOperator
from appliance.masking.operators.generalize import GeneralizeOperator
from appliance.masking.operators.partial import PartialOperator
from appliance.masking.operators.pseudonym import PseudonymOperator
from appliance.masking.operators.redact import RedactOperator
from appliance.masking.operators.tag import TagOperator
from appliance.masking.operators.token import TokenOperator, detokenize

__all__ = [
    "OPERATORS",
    "DateShiftOperator",
    "FpeOperator",
    "GeneralizeOperator",
    "MaskingKeys",
    "Operator",
    "OperatorContext",
    "OperatorParams",
    "PartialOperator",
    "PseudonymOperator",
    "RedactOperator",
    "TagOperator",
    "TokenOperator",
    "create_operator",
    "detokenize",
]

#: Operator classes by the name profiles use.
OPERATORS: Mapping[str, type[Operator[Any]]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            RedactOperator,
            TagOperator,
            PartialOperator,
            PseudonymOperator,
            TokenOperator,
            FpeOperator,
            GeneralizeOperator,
            DateShiftOperator,
        )
    }
)


def create_operator(name: str, params: Mapping[str, Any] | None = None) -> Operator[Any]:
    """A configured operator; ProfileError names the unknown operator or parameter and the choices."""
    cls = OPERATORS.get(name)
    if cls is None:
        raise ProfileError(f"unknown operator {name!r}; use one of: {', '.join(sorted(OPERATORS))}")
    return cls(params)
