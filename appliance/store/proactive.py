"""The store's side of the proactive service: consents, suppressions, triggers, the outbox, job runs.

Bulk reads for a playbook run (events, customer attributes, consents, contact history) come back
as pandas DataFrames through ADBC (Arrow straight from SQLite or PostgreSQL's binary COPY), because
a run reads tens of millions of events and row-by-row drivers would spend a minute just building
Python tuples. Writes go through SQLAlchemy Core, one transaction per call, as in the rest of the
store: a trigger and its outbox row are written together or not at all.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import struct
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, and_, delete, func, insert, select, text, update
from sqlalchemy.engine import make_url

from appliance.store import tables as t
from appliance.store._arrow_read import convert
from appliance.store.errors import RecordInvalid, StoreError, UnknownCustomer
from appliance.store.store import _chunks, _db

__all__ = [
    "CONSENT_STATUSES",
    "CONTACT_CHANNELS",
    "OutcomeConflict",
    "ProactiveStore",
    "TriggerRow",
    "UnknownTrigger",
]

CONSENT_STATUSES = ("opt_in", "opt_out")
#: Channels an offer can use and a customer can consent to.
CONTACT_CHANNELS = ("sms", "email", "phone", "app_push", "wechat")
#: Trigger statuses that mean "this customer was (or is about to be) contacted": frequency caps count them.
CONTACT_STATUSES = ("pending", "delivered", "closed", "failed", "deferred")


class UnknownTrigger(StoreError):
    """No trigger has this id."""


class OutcomeConflict(StoreError):
    """An outcome that does not fit the trigger's state (already final, or a holdout 'contacted')."""


@dataclass(frozen=True)
class TriggerRow:
    id: int
    run_id: str
    playbook: str
    customer_id: int
    score: float
    rank: int
    treated: bool
    status: str
    suppressed_by: str | None
    reasons: Mapping[str, Any]
    model_version: str | None
    channel: str
    created: datetime
    not_before: datetime | None
    updated: datetime
    outcome: str | None
    outcome_ts: datetime | None

    def as_dict(self) -> dict[str, Any]:
        def iso(v: datetime | None) -> str | None:
            return None if v is None else v.isoformat().replace("+00:00", "Z")

        return {
            "id": self.id,
            "run_id": self.run_id,
            "playbook": self.playbook,
            "customer_id": self.customer_id,
            "score": self.score,
            "rank": self.rank,
            "group": "treated" if self.treated else "holdout",
            "status": self.status,
            "suppressed_by": self.suppressed_by,
            "reasons": dict(self.reasons),
            "model_version": self.model_version,
            "channel": self.channel,
            "created": iso(self.created),
            "not_before": iso(self.not_before),
            "updated": iso(self.updated),
            "outcome": self.outcome,
            "outcome_ts": iso(self.outcome_ts),
        }


def _trigger(r: Any) -> TriggerRow:
    return TriggerRow(
        r.id,
        r.run_id,
        r.playbook,
        r.customer_id,
        r.score,
        r.rank,
        bool(r.treated),
        r.status,
        r.suppressed_by,
        dict(r.reasons),
        r.model_version,
        r.channel,
        r.created,
        r.not_before,
        r.updated,
        r.outcome,
        r.outcome_ts,
    )


@dataclass(frozen=True)
class _Query:
    """One bulk SELECT and the conversions the reader applies to its columns (see ``_arrow_read``)."""

    sql: str
    convert: Mapping[str, str]


#: Event tables smaller than this are read in one piece; bigger ones in row ranges, side by side.
_SPLIT_ROWS = 200_000
_MAX_PARTS = 4
#: The bulk reader, run as a script in child processes (see ``_arrow_read``).
_READER = str(Path(__file__).with_name("_arrow_read.py"))
#: Rows whose times estimate how much of the events table a window holds.
_PROBES = 128


def _times(column: pa.ChunkedArray) -> pd.Series:
    """timestamp[us, UTC] (as the reader converts times) to a datetime64[ns, UTC] Series."""
    return (
        pd.Series(column.to_pandas(), dtype="datetime64[ns, UTC]")
        if len(column)
        else pd.Series([], dtype="datetime64[ns, UTC]")
    )


def _category(column: pa.ChunkedArray) -> pd.Series:
    """A dictionary column to a pandas categorical (nulls: missing)."""
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    return pd.Series(column.to_pandas(), dtype="category") if len(column) else pd.Series([], dtype="category")


