"""Filters candidate recommendations through the library's recommendation rules.

Conditions are structured data (see :mod:`policy.rule`), compiled here into small frozen node trees and
evaluated with three-valued logic: ``is_true`` on a missing flag is false (an item without
``alcohol`` is not alcohol); any other test on a missing attribute (without a ``default``) or on a value
of the wrong type is *unknown*; ``all``/``any``/``not`` follow Kleene logic; a rule whose condition ends
unknown applies its ``on_unknown`` (``block`` by default). So a food item without sugar data is not
recommended in a region that limits sugar, while an item that is plainly not food passes.
Nothing is ever evaluated as code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from policy.errors import PolicyError
from policy.library import PolicyLibrary
from policy.rule import AllOf, AnyOf, Compare, NotOf, Rule

__all__ = ["MAX_ITEMS", "RecommendationDecision", "filter_recommendations", "holds"]

MAX_ITEMS = 10_000
_MISSING = object()


@dataclass(frozen=True)
class RecommendationDecision:
    """Items to show, items withheld with the rules that withheld them, and the library version."""

    allowed: list[Mapping[str, Any]]
    blocked: list[dict[str, Any]]  # {"item": item, "reasons": [{"rule", "message", "source"}]}
    policy_version: str


def _lookup(path: str, item: Mapping[str, Any], customer: Mapping[str, Any]) -> Any:
    head, *rest = path.split(".")
    value: Any = item if head == "item" else customer
    for part in rest:
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _compare(c: Compare, item: Mapping[str, Any], customer: Mapping[str, Any]) -> bool | None:
    value = _lookup(c.attr, item, customer)
    if c.op == "exists":
        return value is not _MISSING and value is not None
    if c.op == "missing":
        return value is _MISSING or value is None
    if value is _MISSING or value is None:
        if c.op == "is_true" and c.default is None:
            return False  # a flag nobody set is not set: items without `alcohol` are not alcohol
        if c.default is None:
            return None
        value = c.default
    if c.op in ("is_true", "is_false"):
        if not isinstance(value, bool):
            return None
        return value if c.op == "is_true" else not value
    if c.op in (">", ">=", "<", "<="):
        left, right = _number(value), _number(c.value)
        if left is None or right is None:
            return None
        return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[c.op]
    if c.op in ("in", "not_in"):
        if isinstance(value, Mapping | list):
            return None
        options = c.value if isinstance(c.value, list) else []
        inside = value in options
        return inside if c.op == "in" else not inside
    equal = isinstance(value, bool) == isinstance(c.value, bool) and value == c.value
    return equal if c.op == "==" else not equal


def holds(condition: object, item: Mapping[str, Any], customer: Mapping[str, Any]) -> bool | None:
    """Three-valued truth of ``condition`` for this item and customer (``None``: unknown)."""
    if isinstance(condition, Compare):
        return _compare(condition, item, customer)
    if isinstance(condition, AllOf):
        results = [holds(c, item, customer) for c in condition.all]
        if any(r is False for r in results):
            return False
        return None if any(r is None for r in results) else True
    if isinstance(condition, AnyOf):
        results = [holds(c, item, customer) for c in condition.any]
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if isinstance(condition, NotOf):
        inner = holds(condition.not_, item, customer)
        return None if inner is None else not inner
    raise PolicyError(f"unknown condition node {type(condition).__name__}")  # pragma: no cover


def _blocks(rule: Rule, item: Mapping[str, Any], customer: Mapping[str, Any]) -> tuple[bool, bool]:
    """(blocks, because the data was incomplete)."""
    verdict = holds(rule.condition, item, customer)
    if verdict is None:
        return rule.on_unknown == "block", True
    return verdict, False


def filter_recommendations(
    library: PolicyLibrary,
    customer: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    *,
    region: str,
    industry: str,
    channel: str | None = None,
    at: datetime | None = None,
) -> RecommendationDecision:
    """Split ``items`` into allowed and blocked for ``customer`` in ``region`` (order kept).

    ``channel=None`` means the channel is not known: channel-scoped rules bind too (fail closed).
    """
    ctx = library.context(region=region, industry=industry, channel=channel, at=at)
    if not isinstance(customer, Mapping):
        raise PolicyError("customer must be a mapping of attributes (age, consent, ...)")
    if len(items) > MAX_ITEMS:
        raise PolicyError(f"{len(items)} items, over the {MAX_ITEMS}-item limit; filter them in batches")
    rules = library.applicable(ctx, ("recommendation",))
    allowed: list[Mapping[str, Any]] = []
    blocked: list[dict[str, Any]] = []
    for n, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise PolicyError(f"item #{n} is {type(item).__name__}, not a mapping of attributes")
        reasons: list[dict[str, str]] = []
        for rule in rules:
            hit, unknown = _blocks(rule, item, customer)
            if hit:
                message = rule.message or rule.title or rule.id
                if unknown:
                    message = f"{message} (attributes needed to decide are missing, so the item is withheld)"
                reasons.append({"rule": rule.id, "message": message, "source": rule.source})
        if reasons:
            blocked.append({"item": item, "reasons": reasons})
        else:
            allowed.append(item)
    return RecommendationDecision(allowed, blocked, library.version_id)
