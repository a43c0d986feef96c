"""The store's side of the privacy-computing queries: the queries themselves and the privacy budget.

``PrivacyStore`` is also the SQL ``BudgetStore`` of :mod:`appliance.privacy.guards`: a charge is
checked against the analyst's limit and recorded in one transaction that holds the write lock from
its first statement (SQLite: the INSERT comes first, so a second charge waits for the first to commit;
PostgreSQL: a transaction-scoped advisory lock per analyst), so two concurrent queries can never
both spend the last of a budget.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from appliance.store import tables as t
from appliance.store.errors import StoreError
from appliance.store.store import _db

__all__ = ["QUERY_STATUSES", "PrivacyStore", "QueryRow", "UnknownQuery"]

QUERY_STATUSES = ("computing", "awaiting_approval", "released", "refused", "failed")


def _name(analyst: str) -> str:
    """An analyst as stored: refused (never cut) when longer than the column, so every read finds it."""
    if not analyst or len(analyst) > 64:
        raise StoreError(
            f"an analyst is named by 1 to 64 characters (the actor of their key), not {analyst[:80]!r}"
        )
    return analyst


class _OverBudget(Exception):
    """Rolls a charge back: the new totals would pass the limit."""


class UnknownQuery(StoreError):
    """No privacy query has this id."""


@dataclass(frozen=True)
class QueryRow:
    id: int
    analyst: str
    submitted: datetime
    updated: datetime
    status: str
    sql: str | None
    plan: Mapping[str, Any]
    plan_digest: str
    key_id: str | None
    result_digest: str | None
    released: Mapping[str, Any] | None
    approved_by: str | None
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        def iso(v: datetime) -> str:
            return v.isoformat().replace("+00:00", "Z")

        return {
            "id": self.id,
            "analyst": self.analyst,
            "submitted": iso(self.submitted),
            "updated": iso(self.updated),
            "status": self.status,
            "sql": self.sql,
            "plan": dict(self.plan),
            "plan_digest": self.plan_digest,
            "key_id": self.key_id,
            "result_digest": self.result_digest,
            "released": dict(self.released) if self.released is not None else None,
            "approved_by": self.approved_by,
            "error": self.error,
        }


def _row(r: Any) -> QueryRow:
    return QueryRow(
        r.id,
        r.analyst,
        r.submitted,
        r.updated,
        r.status,
        r.sql,
        dict(r.plan),
        r.plan_digest,
        r.key_id,
        r.result_digest,
        dict(r.released) if r.released is not None else None,
        r.approved_by,
        r.error,
    )


class PrivacyStore:
    """Privacy queries and budgets, over the customer store's engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    # -- queries ----------------------------------------------------------------------------------------
    def create_query(self, analyst: str, plan: Mapping[str, Any], plan_digest: str, sql: str | None) -> int:
        now = datetime.now(UTC)
        with _db(self._engine, "privacy_queries"), self._engine.begin() as conn:
            result = conn.execute(
                insert(t.privacy_queries)
                .values(
                    analyst=_name(analyst),
                    submitted=now,
                    updated=now,
                    status="computing",
                    sql=sql,
                    plan=dict(plan),
                    plan_digest=plan_digest,
                )
                .returning(t.privacy_queries.c.id)
            )
            return int(result.scalar_one())

    def update_query(self, query_id: int, **values: Any) -> QueryRow:
        """Set columns of a query (status, key_id, result_digest, released, approved_by, error)."""
        allowed = {"status", "key_id", "result_digest", "released", "approved_by", "error"}
        unknown = set(values) - allowed
        if unknown:
            raise StoreError(f"privacy_queries has no settable column(s) {', '.join(sorted(unknown))}")
        if "status" in values and values["status"] not in QUERY_STATUSES:
            raise StoreError(f"query status {values['status']!r} is not one of {', '.join(QUERY_STATUSES)}")
        with _db(self._engine, "privacy_queries"), self._engine.begin() as conn:
            n = conn.execute(
                update(t.privacy_queries)
                .where(t.privacy_queries.c.id == query_id)
                .values(**values, updated=datetime.now(UTC))
            ).rowcount
        if not n:
            raise UnknownQuery(f"no privacy query {query_id}; list them with GET /v1/queries")
        return self.get_query(query_id)

    def claim(self, query_id: int, from_status: str, to_status: str, **values: Any) -> bool:
        """Move a query from one status to another only if it is still in the first (one winner)."""
        with _db(self._engine, "privacy_queries"), self._engine.begin() as conn:
            n = conn.execute(
                update(t.privacy_queries)
                .where(t.privacy_queries.c.id == query_id, t.privacy_queries.c.status == from_status)
                .values(status=to_status, updated=datetime.now(UTC), **values)
            ).rowcount
        return bool(n)

    def get_query(self, query_id: int) -> QueryRow:
        with _db(self._engine), self._engine.connect() as conn:
            r = conn.execute(select(t.privacy_queries).where(t.privacy_queries.c.id == query_id)).first()
        if r is None:
            raise UnknownQuery(f"no privacy query {query_id}; list them with GET /v1/queries")
        return _row(r)

    def list_queries(
        self, *, analyst: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[QueryRow]:
        q = select(t.privacy_queries)
        if analyst is not None:
            q = q.where(t.privacy_queries.c.analyst == analyst)
        if status is not None:
            q = q.where(t.privacy_queries.c.status == status)
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(q.order_by(t.privacy_queries.c.id.desc()).limit(limit)).all()
        return [_row(r) for r in rows]

    # -- the budget (guards.BudgetStore) ----------------------------------------------------------------
    def spent(self, analyst: str) -> tuple[float, float]:
        s = t.privacy_spend.c
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(select(s.epsilon, s.delta).where(s.analyst == _name(analyst))).all()
        return math.fsum(r[0] for r in rows), math.fsum(r[1] for r in rows)

    def charge(
        self, analyst: str, epsilon: float, delta: float, query_id: str, *, limit: tuple[float, float]
    ) -> tuple[float, float] | None:
        from appliance.privacy.errors import DisclosureRefused

        s = t.privacy_spend.c
        try:
            with _db(self._engine), self._engine.begin() as conn:
                if not self._sqlite:
                    key = int.from_bytes(hashlib.sha256(analyst.encode()).digest()[:8], "big", signed=True)
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                # The INSERT is the first statement: on SQLite it takes the write lock at once (a read
                # first would deadlock two charges on the lock upgrade), so the sum below sees every
                # committed charge and no other charge commits before this transaction ends. A replayed
                # query id fails the unique constraint.
                conn.execute(
                    insert(t.privacy_spend).values(
                        analyst=_name(analyst),
                        query_id=query_id,
                        epsilon=float(epsilon),
                        delta=float(delta),
                        ts=datetime.now(UTC),
                    )
                )
                rows = conn.execute(select(s.epsilon, s.delta).where(s.analyst == analyst)).all()
                eps, dlt = math.fsum(r[0] for r in rows), math.fsum(r[1] for r in rows)
                if eps > limit[0] + 1e-12 or dlt > limit[1] + 1e-18:
                    raise _OverBudget
        except _OverBudget:
            return None
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise DisclosureRefused(
                    f"query id {query_id!r} was already charged; every query needs a new id"
                ) from None
            raise
        return eps, dlt

    def allowance(self, analyst: str) -> tuple[float, float] | None:
        a = t.privacy_allowances.c
        with _db(self._engine), self._engine.connect() as conn:
            r = conn.execute(select(a.epsilon, a.delta).where(a.analyst == _name(analyst))).first()
        return None if r is None else (float(r[0]), float(r[1]))

    def set_allowance(self, analyst: str, epsilon: float, delta: float, *, actor: str = "admin") -> None:
        a = t.privacy_allowances.c
        analyst = _name(analyst)
        now = datetime.now(UTC)
        with _db(self._engine, "privacy_allowances"), self._engine.begin() as conn:
            exists = conn.execute(select(func.count()).where(a.analyst == analyst)).scalar_one()
            values = {"epsilon": float(epsilon), "delta": float(delta), "updated": now, "actor": actor[:64]}
            if exists:
                conn.execute(update(t.privacy_allowances).where(a.analyst == analyst).values(**values))
            else:
                conn.execute(insert(t.privacy_allowances).values(analyst=_name(analyst), **values))
