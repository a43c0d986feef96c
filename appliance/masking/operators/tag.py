"""Type tag: the value becomes ``<CN_MOBILE>``, so a reader still knows *what* was said.

The template may only use ``{type}``: anything else would be a place for a value to leak into.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import field_validator

from appliance.masking.operators.base import Operator, OperatorContext, OperatorParams

__all__ = ["TagOperator"]


class TagParams(OperatorParams):
    template: str = "<{type}>"

    @field_validator("template")
    @classmethod
    def _only_type_field(cls, v: str) -> str:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as exc:
            raise ValueError(f"template {v!r} is not a format string ({exc}); e.g. '<{{type}}>'") from exc
        if fields - {"type"}:
            raise ValueError(f"template {v!r} may use only {{type}}, e.g. '<{{type}}>' or '[{{type}}]'")
        return v


class TagOperator(Operator[TagParams]):
    name = "tag"
    Params = TagParams

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        super().__init__(params)
        self._cache: dict[str, str] = {}

    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        tag = self._cache.get(entity_type)
        if tag is None:
            tag = self._cache[entity_type] = self.params.template.format(type=entity_type)
        return tag

    def apply_many(self, values: Sequence[str], entity_type: str, ctx: OperatorContext) -> list[str]:
        return [self.apply("", entity_type, ctx)] * len(values)