def _sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text for an aware time: comparable as a string."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class ProactiveStore:
    """Tables of the proactive service, over the customer store's engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    # -- bulk reads (Arrow) ----------------------------------------------------------------------------
    def _arrow_groups(self, groups: Sequence[Sequence[_Query]]) -> list[list[pa.Table]]:
        """Run groups of SELECTs through ADBC; the groups run at once, each group's queries in turn.

        ``sql`` is built here from constants, validated names, integers and formatted times only.
        SQLite is read in one child process per group (see :mod:`appliance.store._arrow_read` for why),
        so a table split into row ranges is read on several cores; PostgreSQL through the ADBC driver
        in this process (binary COPY over the network), the groups in turn.
        """
        if self._sqlite:
            database = str(self._engine.url.database)
            with ThreadPoolExecutor(max_workers=max(1, len(groups))) as pool:
                return list(pool.map(lambda g: self._sqlite_child(database, g), groups))
        return [[self._pg_read(q) for q in group] for group in groups]

    def _sqlite_child(self, database: str, queries: Sequence[_Query]) -> list[pa.Table]:
        request = {"database": database, "queries": [{"sql": q.sql, "convert": q.convert} for q in queries]}
        proc = subprocess.run(
            # The file itself, not ``-m appliance.store._arrow_read``: importing the package (SQLAlchemy,
            # pydantic, the masking engine) would double the child's start-up.
            [sys.executable, _READER],
            input=json.dumps(request).encode(),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
            raise StoreError(f"a bulk read of the store failed: {lines[-1]}")
        out, pos, tables = memoryview(proc.stdout), 0, []
        for _ in queries:
            (size,) = struct.unpack_from("<Q", out, pos)
            pos += 8
            tables.append(pa.ipc.open_stream(pa.py_buffer(out[pos : pos + size])).read_all())
            pos += size
        return tables

    def _pg_read(self, query: _Query) -> pa.Table:
        url = self._engine.url
        try:
            import adbc_driver_postgresql.dbapi as adbc_pg

            uri = make_url(str(url.render_as_string(hide_password=False))).set(drivername="postgresql")
            conn = adbc_pg.connect(uri.render_as_string(hide_password=False))
        except Exception as exc:
            raise StoreError(f"the store cannot be read in bulk: {exc}") from exc
        try:
            cur = conn.cursor()
            try:
                cur.execute(query.sql)
                table = cur.fetch_arrow_table()
            finally:
                cur.close()
        except Exception as exc:
            raise StoreError(f"a bulk read of the store failed: {str(exc).splitlines()[0]}") from exc
        finally:
            conn.close()
        return convert(table, query.convert)

    def _time_literal(self, value: datetime) -> str:
        if value.tzinfo is None:
            raise StoreError("times given to the store must be aware (e.g. datetime.now(UTC))")
        if self._sqlite:
            return f"'{_sqlite_time(value)}'"
        return f"'{value.astimezone(UTC).isoformat()}'::timestamptz"

    # events
    def _events_queries(self, since: datetime, until: datetime | None) -> list[_Query]:
        """The window's events as one query per row range: 2+ ranges when the table is big enough."""
        where = f"ts >= {self._time_literal(since)}"
        if until is not None:
            where += f" AND ts < {self._time_literal(until)}"
        # COALESCE gives every column one type even when a whole Arrow batch is NULL (SQLite's ADBC
        # driver infers types per batch); the child turns the sentinels back into nulls.
        amount = "COALESCE(amount, 9e999)" if self._sqlite else "COALESCE(amount, 'NaN')"
        columns = (
            f"customer_id, ts, kind, COALESCE(channel, '') AS channel, {amount} AS amount, "
            "COALESCE(text, '') AS text"
        )
        convert = {"ts": "time", "kind": "category", "channel": "category", "text": "category"}
        with _db(self._engine), self._engine.connect() as conn:
            # Two statements: SQLite answers a lone min() or max() of the rowid from the b-tree's ends,
            # but both in one SELECT by scanning the table.
            lo = conn.execute(select(func.min(t.events.c.id))).scalar_one()
            hi = conn.execute(select(func.max(t.events.c.id))).scalar_one()
            share = 0.0
            if self._sqlite and lo is not None and hi - lo + 1 >= _SPLIT_ROWS:
                # The window's share of the table, from the times of evenly spaced rows: a few dozen
                # keyed reads instead of counting millions of index entries.
                probes = np.unique(np.linspace(lo, hi, _PROBES).astype(np.int64)).tolist()
                stamps = conn.execute(
                    select(t.events.c.id).where(t.events.c.id.in_(probes), text(where))
                ).all()
                share = len(stamps) / len(probes)
        if lo is None:
            return [_Query(f"SELECT {columns} FROM events WHERE {where}", convert)]
        span = hi - lo + 1
        if not self._sqlite or span < _SPLIT_ROWS:
            return [_Query(f"SELECT {columns} FROM events WHERE {where}", convert)]
        # A window holding a good share of the table is read faster by scanning row ranges in order
        # than by following the ts index to rows scattered over the file.
        source = "events NOT INDEXED" if share >= 0.2 else "events"
        parts = max(1, min(os.cpu_count() or 1, _MAX_PARTS))
        edges = np.linspace(lo, hi + 1, parts + 1).astype(np.int64)
        return [
            _Query(
                f"SELECT {columns} FROM {source} WHERE id >= {a} AND id < {b} AND {where}",
                convert,
            )
            for a, b in itertools.pairwise(edges.tolist())
        ]

    @staticmethod
    def _events_from(tables: Sequence[pa.Table]) -> pd.DataFrame:
        # A row range with no rows in the window comes back with guessed types (amount as int64):
        # leave such ranges out unless all are empty.
        tables = [tb for tb in tables if tb.num_rows] or list(tables[:1])
        try:
            table = pa.concat_tables(tables).unify_dictionaries() if len(tables) > 1 else tables[0]
        except pa.ArrowInvalid as exc:
            raise StoreError(f"the event reads of one run do not fit together: {exc}") from exc
        amount = pc.cast(table["amount"], pa.float64())
        amount = pc.if_else(pc.is_inf(amount), pa.scalar(math.nan), amount)
        return pd.DataFrame(
            {
                "customer_id": pc.cast(table["customer_id"], pa.int64()).to_numpy(),
                "ts": _times(table["ts"]),
                "kind": _category(table["kind"]),
                "channel": _category(table["channel"]),
                "amount": amount.to_numpy(zero_copy_only=False),
                "text": _category(table["text"]),
            }
        )

    def events_frame(self, since: datetime, until: datetime | None = None) -> pd.DataFrame:
        """Events with ``since <= ts < until``: customer_id, ts (UTC), kind, channel, amount, text.

        kind, channel and text are categoricals (missing: NaN), ts is datetime64[ns, UTC].
        """
        groups = self._arrow_groups([[q] for q in self._events_queries(since, until)])
        return self._events_from([g[0] for g in groups])

    # customers
    def _customer_queries(self, fields: Sequence[str]) -> list[_Query]:
        for name in fields:
            if not name.replace("_", "").isalnum():
                raise StoreError(f"{name!r} is not a field name")
        queries = [
            _Query(
                "SELECT id, region, created FROM customers ORDER BY id",
                {"created": "time", "region": "category"},
            )
        ]
        if fields:
            wanted = ", ".join(f"'{name}'" for name in fields)
            queries.append(
                _Query(
                    "SELECT customer_id, field, value FROM customer_fields "
                    f"WHERE field IN ({wanted}) AND value IS NOT NULL",
                    {"field": "category", "value": "category"},
                )
            )
        return queries

    @staticmethod
    def _customers_from(tables: Sequence[pa.Table], fields: Sequence[str]) -> pd.DataFrame:
        base = tables[0]
        ids = pc.cast(base["id"], pa.int64()).to_numpy()
        frame = pd.DataFrame(
            # Plain arrays, not Series: a Series would be aligned on its 0..n-1 index against the ids.
            {
                "region": _category(base["region"]).astype(object).to_numpy(),
                "created": _times(base["created"]).array,
            },
            index=pd.Index(ids, name="customer_id"),
        )
        values = tables[1] if len(tables) > 1 else None
        if values is not None and values.num_rows:
            # The long (customer, field, value) rows, pivoted with numpy: one position per customer.
            cid = pc.cast(values["customer_id"], pa.int64()).to_numpy()
            field = values["field"].combine_chunks()
            value = values["value"].combine_chunks()
            field_codes = field.indices.to_numpy(zero_copy_only=False)
            value_codes = value.indices.to_numpy(zero_copy_only=False)
            field_names = field.dictionary.to_pylist()
            lookup = np.asarray([*value.dictionary.to_pylist(), None], dtype=object)
            order = np.argsort(ids, kind="stable")
            sorted_ids = ids[order]
            slot = np.searchsorted(sorted_ids, cid)
            slot = np.minimum(slot, len(ids) - 1) if len(ids) else slot
            known = (sorted_ids[slot] == cid) if len(ids) else np.zeros(len(cid), dtype=bool)
            for name in fields:
                codes = np.full(len(ids), len(lookup) - 1, dtype=np.int64)
                if name in field_names:
                    take = known & (field_codes == field_names.index(name))
                    codes[order[slot[take]]] = value_codes[take]
                frame[name] = pd.Series(lookup[codes], index=frame.index, dtype=object)
        else:
            for name in fields:
                frame[name] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        return frame.sort_index()

    def customers_frame(self, fields: Sequence[str]) -> pd.DataFrame:
        """Every customer with region, created and the named PLAIN fields (never sealed ones)."""
        return self._customers_from(self._arrow_groups([self._customer_queries(fields)])[0], fields)

    def run_frames(
        self, since: datetime, until: datetime, fields: Sequence[str]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """A playbook run's events and customers in one go: the reads run side by side."""
        events = self._events_queries(since, until)
        groups = [[q] for q in events] + [self._customer_queries(fields)]
        results = self._arrow_groups(groups)
        return (
            self._events_from([r[0] for r in results[: len(events)]]),
            self._customers_from(results[-1], fields),
        )

    # consents and contact history
    def _consents_query(self) -> _Query:
        return _Query(
            "SELECT customer_id, channel, status, ts FROM consents",
            {"ts": "time", "channel": "category", "status": "category"},
        )

    @staticmethod
    def _consents_from(table: pa.Table) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "customer_id": pc.cast(table["customer_id"], pa.int64()).to_numpy(),
                "channel": _category(table["channel"]).astype(object),
                "status": _category(table["status"]).astype(object),
                "ts": _times(table["ts"]),
            }
        )

    def consents_frame(self) -> pd.DataFrame:
        """The whole consent history: customer_id, channel, status, ts (the gates take the latest)."""
        return self._consents_from(self._arrow_groups([[self._consents_query()]])[0][0])

    def _history_query(self, since: datetime, holdout_of: str | None) -> _Query:
        statuses = ", ".join(f"'{s}'" for s in CONTACT_STATUSES)
        holdout = ""
        if holdout_of is not None:
            if not holdout_of.replace("_", "").isalnum():
                raise StoreError(f"{holdout_of!r} is not a playbook name")
            holdout = f" OR (treated = 0 AND status = 'holdout' AND playbook = '{holdout_of}')"
        return _Query(
            f"SELECT customer_id, playbook, created, treated FROM triggers WHERE ((treated = 1 AND status IN "
            f"({statuses})){holdout}) AND created >= {self._time_literal(since)}",
            {"created": "time", "playbook": "category"},
        )

    @staticmethod
    def _history_from(table: pa.Table) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "customer_id": pc.cast(table["customer_id"], pa.int64()).to_numpy(),
                "playbook": _category(table["playbook"]).astype(object),
                "ts": _times(table["created"]),
                "treated": pc.cast(table["treated"], pa.int64()).to_numpy() == 1,
            }
        )

    def contact_history_frame(
        self,
        since: datetime,
        *,
        holdout_of: str | None = None,
    ) -> pd.DataFrame:
        """Triggers that contacted (or will contact) a customer: customer_id, playbook, ts, treated.

        ``holdout_of``: also count that playbook's holdout triggers, as the contacts they stand in for,
        so the control group is capped exactly like the treated group and stays comparable.
        """
        return self._history_from(self._arrow_groups([[self._history_query(since, holdout_of)]])[0][0])

    def gate_frames(
        self, customer_ids: Sequence[int] | np.ndarray, *, history_since: datetime, holdout_of: str
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The candidates' consent history and contact history, for the gates of one run.

        A run selects a few percent of the customers, so this is a keyed read of thousands of rows,
        done in this process (a bulk reader's start-up would cost more than the read).
        """
        ids = np.unique(np.asarray(customer_ids, dtype=np.int64)).tolist()
        c, g = t.consents.c, t.triggers.c
        contact = and_(g.treated == 1, g.status.in_(CONTACT_STATUSES))
        if not holdout_of.replace("_", "").isalnum():
            raise StoreError(f"{holdout_of!r} is not a playbook name")
        counted = contact | and_(g.treated == 0, g.status == "holdout", g.playbook == holdout_of)
        consents: list[Any] = []
        history: list[Any] = []
        with _db(self._engine), self._engine.connect() as conn:
            for chunk in _chunks(ids):
                consents += conn.execute(
                    select(c.customer_id, c.channel, c.status, c.ts).where(c.customer_id.in_(chunk))
                ).all()
                history += conn.execute(
                    select(g.customer_id, g.playbook, g.created, g.treated).where(
                        counted, g.created >= history_since, g.customer_id.in_(chunk)
                    )
                ).all()
        return (
            pd.DataFrame(
                {
                    "customer_id": np.asarray([r[0] for r in consents], dtype=np.int64),
                    "channel": pd.Series([r[1] for r in consents], dtype=object),
                    "status": pd.Series([r[2] for r in consents], dtype=object),
                    "ts": pd.Series(
                        pd.to_datetime([r[3] for r in consents], utc=True), dtype="datetime64[ns, UTC]"
                    ),
                }
            ),
            pd.DataFrame(
                {
                    "customer_id": np.asarray([r[0] for r in history], dtype=np.int64),
                    "playbook": pd.Series([r[1] for r in history], dtype=object),
                    "ts": pd.Series(
                        pd.to_datetime([r[2] for r in history], utc=True), dtype="datetime64[ns, UTC]"
                    ),
                    "treated": np.asarray([bool(r[3]) for r in history], dtype=bool),
                }
            ),
        )

    # -- consents ------------------------------------------------------------------------------------
    def add_consents(
        self, rows: Iterable[Mapping[str, Any]], *, channels: Sequence[str] = CONTACT_CHANNELS
    ) -> int:
        """Append consent records (all or none): customer_id, channel, status, ts, source."""
        records = []
        for i, row in enumerate(rows):
            cid = row.get("customer_id")
            if not isinstance(cid, int) or isinstance(cid, bool) or cid < 1:
                raise RecordInvalid("customer_id", "must be a positive integer id of a stored customer", i)
            channel = row.get("channel")
            if channel not in channels:
                raise RecordInvalid("channel", f"must be one of {', '.join(channels)}", i)
            status = row.get("status")
            if status not in CONSENT_STATUSES:
                raise RecordInvalid("status", "must be opt_in or opt_out", i)
            ts = row.get("ts") or datetime.now(UTC)
            if not isinstance(ts, datetime) or ts.tzinfo is None:
                raise RecordInvalid("ts", "must be an aware time (ISO 8601 with a zone, e.g. ...Z)", i)
            source = str(row.get("source") or "api")[:64]
            records.append(
                {"customer_id": cid, "channel": channel, "status": status, "ts": ts, "source": source}
            )
        if not records:
            return 0
        with _db(self._engine, "consents"), self._engine.begin() as conn:
            self._require(conn, {r["customer_id"] for r in records})
            conn.execute(insert(t.consents), records)
        return len(records)

    def consents_for(self, customer_id: int) -> list[dict[str, Any]]:
        with _db(self._engine), self._engine.connect() as conn:
            self._require(conn, {customer_id})
            rows = conn.execute(
                select(t.consents).where(t.consents.c.customer_id == customer_id).order_by(t.consents.c.id)
            ).all()
        return [
            {
                "channel": r.channel,
                "status": r.status,
                "ts": r.ts.isoformat().replace("+00:00", "Z"),
                "source": r.source,
            }
            for r in rows
        ]

    # -- suppressions ----------------------------------------------------------------------------------
    def suppress(self, customer_id: int, reason: str, actor: str) -> bool:
        """Put a customer on the suppression list; False when already there (reason kept)."""
        if not reason.strip():
            raise RecordInvalid("reason", "is required: say why this customer must not be contacted")
        with _db(self._engine, "suppressions"), self._engine.begin() as conn:
            self._require(conn, {customer_id})
            exists = conn.execute(
                select(t.suppressions.c.customer_id).where(t.suppressions.c.customer_id == customer_id)
            ).first()
            if exists:
                return False
            conn.execute(
                insert(t.suppressions).values(
                    customer_id=customer_id,
                    reason=reason.strip()[:256],
                    added=datetime.now(UTC),
                    actor=actor[:64],
                )
            )
        return True

    def unsuppress(self, customer_id: int) -> bool:
        with _db(self._engine, "suppressions"), self._engine.begin() as conn:
            n = conn.execute(
                delete(t.suppressions).where(t.suppressions.c.customer_id == customer_id)
            ).rowcount
        return bool(n)

    def suppressions(self) -> pd.DataFrame:
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(select(t.suppressions).order_by(t.suppressions.c.customer_id)).all()
        return pd.DataFrame(
            {
                "customer_id": pd.array([r.customer_id for r in rows], dtype="int64"),
                "reason": [r.reason for r in rows],
            }
        )

    # -- triggers and outbox -----------------------------------------------------------------------------
    def insert_triggers(
        self,
        rows: Sequence[Mapping[str, Any]],
        bodies: Any = None,
    ) -> list[int]:
        """Write a run's triggers, and outbox rows for the pending ones, in one transaction.

        ``bodies(trigger_id, row) -> str`` builds the webhook body of a pending trigger (it needs
        the id, the receiver's idempotency key); None writes no outbox rows (pull delivery only).
        """
        if not rows:
            return []
        now = datetime.now(UTC)
        ids: list[int] = []
        with _db(self._engine, "triggers"), self._engine.begin() as conn:
            for chunk in _chunks(list(rows), 5000):
                result = conn.execute(
                    insert(t.triggers).returning(t.triggers.c.id, sort_by_parameter_order=True),
                    [{**r, "updated": r.get("updated", now)} for r in chunk],
                )
                chunk_ids = [row[0] for row in result]
                ids.extend(chunk_ids)
                if bodies is not None:
                    outbox = [
                        {
                            "trigger_id": tid,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt": now,
                            "body": bodies(tid, r),
                        }
                        for tid, r in zip(chunk_ids, chunk, strict=True)
                        if r["status"] == "pending"
                    ]
                    if outbox:
                        conn.execute(insert(t.outbox), outbox)
        return ids

    def release_deferred(self, now: datetime, bodies: Any = None) -> list[int]:
        """Deferred triggers whose quiet hours are over become pending (and are queued for delivery)."""
        with _db(self._engine, "triggers"), self._engine.begin() as conn:
            due = conn.execute(
                select(t.triggers).where(
                    and_(t.triggers.c.status == "deferred", t.triggers.c.not_before <= now)
                )
            ).all()
            if not due:
                return []
            ids = [r.id for r in due]
            for chunk in _chunks(ids):
                conn.execute(
                    update(t.triggers)
                    .where(t.triggers.c.id.in_(chunk), t.triggers.c.status == "deferred")
                    .values(status="pending", updated=now)
                )
            if bodies is not None:
                conn.execute(
                    insert(t.outbox),
                    [
                        {
                            "trigger_id": r.id,
                            "status": "pending",
                            "attempts": 0,
                            "next_attempt": now,
                            "body": bodies(r.id, r._mapping),
                        }
                        for r in due
                    ],
                )
        return ids

    def delete_run(self, run_id: str) -> int:
        """Take back a run whose ledger entries could not be appended (its outbox rows go with it)."""
        with _db(self._engine, "triggers"), self._engine.begin() as conn:
            ids = conn.execute(select(t.triggers.c.id).where(t.triggers.c.run_id == run_id)).scalars().all()
            for chunk in _chunks(list(ids)):
                conn.execute(delete(t.outbox).where(t.outbox.c.trigger_id.in_(chunk)))
                conn.execute(delete(t.triggers).where(t.triggers.c.id.in_(chunk)))
        return len(ids)

    def get_trigger(self, trigger_id: int) -> TriggerRow:
        with _db(self._engine), self._engine.connect() as conn:
            r = conn.execute(select(t.triggers).where(t.triggers.c.id == trigger_id)).first()
        if r is None:
            raise UnknownTrigger(f"no trigger {trigger_id}; list them with GET /v1/triggers")
        return _trigger(r)

    def list_triggers(
        self,
        *,
        status: str | None = None,
        playbook: str | None = None,
        run_id: str | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[TriggerRow]:
        q = select(t.triggers).where(t.triggers.c.id > after_id)
        if status is not None:
            q = q.where(t.triggers.c.status == status)
        if playbook is not None:
            q = q.where(t.triggers.c.playbook == playbook)
        if run_id is not None:
            q = q.where(t.triggers.c.run_id == run_id)
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(q.order_by(t.triggers.c.id).limit(limit)).all()
        return [_trigger(r) for r in rows]

    def trigger_counts(self) -> dict[str, int]:
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(select(t.triggers.c.status, func.count()).group_by(t.triggers.c.status)).all()
        return {r[0]: int(r[1]) for r in rows}

    def set_outcome(self, trigger_id: int, outcome: str, ts: datetime) -> TriggerRow:
        """Record what came of a trigger. converted/declined are final; contacted may be followed by them."""
        with _db(self._engine, "triggers"), self._engine.begin() as conn:
            r = conn.execute(
                select(t.triggers).where(t.triggers.c.id == trigger_id).with_for_update()
            ).first()
            if r is None:
                raise UnknownTrigger(f"no trigger {trigger_id}; list them with GET /v1/triggers")
            if r.outcome in ("converted", "declined"):
                raise OutcomeConflict(
                    f"trigger {trigger_id} already has the final outcome {r.outcome!r}; "
                    "outcomes are not changed"
                )
            if r.status in ("suppressed", "deferred"):
                raise OutcomeConflict(
                    f"trigger {trigger_id} is {r.status}: it was not raised, so it has no outcome"
                )
            if not r.treated and outcome == "contacted":
                raise OutcomeConflict(
                    f"trigger {trigger_id} is in the holdout (control) group: its customer must not be "
                    "contacted; record only 'converted' or 'declined' for it"
                )
            status = "closed" if outcome in ("converted", "declined") and r.treated else r.status
            conn.execute(
                update(t.triggers)
                .where(t.triggers.c.id == trigger_id)
                .values(outcome=outcome, outcome_ts=ts, status=status, updated=ts)
            )
            row = conn.execute(select(t.triggers).where(t.triggers.c.id == trigger_id)).one()
        return _trigger(row)

    def outcomes_frame(self, playbook: str | None = None) -> pd.DataFrame:
        """Every raised or held-out trigger (for the lift report): playbook, status (raised/holdout),
        outcome, customer_id, created."""
        g = t.triggers.c
        q = select(g.playbook, g.treated, g.status, g.outcome, g.customer_id, g.created).where(
            g.status.in_(("pending", "delivered", "failed", "holdout", "closed"))
        )
        if playbook is not None:
            q = q.where(g.playbook == playbook)
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(q).all()
        return pd.DataFrame(
            {
                "playbook": pd.Series([r.playbook for r in rows], dtype=object),
                "status": pd.Series(["raised" if r.treated else "holdout" for r in rows], dtype=object),
                "outcome": pd.Series([r.outcome for r in rows], dtype=object),
                "customer_id": np.asarray([r.customer_id for r in rows], dtype=np.int64),
                "created": pd.Series(
                    pd.to_datetime([r.created for r in rows], utc=True), dtype="datetime64[ns, UTC]"
                ),
            }
        )

    def target_events(
        self,
        customer_ids: Sequence[int] | np.ndarray,
        kinds: Sequence[str],
        *,
        channel: str | None = None,
        since: datetime,
    ) -> pd.DataFrame:
        """customer_id, ts of these customers' events of ``kinds`` (on ``channel``) since ``since``."""
        e = t.events.c
        ids = np.unique(np.asarray(customer_ids, dtype=np.int64)).tolist()
        found: list[Any] = []
        with _db(self._engine), self._engine.connect() as conn:
            for chunk in _chunks(ids):
                q = select(e.customer_id, e.ts).where(
                    e.customer_id.in_(chunk), e.kind.in_(list(kinds)), e.ts >= since
                )
                if channel is not None:
                    q = q.where(e.channel == channel)
                found += conn.execute(q).all()
        return pd.DataFrame(
            {
                "customer_id": np.asarray([r[0] for r in found], dtype=np.int64),
                "ts": pd.Series(pd.to_datetime([r[1] for r in found], utc=True), dtype="datetime64[ns, UTC]"),
            }
        )

    # -- outbox -----------------------------------------------------------------------------------------
    def due_outbox(self, now: datetime, limit: int) -> list[tuple[int, int, str]]:
        """(trigger_id, attempts, body) of pending deliveries due now, oldest first."""
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(
                select(t.outbox.c.trigger_id, t.outbox.c.attempts, t.outbox.c.body)
                .where(t.outbox.c.status == "pending", t.outbox.c.next_attempt <= now)
                .order_by(t.outbox.c.next_attempt, t.outbox.c.trigger_id)
                .limit(limit)
            ).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def outbox_results(
        self,
        delivered: Sequence[int],
        retries: Sequence[tuple[int, int, datetime, str]],
        failed: Sequence[tuple[int, int, str]],
        now: datetime,
    ) -> None:
        """Apply one delivery round in one transaction.

        ``retries`` are (id, attempts, next attempt, error); ``failed`` are (id, attempts, error).
        """
        with _db(self._engine, "outbox"), self._engine.begin() as conn:
            for chunk in _chunks(list(delivered)):
                conn.execute(
                    update(t.outbox)
                    .where(t.outbox.c.trigger_id.in_(chunk))
                    .values(
                        status="delivered", delivered=now, attempts=t.outbox.c.attempts + 1, last_error=None
                    )
                )
                conn.execute(
                    update(t.triggers)
                    .where(t.triggers.c.id.in_(chunk), t.triggers.c.status == "pending")
                    .values(status="delivered", updated=now)
                )
            for tid, attempts, nxt, error in retries:
                conn.execute(
                    update(t.outbox)
                    .where(t.outbox.c.trigger_id == tid)
                    .values(attempts=attempts, next_attempt=nxt, last_error=error[:512])
                )
            for tid, attempts, error in failed:
                conn.execute(
                    update(t.outbox)
                    .where(t.outbox.c.trigger_id == tid)
                    .values(status="failed", attempts=attempts, last_error=error[:512])
                )
                conn.execute(
                    update(t.triggers)
                    .where(t.triggers.c.id == tid, t.triggers.c.status == "pending")
                    .values(status="failed", updated=now)
                )

    def outbox_counts(self) -> dict[str, int]:
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(select(t.outbox.c.status, func.count()).group_by(t.outbox.c.status)).all()
        return {r[0]: int(r[1]) for r in rows}

    def requeue_failed(self, now: datetime) -> int:
        """Put failed deliveries back in the queue (after the receiver was fixed)."""
        with _db(self._engine, "outbox"), self._engine.begin() as conn:
            ids = (
                conn.execute(select(t.outbox.c.trigger_id).where(t.outbox.c.status == "failed"))
                .scalars()
                .all()
            )
            for chunk in _chunks(list(ids)):
                conn.execute(
                    update(t.outbox)
                    .where(t.outbox.c.trigger_id.in_(chunk))
                    .values(status="pending", attempts=0, next_attempt=now)
                )
                conn.execute(
                    update(t.triggers)
                    .where(t.triggers.c.id.in_(chunk), t.triggers.c.status == "failed")
                    .values(status="pending", updated=now)
                )
        return len(ids)

    # -- job runs ---------------------------------------------------------------------------------------
    def start_run(self, job_id: str, trigger: str) -> int:
        with _db(self._engine, "job_runs"), self._engine.begin() as conn:
            result = conn.execute(
                insert(t.job_runs)
                .values(job_id=job_id, started=datetime.now(UTC), status="running", trigger=trigger)
                .returning(t.job_runs.c.id)
            )
            return int(result.scalar_one())

    def _started(self, run: int) -> datetime:
        with _db(self._engine), self._engine.connect() as conn:
            started = conn.execute(select(t.job_runs.c.started).where(t.job_runs.c.id == run)).scalar()
        if started is None:
            raise StoreError(f"no job run {run}; list runs with `appliance jobs history`")
        return started

    def finish_run(
        self, run: int, status: str, *, detail: Mapping[str, Any] | None = None, error: str | None = None
    ) -> None:
        now = datetime.now(UTC)
        started = self._started(run)  # read outside the write: one UPDATE, no read-then-write lock upgrade
        with _db(self._engine, "job_runs"), self._engine.begin() as conn:
            conn.execute(
                update(t.job_runs)
                .where(t.job_runs.c.id == run)
                .values(
                    status=status,
                    finished=now,
                    duration_ms=int((now - started).total_seconds() * 1000),
                    detail=dict(detail) if detail is not None else None,
                    error=error,
                )
            )

    def prune_runs(self, job_id: str, keep: int) -> int:
        """Forget all but the newest ``keep`` runs of a job (a job every 10 s adds 8,640 a day); a run
        still running is never removed."""
        r = t.job_runs.c
        with _db(self._engine, "job_runs"), self._engine.begin() as conn:
            cutoff = conn.execute(
                select(r.id).where(r.job_id == job_id).order_by(r.id.desc()).offset(keep).limit(1)
            ).scalar()
            if cutoff is None:
                return 0
            return int(
                conn.execute(
                    delete(t.job_runs).where(r.job_id == job_id, r.id <= cutoff, r.status != "running")
                ).rowcount
            )

    def job_runs(self, job_id: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        q = select(t.job_runs)
        if job_id is not None:
            q = q.where(t.job_runs.c.job_id == job_id)
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(q.order_by(t.job_runs.c.id.desc()).limit(limit)).all()
        return [
            {
                "id": r.id,
                "job_id": r.job_id,
                "started": r.started.isoformat().replace("+00:00", "Z"),
                "finished": r.finished.isoformat().replace("+00:00", "Z") if r.finished else None,
                "status": r.status,
                "duration_ms": r.duration_ms,
                "trigger": r.trigger,
                "detail": r.detail,
                "error": r.error,
            }
            for r in rows
        ]

    # -- helpers ------------------------------------------------------------------------------------------
    def _require(self, conn: Any, ids: set[int]) -> None:
        found: set[int] = set()
        for chunk in _chunks(sorted(ids)):
            found.update(conn.execute(select(t.customers.c.id).where(t.customers.c.id.in_(chunk))).scalars())
        missing = sorted(ids - found)
        if missing:
            raise UnknownCustomer(missing[0])
