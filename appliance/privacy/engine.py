"""The query engine: computes a ``QueryPlan`` over encrypted columns with public keys only.

How a query is computed, and why:

- Predicates on visible attributes and GROUP BY pick whole segments (see ``columns``): free.
- Predicates on encrypted 0/1 flags multiply the selected values by the flag ciphertext, slot by slot
  (``= 0`` uses ``validity - flag``, or ``1 - flag`` for a flag without nulls). Each flag costs one
  multiplicative level; the engine refuses (``ResultUnsafe``) a plan that needs more levels than the
  parameters give, or whose declared bounds say the result could overflow, before computing anything.
- Ciphertexts are combined with additions first and each encrypted output of each group gets ONE
  rotation-sum (12 rotations for CKKS, 13 for BFV), never the naive sum-per-ciphertext. Products are left
  unrelinearised while they are added up and relinearised once, so a sum of squares over a million rows
  costs one relinearisation, not 245.
- Nothing is divided or square-rooted here: MEAN, VARIANCE and STDDEV are returned as encrypted sums
  (sum, sum of squares, count) plus a ``finish`` recipe, and the custodian finishes them after decryption
  (sample variance with the n/(n-1) correction, as pandas does).
- The group size reported for the guards is public (the rows of the selected segments) unless a flag
  predicate selects rows, in which case it is an encrypted count as well.

Weights of DOT (``Aggregate.weights``, or ``weights_ref`` naming an array the node passes in ``weights``)
are aligned to the table's rows in ascending row-id order; a ``(row_ids, weights)`` pair is aligned by id.
Paillier columns answer lookups only.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import tenseal.sealapi as sa

from appliance.privacy.columns import EncryptedColumn, PaillierColumn, Segment, VisibleValue
from appliance.privacy.errors import (
    CiphertextInvalid,
    KeyUnavailable,
    QueryInvalid,
    QueryUnsupported,
    ResultUnsafe,
)
from appliance.privacy.keys import HEContext, PublicContexts, Scheme
from appliance.privacy.plan import Aggregate, Predicate, QueryPlan

__all__ = [
    "Cell",
    "EncryptedGroup",
    "EncryptedRecord",
    "EncryptedResult",
    "EncryptedTerm",
    "Finish",
    "QueryEngine",
    "WeightVector",
    "plan_digest",
]

Finish = Literal["value", "count", "mean", "variance", "stddev", "histogram", "score"]
WeightVector = np.ndarray | tuple[np.ndarray, np.ndarray]
_RESULT_FORMAT = "appliance-encrypted-result/1"
_MARGIN_BITS = 1  # CKKS: |result| * scale < modulus / 2 (the bounds are worst cases already)
_MAX_GROUPS = 100_000


def plan_digest(plan: QueryPlan) -> str:
    """SHA-256 of the plan's canonical JSON (what the ledger records about a query)."""
    return hashlib.sha256(
        json.dumps(plan.as_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")
    ).hexdigest()


@dataclass(frozen=True)
class EncryptedTerm:
    """One encrypted number (a rotation-summed ciphertext, or a Paillier record) and its SHA-256."""

    scheme: str
    data: bytes = field(repr=False)
    digest: str

    @classmethod
    def of(cls, scheme: str, data: bytes) -> EncryptedTerm:
        return cls(scheme, data, hashlib.sha256(data).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "sha256": self.digest, "data": base64.b64encode(self.data).decode()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EncryptedTerm:
        return cls(str(d["scheme"]), base64.b64decode(d["data"], validate=True), str(d["sha256"]))


@dataclass(frozen=True)
class Cell:
    """One output of one group: how the custodian finishes it from the group's terms.

    ``inputs`` maps a role (``sum``, ``sumsq``, ``count``, ``value``, ``score``, ``bias``, ``b0``...) to a
    term id of the group (a string) or a public number (a count the server knows, the score's bias).
    Recipes: ``value`` = the term; ``count`` = the count; ``mean`` = sum / count; ``variance`` =
    (sumsq - sum^2 / n) / (n - 1); ``stddev`` = its square root; ``histogram`` = the counts b0..bk-1 of the
    buckets ``edges``; ``score`` = score + bias * count, divided by count when ``mean`` is 1.
    """

    output: str
    func: str
    finish: Finish
    inputs: tuple[tuple[str, str | int | float], ...]
    edges: tuple[float, ...] = ()

    def input(self, role: str) -> str | int | float | None:
        return dict(self.inputs).get(role)

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "func": self.func,
            "finish": self.finish,
            "inputs": [[k, v] for k, v in self.inputs],
            "edges": list(self.edges),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Cell:
        return cls(
            str(d["output"]),
            str(d["func"]),
            d["finish"],
            tuple((str(k), v) for k, v in d["inputs"]),
            tuple(float(e) for e in d["edges"]),
        )


@dataclass(frozen=True)
class EncryptedGroup:
    """One group: its key (values of the GROUP BY attributes), size, encrypted terms and outputs.

    ``size`` is the public row count, or the id of the term holding the encrypted count when a flag
    predicate selects the rows. An empty group has size 0 and no terms.
    """

    key: tuple[VisibleValue, ...]
    size: int | str
    terms: tuple[tuple[str, EncryptedTerm], ...]
    cells: tuple[Cell, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": list(self.key),
            "size": self.size,
            "terms": [[k, t.to_dict()] for k, t in self.terms],
            "cells": [c.to_dict() for c in self.cells],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EncryptedGroup:
        return cls(
            tuple(d["key"]),
            d["size"],
            tuple((str(k), EncryptedTerm.from_dict(t)) for k, t in d["terms"]),
            tuple(Cell.from_dict(c) for c in d["cells"]),
        )


@dataclass(frozen=True)
class EncryptedRecord:
    """A Paillier lookup: the record's ciphertext (``{"c": ..., "e": exponent}`` as canonical JSON)."""

    row_id: int
    term: EncryptedTerm

    def to_dict(self) -> dict[str, Any]:
        return {"row_id": self.row_id, "term": self.term.to_dict()}


@dataclass(frozen=True)
class EncryptedResult:
    """What the engine hands on: ciphertexts, their digests, group sizes and the finishing recipes."""

    key_id: str
    table: str
    plan_digest: str
    group_by: tuple[str, ...]
    outputs: tuple[str, ...]
    groups: tuple[EncryptedGroup, ...] = ()
    lookup_column: str | None = None
    records: tuple[EncryptedRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": _RESULT_FORMAT,
            "key_id": self.key_id,
            "table": self.table,
            "plan_sha256": self.plan_digest,
            "group_by": list(self.group_by),
            "outputs": list(self.outputs),
            "groups": [g.to_dict() for g in self.groups],
            "lookup_column": self.lookup_column,
            "records": [r.to_dict() for r in self.records],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EncryptedResult:
        try:
            if d["format"] != _RESULT_FORMAT:
                raise ValueError(d["format"])
            return cls(
                str(d["key_id"]),
                str(d["table"]),
                str(d["plan_sha256"]),
                tuple(d["group_by"]),
                tuple(d["outputs"]),
                tuple(EncryptedGroup.from_dict(g) for g in d["groups"]),
                d["lookup_column"],
                tuple(
                    EncryptedRecord(int(r["row_id"]), EncryptedTerm.from_dict(r["term"]))
                    for r in d["records"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CiphertextInvalid(
                "an encrypted result cannot be parsed (altered or truncated); recompute the query"
            ) from exc

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedResult:
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CiphertextInvalid(
                "an encrypted result cannot be parsed (altered or truncated); recompute the query"
            ) from exc
        return cls.from_dict(doc)

    @property
    def digest(self) -> str:
        """SHA-256 of ``to_bytes()``: what the ledger records about the result."""
        return hashlib.sha256(self.to_bytes()).hexdigest()


# --- internals: what one query needs ------------------------------------------------------------------


@dataclass(frozen=True)
class _Flag:
    column: EncryptedColumn
    allowed: frozenset[int]  # which flag values the predicates keep


@dataclass(frozen=True)
class _Term:
    """One encrypted sum to compute per group."""

    tid: str
    role: Literal["rows", "sum", "sumsq", "count", "bucket", "dot", "score"]
    scheme: Scheme
    column: EncryptedColumn | None = None
    bucket: int = 0
    agg: Aggregate | None = None


@dataclass
class _Group:
    key: tuple[VisibleValue, ...]
    segments: list[tuple[VisibleValue, ...]]
    rows: int


class _Acc:
    """Adds ciphertexts without copying the column's own (which must never be modified)."""

    def __init__(self, ev: Any) -> None:
        self.ev = ev
        self.acc: Any = None
        self.pending: Any = None

    def add(self, ct: Any, fresh: bool) -> None:
        if self.acc is not None:
            self.ev.add_inplace(self.acc, ct)
        elif fresh:
            if self.pending is not None:
                self.ev.add_inplace(ct, self.pending)
                self.pending = None
            self.acc = ct
        elif self.pending is None:
            self.pending = ct
        else:
            out = sa.Ciphertext()
            self.ev.add(self.pending, ct, out)
            self.acc, self.pending = out, None

    def result(self) -> Any:
        if self.acc is None and self.pending is not None:
            out = sa.Ciphertext()
            self.ev.negate(self.pending, out)
            self.ev.negate_inplace(out)
            return out
        return self.acc


class QueryEngine:
    """Computes plans over the encrypted columns of one table; holds public contexts only.

    ``columns``: name -> encrypted (CKKS/BFV) or Paillier column; ``visible_attributes``: the attributes
    the server may see (the columns' segmentation). ``weights``: named DOT weight vectors (for
    ``weights_ref``); ``domains``: values of visible attributes to report as (empty) groups even when no
    row has them; ``table``: the table name plans must name.
    """

    def __init__(
        self,
        public_contexts: PublicContexts,
        columns: Mapping[str, EncryptedColumn | PaillierColumn],
        visible_attributes: Sequence[str],
        *,
        table: str | None = None,
        weights: Mapping[str, WeightVector] | None = None,
        domains: Mapping[str, Sequence[VisibleValue]] | None = None,
    ) -> None:
        if not isinstance(public_contexts, PublicContexts) or public_contexts.ckks.is_private():
            raise KeyUnavailable(
                "the query engine holds public contexts only (KeyRing.public()); it was given secret keys"
            )
        self.public = public_contexts
        self.columns = dict(columns)
        self.visible = tuple(visible_attributes)
        self.table = table
        self.weights = dict(weights or {})
        self.domains = {k: list(v) for k, v in (domains or {}).items()}
        for name, col in self.columns.items():
            if col.key_id != public_contexts.key_id:
                raise KeyUnavailable(
                    f"column {name!r} is under key id {col.key_id}, the engine's public contexts are "
                    f"{public_contexts.key_id}; pass KeyRing.public({col.key_id!r}) or re-encrypt the column"
                )
            if isinstance(col, EncryptedColumn):
                hidden = [a for a in col.visible if a not in self.visible]
                if hidden:
                    raise QueryInvalid(
                        f"column {name!r} is segmented by {hidden}, which are not visible attributes "
                        f"({list(self.visible)}); re-encrypt it segmented by visible attributes only"
                    )
        self._sorted_ids: dict[str, np.ndarray] = {}

    # --- the public entry point -------------------------------------------------------------------

    def compute(self, plan: QueryPlan) -> EncryptedResult:
        """The encrypted result of ``plan``; refuses (``QueryInvalid``, ``QueryUnsupported``,
        ``ResultUnsafe``) before any ciphertext is touched."""
        if self.table is not None and plan.table != self.table:
            raise QueryInvalid(f"unknown table {plan.table!r}; this engine answers for {self.table!r}")
        if plan.lookup is not None:
            return self._lookup(plan)
        if not plan.aggregates:
            raise QueryInvalid("the query selects nothing; select an aggregate such as COUNT(*)")
        outputs = tuple(a.name for a in plan.aggregates)
        dupes = sorted({o for o in outputs if outputs.count(o) > 1})
        if dupes:
            raise QueryInvalid(f"two outputs are named {dupes[0]!r}; give one of them an alias (AS ...)")
        visible_preds, flags = self._split_where(plan.where)
        for g in plan.group_by:
            if g not in self.visible:
                raise QueryInvalid(
                    f"GROUP BY {g}: the server groups only by visible attributes ({', '.join(self.visible)})"
                )
        touched = self._he_columns(plan)
        layout = self._layout(touched + [f.column for f in flags])
        for attr in [p.column for p in visible_preds] + list(plan.group_by):
            if attr not in layout.visible:
                raise QueryInvalid(
                    f"column {layout.name!r} is not segmented by {attr!r}; re-encrypt it with {attr!r} "
                    "among its visible attributes"
                )
        flag_scheme = self._flag_scheme(flags, plan)
        nothing = any(not f.allowed for f in flags)
        groups = self._groups(layout, visible_preds, plan.group_by, nothing)
        terms, cells = self._plan_terms(plan, flag_scheme)
        weights = {t.tid: self._weight_vector(t.agg, layout) for t in terms if t.role == "dot" and t.agg}
        for term in terms:
            self._check_safe(term, flags, groups, layout, weights.get(term.tid))
        out_groups = []
        for group in groups:
            out_groups.append(self._compute_group(group, terms, cells, flags, flag_scheme, layout, weights))
        return EncryptedResult(
            self.public.key_id,
            plan.table,
            plan_digest(plan),
            tuple(plan.group_by),
            outputs,
            tuple(out_groups),
        )

    # --- validation and planning ------------------------------------------------------------------

    def _column(self, name: str) -> EncryptedColumn | PaillierColumn:
        col = self.columns.get(name)
        if col is None:
            raise QueryInvalid(
                f"unknown column {name!r}; encrypted columns: {', '.join(sorted(self.columns)) or 'none'}; "
                f"visible attributes: {', '.join(self.visible) or 'none'}"
            )
        return col

    def _he(self, name: str, func: str) -> EncryptedColumn:
        col = self._column(name)
        if isinstance(col, PaillierColumn):
            raise QueryUnsupported(
                f"{func.upper()}({name}): {name!r} is a Paillier column, which answers per-record lookups "
                "only; encrypt it under ckks or bfv for aggregates"
            )
        return col

    def _split_where(self, where: Sequence[Predicate]) -> tuple[list[Predicate], list[_Flag]]:
        visible, flags = [], []
        for p in where:
            if p.column in self.visible:
                visible.append(p)
                continue
            col = self.columns.get(p.column)
            if not isinstance(col, EncryptedColumn) or col.kind != "flag":
                flag_names = sorted(
                    n for n, c in self.columns.items() if isinstance(c, EncryptedColumn) and c.kind == "flag"
                )
                raise QueryInvalid(
                    f"WHERE {p.column}: the server can filter only on visible attributes "
                    f"({', '.join(self.visible) or 'none'}) and encrypted 0/1 flags "
                    f"({', '.join(flag_names) or 'none'}); {p.column!r} is "
                    f"{'neither' if col is None else 'an encrypted value'}"
                )
            vals = set()
            for v in p.values:
                if isinstance(v, bool) or v not in (0, 1) or not isinstance(v, int):
                    raise QueryInvalid(f"WHERE {p.column} {p.op} {v!r}: the flag {p.column!r} takes 0 or 1")
                vals.add(int(v))
            if p.op in ("=", "in"):
                allowed = frozenset(vals)
            else:
                allowed = frozenset({0, 1} - vals)
            flags.append(_Flag(col, allowed))
        merged: dict[str, _Flag] = {}
        for f in flags:  # two predicates on one flag: keep what both allow
            prev = merged.get(f.column.name)
            merged[f.column.name] = f if prev is None else _Flag(f.column, prev.allowed & f.allowed)
        # a predicate that keeps both values keeps every non-null row: a validity factor, or nothing
        return visible, [f for f in merged.values() if f.allowed != {0, 1} or f.column.nullable]

    def _he_columns(self, plan: QueryPlan) -> list[EncryptedColumn]:
        cols: list[EncryptedColumn] = []
        for a in plan.aggregates:
            if a.func == "score":
                if not a.coefficients:
                    raise QueryInvalid(f"{a.name}: SCORE needs at least one column with a coefficient")
                cols.extend(self._he(c, "score") for c, _ in a.coefficients)
            elif a.column is not None:
                cols.append(self._he(a.column, a.func))
            elif a.func != "count":
                raise QueryInvalid(f"{a.name}: {a.func.upper()} needs a column")
        return cols

    def _layout(self, cols: list[EncryptedColumn]) -> EncryptedColumn:
        if not cols:
            cols = [c for c in self.columns.values() if isinstance(c, EncryptedColumn)]
            if not cols:
                raise QueryInvalid("this engine has no encrypted column to count rows of; encrypt one first")
            return cols[0]
        first = cols[0]
        for c in cols[1:]:
            if c.layout_digest != first.layout_digest:
                raise QueryInvalid(
                    f"columns {first.name!r} ({first.rows:,} rows) and {c.name!r} ({c.rows:,} rows) have "
                    "different row layouts, so their slots do not line up; encrypt (and append) the same "
                    "rows with the same visible attributes to both"
                )
        return first

    def _flag_scheme(self, flags: list[_Flag], plan: QueryPlan) -> Scheme | None:
        if not flags:
            return None
        scheme = flags[0].column.scheme
        for f in flags[1:]:
            if f.column.scheme != scheme:
                raise QueryInvalid(
                    f"flags {flags[0].column.name!r} ({scheme}) and {f.column.name!r} ({f.column.scheme}) "
                    "are under different schemes and cannot be multiplied; encrypt both under one scheme"
                )
        for a in plan.aggregates:
            names = [c for c, _ in a.coefficients] if a.func == "score" else [a.column] if a.column else []
            for n in names:
                col = self._he(n, a.func)
                if col.scheme != scheme:
                    raise QueryInvalid(
                        f"{a.name}: {n!r} is under {col.scheme} but the flag {flags[0].column.name!r} is "
                        f"under {scheme}; a flag filters columns of its own scheme: encrypt the flag under "
                        f"{col.scheme} as well (another column)"
                    )
        return scheme

    def _groups(
        self,
        layout: EncryptedColumn,
        preds: list[Predicate],
        group_by: Sequence[str],
        nothing: bool,
    ) -> list[_Group]:
        pos = {a: i for i, a in enumerate(layout.visible)}
        for p in preds:
            seen = {type(s.key[pos[p.column]]) for s in layout.segments if s.key[pos[p.column]] is not None}
            for v in p.values:
                if seen and type(v) not in seen and not (isinstance(v, int) and seen <= {int, bool}):
                    kinds = " or ".join(sorted(t.__name__ for t in seen))
                    raise QueryInvalid(
                        f"WHERE {p.column} {p.op} {v!r}: {p.column!r} holds {kinds} values; compare it "
                        "with those"
                    )

        def keep(attr: str, value: VisibleValue) -> bool:
            for p in preds:
                if p.column != attr:
                    continue
                if value is None:
                    return False  # SQL: NULL = x and NULL != x are both unknown
                hit = value in p.values
                if (p.op in ("=", "in")) != hit:
                    return False
            return True

        selected = [s for s in layout.segments if all(keep(a, s.key[i]) for a, i in pos.items())]
        domains = []
        for g in group_by:
            values = {s.key[pos[g]] for s in layout.segments} | set(self.domains.get(g, ()))
            domains.append(sorted((v for v in values if keep(g, v)), key=_sort_key))
        size = math.prod(len(d) for d in domains)
        if size > _MAX_GROUPS:
            raise QueryInvalid(
                f"GROUP BY {', '.join(group_by)} makes {size:,} groups; group by fewer attributes"
            )
        out = []
        for key in itertools.product(*domains):
            segs = [s for s in selected if tuple(s.key[pos[g]] for g in group_by) == key]
            rows = 0 if nothing else sum(s.rows for s in segs)
            out.append(_Group(tuple(key), [] if nothing or not rows else [s.key for s in segs], rows))
        return out

    def _plan_terms(
        self, plan: QueryPlan, flag_scheme: Scheme | None
    ) -> tuple[list[_Term], list[tuple[Aggregate, Finish, dict[str, str | float], tuple[float, ...]]]]:
        terms: dict[str, _Term] = {}
        if flag_scheme is not None:
            terms["rows"] = _Term("rows", "rows", flag_scheme)

        def need(t: _Term) -> str:
            terms.setdefault(t.tid, t)
            return t.tid

        def rows() -> str:
            return "rows" if flag_scheme is not None else "$rows"  # "$rows": the public row count

        def count_of(col: EncryptedColumn) -> str:
            if col.nullable:
                return need(_Term(f"count:{col.name}", "count", col.scheme, col))
            return rows()

        cells = []
        for a in plan.aggregates:
            inputs: dict[str, str | float] = {}
            edges: tuple[float, ...] = ()
            finish: Finish
            if a.func == "count":
                finish = "count"
                inputs["count"] = rows() if a.column is None else count_of(self._he(a.column, "count"))
            elif a.func == "score":
                cols = [self._he(c, "score") for c, _ in a.coefficients]
                schemes = {c.scheme for c in cols}
                if len(schemes) > 1:
                    raise QueryInvalid(
                        f"{a.name}: SCORE mixes ckks and bfv columns; encrypt them under one scheme"
                    )
                if cols[0].scheme == "bfv" and any(float(w) != int(w) for _, w in a.coefficients):
                    raise QueryInvalid(
                        f"{a.name}: bfv columns take integer coefficients; encrypt the columns under ckks "
                        "for real coefficients"
                    )
                finish = "score"
                inputs["score"] = need(_Term(f"score:{a.name}", "score", cols[0].scheme, cols[0], agg=a))
                inputs["count"] = rows()
                inputs["bias"] = float(a.bias)
                inputs["mean"] = 1.0 if a.reduce == "mean" else 0.0
            else:
                assert a.column is not None
                col = self._he(a.column, a.func)
                if a.func == "sum":
                    finish = "value"
                    inputs["value"] = need(_Term(f"sum:{col.name}", "sum", col.scheme, col))
                elif a.func == "mean":
                    finish = "mean"
                    inputs["sum"] = need(_Term(f"sum:{col.name}", "sum", col.scheme, col))
                    inputs["count"] = count_of(col)
                elif a.func in ("variance", "stddev"):
                    finish = "variance" if a.func == "variance" else "stddev"
                    inputs["sum"] = need(_Term(f"sum:{col.name}", "sum", col.scheme, col))
                    inputs["sumsq"] = need(_Term(f"sumsq:{col.name}", "sumsq", col.scheme, col))
                    inputs["count"] = count_of(col)
                elif a.func == "histogram":
                    if col.buckets is None:
                        raise QueryInvalid(
                            f"{a.name}: column {col.name!r} has no histogram buckets; declare the bucket "
                            "edges when encrypting it (buckets=[...])"
                        )
                    finish = "histogram"
                    edges = col.buckets
                    for i in range(len(edges) - 1):
                        inputs[f"b{i}"] = need(
                            _Term(f"bucket{i}:{col.name}", "bucket", col.scheme, col, bucket=i)
                        )
                elif a.func == "dot":
                    if (a.weights is None) == (a.weights_ref is None):
                        raise QueryInvalid(f"{a.name}: DOT needs weights or weights_ref (one of them)")
                    finish = "value"
                    inputs["value"] = need(_Term(f"dot:{a.name}", "dot", col.scheme, col, agg=a))
                else:
                    raise QueryUnsupported(f"aggregate {a.func!r} is not computed by this engine")
            cells.append((a, finish, inputs, edges))
        return list(terms.values()), cells

    def _weight_vector(self, agg: Aggregate, layout: EncryptedColumn) -> np.ndarray:
        """DOT weights in ascending row-id order of the table."""
        ids = self._sorted_ids.get(layout.layout_digest)
        if ids is None:
            ids = np.sort(layout.row_ids)
            self._sorted_ids[layout.layout_digest] = ids
        if agg.weights_ref is not None:
            if agg.weights_ref not in self.weights:
                raise QueryInvalid(
                    f"{agg.name}: no weight vector named {agg.weights_ref!r}; known: "
                    f"{', '.join(sorted(self.weights)) or 'none'}"
                )
            given = self.weights[agg.weights_ref]
        else:
            given = np.asarray(agg.weights, dtype=np.float64)
        if isinstance(given, tuple):
            wid, w = np.asarray(given[0], dtype=np.int64), np.asarray(given[1], dtype=np.float64)
            order = np.argsort(wid, kind="stable")
            if len(wid) != len(ids) or not np.array_equal(wid[order], ids):
                raise QueryInvalid(
                    f"{agg.name}: the weights' row ids are not the table's {len(ids):,} row ids; give one "
                    "weight per row of the table"
                )
            w = w[order]
        else:
            w = np.asarray(given, dtype=np.float64)
            if w.shape != ids.shape:
                raise QueryInvalid(
                    f"{agg.name}: {w.size:,} weights for a table of {len(ids):,} rows; give one weight per "
                    "row, in ascending row-id order"
                )
        if not np.isfinite(w).all():
            raise QueryInvalid(f"{agg.name}: the weights must be finite numbers")
        if layout.scheme == "bfv" and not np.array_equal(w, np.round(w)):
            raise QueryInvalid(f"{agg.name}: bfv columns take integer weights; encrypt the column under ckks")
        return w

    def _positions(self, layout: EncryptedColumn, seg: Segment) -> np.ndarray:
        ids = self._sorted_ids[layout.layout_digest]
        return np.searchsorted(ids, seg.row_ids)

    def _plain_bits(self, values: np.ndarray | Sequence[float], ctx: HEContext) -> int:
        """CKKS: the scale to encode plaintext weights at, so the largest is ~2^scale_bits."""
        top = float(np.max(np.abs(values))) if len(values) else 0.0
        if top == 0.0:
            return ctx.scale_bits
        return int(min(60, max(20, ctx.scale_bits - math.ceil(math.log2(top)))))

    def _score_bits(self, agg: Aggregate, ctx: HEContext) -> tuple[int, dict[str, int]]:
        """CKKS SCORE: the common scale (log2) of every coefficient * column product, and the scale each
        coefficient is encoded at so that its column's product lands there."""
        cols = {c: self._he(c, "score") for c, _ in agg.coefficients}
        coef_bits = self._plain_bits(np.asarray([w for _, w in agg.coefficients]), ctx)
        target = max(col.scale_bits for col in cols.values()) + coef_bits
        return target, {c: target - col.scale_bits for c, col in cols.items()}

    def _check_safe(
        self,
        term: _Term,
        flags: list[_Flag],
        groups: list[_Group],
        layout: EncryptedColumn,
        w: np.ndarray | None,
    ) -> None:
        """Refuse a term whose depth or worst-case magnitude (from the declared bounds) does not fit."""
        ctx = self.public.scheme(term.scheme)
        max_rows = max((g.rows for g in groups), default=0)
        col = term.column
        bound_x = col.bound if col is not None else 1.0
        factors = len(flags)  # ciphertext factors in every summand
        bits = sum(f.column.scale_bits if len(f.allowed) == 1 else f.column.mask_bits for f in flags)
        extra_depth = 0
        what = term.tid
        if term.role == "rows":
            bound = float(max_rows)
        elif term.role in ("count", "bucket"):
            assert col is not None
            factors += 1
            bits += col.mask_bits
            bound = float(max_rows)
        elif term.role in ("sum", "sumsq"):
            assert col is not None
            power = 1 if term.role == "sum" else 2
            factors += power
            bits += power * col.scale_bits
            bound = max_rows * bound_x**power
        elif term.role == "dot":
            assert term.agg is not None and w is not None and col is not None
            factors += 1
            bits += col.scale_bits
            bound = 0.0
            for g in groups:
                g_sum = sum(
                    float(np.abs(w[self._positions(layout, layout.by_key[k])]).sum()) for k in g.segments
                )
                bound = max(bound, g_sum * bound_x)
            if ctx.scheme == "ckks":
                bits += self._plain_bits(w, ctx)
            else:
                extra_depth = 1  # a BFV product with a full plaintext vector costs a level's noise
            what = term.agg.name
        else:  # score
            assert term.agg is not None
            factors += 1
            bound = max_rows * sum(abs(c) * self._he(n, "score").bound for n, c in term.agg.coefficients)
            if ctx.scheme == "ckks":
                bits += self._score_bits(term.agg, ctx)[0]
            what = term.agg.name
        depth = factors - 1 + extra_depth
        if depth > ctx.max_depth:
            raise ResultUnsafe(
                f"{what}: needs multiplicative depth {depth} ({len(flags)} flag predicate(s)); the "
                f"{ctx.scheme} parameters give {ctx.max_depth}; drop a flag predicate or split the query"
            )
        if ctx.scheme == "bfv":
            if bound > ctx.max_plain:
                raise ResultUnsafe(
                    f"{what}: the result could reach {bound:,.0f} (over {max_rows:,} rows, |x| <= "
                    f"{bound_x:g} declared at encryption), beyond the BFV plaintext modulus bound "
                    f"{ctx.max_plain:,}; group or filter by a visible attribute to sum fewer rows, or "
                    "encrypt the column under ckks"
                )
            return
        need = bits + math.log2(max(bound, 1.0)) + _MARGIN_BITS
        if need > ctx.data_bits:
            raise ResultUnsafe(
                f"{what}: the result could reach {bound:.3g} (over {max_rows:,} rows, |x| <= {bound_x:g} "
                f"declared at encryption) at scale 2^{bits}, which needs {need:.0f} bits of CKKS modulus; "
                f"the parameters give {ctx.data_bits:.0f}; drop a flag predicate, group or filter by a "
                "visible attribute, or declare a tighter bound"
            )

    # --- computing ----------------------------------------------------------------------------------

    def _compute_group(
        self,
        group: _Group,
        terms: list[_Term],
        cells: list[tuple[Aggregate, Finish, dict[str, str | float], tuple[float, ...]]],
        flags: list[_Flag],
        flag_scheme: Scheme | None,
        layout: EncryptedColumn,
        weights: Mapping[str, np.ndarray],
    ) -> EncryptedGroup:
        out_cells = []
        for agg, finish, inputs, edges in cells:
            resolved: list[tuple[str, str | int | float]] = []
            for role, v in inputs.items():
                if v == "$rows":
                    resolved.append((role, group.rows))
                elif not group.segments and isinstance(v, str):
                    continue  # an empty group: no ciphertext at all
                else:
                    resolved.append((role, v))
            out_cells.append(Cell(agg.name, agg.func, finish, tuple(resolved), edges))
        if not group.segments:
            return EncryptedGroup(group.key, 0, (), tuple(out_cells))
        sel_cache: dict[tuple[Any, int], tuple[Any, bool] | None] = {}
        out_terms = []
        for term in terms:
            ctx = self.public.scheme(term.scheme)
            ct = self._term(ctx, term, group, flags, sel_cache, layout, weights)
            out_terms.append((term.tid, EncryptedTerm.of(term.scheme, ctx.to_bytes([ct])[0])))
        size: int | str = "rows" if flag_scheme is not None else group.rows
        return EncryptedGroup(group.key, size, tuple(out_terms), tuple(out_cells))

    def _sel(
        self,
        ctx: HEContext,
        flags: list[_Flag],
        key: tuple[VisibleValue, ...],
        j: int,
        used: int,
        cache: dict[tuple[Any, int], tuple[Any, bool] | None],
    ) -> tuple[Any, bool] | None:
        """The product of the flag factors for ciphertext ``j`` of segment ``key`` (None: no flag)."""
        if (key, j) in cache:
            return cache[(key, j)]
        ev = ctx.evaluator
        factors: list[tuple[Any, bool]] = []
        for f in flags:
            seg = f.column.by_key[key]
            if f.allowed == {1}:
                factors.append((seg.values[j], False))
            elif f.allowed == {0}:
                out = sa.Ciphertext()
                if seg.validity is not None:
                    ev.sub(seg.validity[j], seg.values[j], out)
                else:
                    ev.negate(seg.values[j], out)
                    ev.add_plain_inplace(out, self._ones(ctx, used, f.column.scale_bits))
                factors.append((out, True))
            else:  # {0, 1} on a nullable flag: the non-null rows
                assert seg.validity is not None
                factors.append((seg.validity[j], False))
        result: tuple[Any, bool] | None
        if not factors:
            result = None
        elif len(factors) == 1:
            result = factors[0]
        else:
            prod = _times(ctx, [c for c, _ in factors])
            ev.relinearize_inplace(prod, ctx.relin_keys)
            result = (prod, True)
        cache[(key, j)] = result
        return result

    def _ones(self, ctx: HEContext, used: int, scale_bits: int) -> Any:
        v = np.zeros(ctx.slot_count)
        v[:used] = 1.0
        return ctx.encode(v, float(2**scale_bits) if ctx.scheme == "ckks" else None)

    def _term(
        self,
        ctx: HEContext,
        term: _Term,
        group: _Group,
        flags: list[_Flag],
        sel_cache: dict[tuple[Any, int], tuple[Any, bool] | None],
        layout: EncryptedColumn,
        weights: Mapping[str, np.ndarray],
    ) -> Any:
        ev = ctx.evaluator
        slots = ctx.slot_count
        if term.role == "score":
            return self._score(ctx, term, group, flags, sel_cache)
        acc = _Acc(ev)
        w_all = weights.get(term.tid)
        w_scale = (
            float(2 ** self._plain_bits(w_all, ctx)) if w_all is not None and ctx.scheme == "ckks" else None
        )
        for key in group.segments:
            seg = (term.column or layout).by_key[key]
            n_ct = -(-seg.rows // slots)
            positions = self._positions(layout, seg) if w_all is not None else None
            for j in range(n_ct):
                used = min(slots, seg.rows - j * slots)
                sel = self._sel(ctx, flags, key, j, used, sel_cache) if flags else None
                base: list[Any]
                if term.role == "rows":
                    assert sel is not None
                    acc.add(sel[0], False)  # selections are cached for the other terms: never add into one
                    continue
                if term.role == "sum":
                    base = [seg.values[j]]
                elif term.role == "sumsq":
                    base = [seg.values[j], seg.values[j]]
                elif term.role == "count":
                    assert seg.validity is not None
                    base = [seg.validity[j]]
                elif term.role == "bucket":
                    base = [seg.indicators[term.bucket][j]]
                else:  # dot
                    assert positions is not None and w_all is not None
                    chunk = w_all[positions[j * slots : j * slots + used]]
                    if not chunk.any():
                        continue
                    pt = ctx.encode(chunk, w_scale)
                    if pt.is_zero():
                        continue
                    prod = sa.Ciphertext()
                    ev.multiply_plain(seg.values[j], pt, prod)
                    if sel is not None:
                        ev.multiply_inplace(prod, sel[0])
                    acc.add(prod, True)
                    continue
                factors = base + ([sel[0]] if sel is not None else [])
                if len(factors) == 1:
                    acc.add(factors[0], False)
                else:
                    acc.add(_times(ctx, factors), True)
        ct = acc.result()
        if ct is None:  # every weight zero
            ct = ctx.encrypt(np.zeros(1))
        _rotation_sum(ctx, ct)
        return ct

    def _score(
        self,
        ctx: HEContext,
        term: _Term,
        group: _Group,
        flags: list[_Flag],
        sel_cache: dict[tuple[Any, int], tuple[Any, bool] | None],
    ) -> Any:
        """sum over rows of sum_c coef_c * x_c = sum_c coef_c * (sum over rows of x_c): one scalar product
        per column after the additions, then one rotation-sum."""
        assert term.agg is not None
        ev = ctx.evaluator
        slots = ctx.slot_count
        coef_bits = self._score_bits(term.agg, ctx)[1] if ctx.scheme == "ckks" else {}
        total = _Acc(ev)
        for name, coef in term.agg.coefficients:
            if coef == 0:
                continue
            col = self._he(name, "score")
            acc = _Acc(ev)
            for key in group.segments:
                seg = col.by_key[key]
                for j in range(-(-seg.rows // slots)):
                    used = min(slots, seg.rows - j * slots)
                    sel = self._sel(ctx, flags, key, j, used, sel_cache) if flags else None
                    if sel is None:
                        acc.add(seg.values[j], False)
                    else:
                        acc.add(_times(ctx, [seg.values[j], sel[0]]), True)
            ct = acc.result()
            if ctx.scheme == "ckks":
                pt = ctx.encode_scalar(coef, float(2 ** coef_bits[name]))
            else:
                pt = ctx.encode_scalar(int(coef))
            ev.multiply_plain_inplace(ct, pt)
            total.add(ct, True)
        ct = total.result()
        if ct is None:  # every coefficient zero
            ct = ctx.encrypt(np.zeros(1))
        _rotation_sum(ctx, ct)
        return ct

    def _lookup(self, plan: QueryPlan) -> EncryptedResult:
        assert plan.lookup is not None
        if plan.aggregates or plan.group_by or plan.where:
            raise QueryInvalid("a lookup stands alone: no aggregates, WHERE or GROUP BY beside it")
        col = self._column(plan.lookup.column)
        if not isinstance(col, PaillierColumn):
            raise QueryUnsupported(
                f"LOOKUP({plan.lookup.column}): per-record lookups read Paillier columns; "
                f"{plan.lookup.column!r} is a {col.scheme} column (aggregates only)"
            )
        if not plan.lookup.ids:
            raise QueryInvalid("a lookup needs at least one record id")
        records = tuple(
            EncryptedRecord(
                rid,
                EncryptedTerm.of(
                    "paillier",
                    json.dumps({"c": str(c), "e": e}, separators=(",", ":"), sort_keys=True).encode(),
                ),
            )
            for rid, c, e in col.lookup(plan.lookup.ids)
        )
        return EncryptedResult(
            self.public.key_id,
            plan.table,
            plan_digest(plan),
            (),
            (f"lookup({col.name})",),
            (),
            col.name,
            records,
        )


def _sort_key(v: VisibleValue) -> tuple[int, str, Any]:
    return (v is None, type(v).__name__, v if v is not None else 0)


def _times(ctx: HEContext, factors: list[Any]) -> Any:
    """The product of two or more ciphertexts, left unrelinearised (size 3) for the additions after it."""
    ev = ctx.evaluator
    out = sa.Ciphertext()
    ev.multiply(factors[0], factors[1], out)
    for f in factors[2:]:
        ev.relinearize_inplace(out, ctx.relin_keys)
        ev.multiply_inplace(out, f)
    return out


def _rotation_sum(ctx: HEContext, ct: Any) -> None:
    """Every slot becomes the sum of all slots: log2(slots) rotations (BFV: rows, then the row swap)."""
    ev = ctx.evaluator
    if ct.size() > 2:
        ev.relinearize_inplace(ct, ctx.relin_keys)
    tmp = sa.Ciphertext()
    width = ctx.slot_count if ctx.scheme == "ckks" else ctx.slot_count // 2
    step = 1
    while step < width:
        if ctx.scheme == "ckks":
            ev.rotate_vector(ct, step, ctx.galois_keys, tmp)
        else:
            ev.rotate_rows(ct, step, ctx.galois_keys, tmp)
        ev.add_inplace(ct, tmp)
        step <<= 1
    if ctx.scheme == "bfv":
        ev.rotate_columns(ct, ctx.galois_keys, tmp)
        ev.add_inplace(ct, tmp)
