"""Redaction: the value is removed (or replaced by a fixed marker such as ``[已屏蔽]``).

A fixed replacement keeps no trace of the type or the length, which is what a profile wants for
values nobody downstream may even know existed.
"""

from __future__ import annotations

from collections.abc import Sequence

from appliance.masking.operators.base import Operator, OperatorContext, OperatorParams

__all__ = ["RedactOperator"]


class RedactParams(OperatorParams):
    replacement: str = ""


class RedactOperator(Operator[RedactParams]):
    name = "redact"
    Params = RedactParams

    def apply(self, value: str, entity_type: str, ctx: OperatorContext) -> str:
        return self.params.replacement

    def apply_many(self, values: Sequence[str], entity_type: str, ctx: OperatorContext) -> list[str]:
        return [self.params.replacement] * len(values)
