"""The store's side of the proactive service: consents, suppressions, triggers, the outbox, job runs.

Bulk reads for a playbook run (events, customer attributes, consents, contact history) come back
as pandas DataFrames through ADBC (Arrow straight from SQLite or PostgreSQL's binary COPY), because
a run reads tens of millions of events and row-by-row drivers would spend a minute just building
Python tuples. Writes go through SQLAlchemy Core, one transaction per call, as in the rest of the
store: a trigger and its outbox row are written together or not at all.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Engine, and_, delete, func, insert, select, update
from sqlalchemy.engine import make_url

from appliance.store import tables as t
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


def _sqlite_time(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME text for an aware time: comparable as a string."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class ProactiveStore:
    """Tables of the proactive service, over the customer store's engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"

    # -- bulk reads (Arrow) ----------------------------------------------------------------------------
    def _arrow(self, sql: str) -> pa.Table:
        """Run one SELECT through ADBC; ``sql`` is built here from constants and formatted times only.

        SQLite is read in a child process (see :mod:`appliance.store._arrow_read` for why);
        PostgreSQL through the ADBC driver in this process (binary COPY over the network).
        """
        url = self._engine.url
        if self._sqlite:
            proc = subprocess.run(
                [sys.executable, "-m", "appliance.store._arrow_read", str(url.database)],
                input=sql.encode(),
                capture_output=True,
                check=False,
            )
            if proc.returncode != 0:
                lines = proc.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
                raise StoreError(f"a bulk read of the store failed: {lines[-1]}")
            return pa.ipc.open_stream(proc.stdout).read_all()
        try:
            import adbc_driver_postgresql.dbapi as adbc_pg

            uri = make_url(str(url.render_as_string(hide_password=False))).set(drivername="postgresql")
            conn = adbc_pg.connect(uri.render_as_string(hide_password=False))
        except Exception as exc:
            raise StoreError(f"the store cannot be read in bulk: {exc}") from exc
        try:
            cur = conn.cursor()
            try:
                cur.execute(sql)
                return cur.fetch_arrow_table()
            finally:
                cur.close()
        except Exception as exc:
            raise StoreError(f"a bulk read of the store failed: {str(exc).splitlines()[0]}") from exc
        finally:
            conn.close()

    def _time_literal(self, value: datetime) -> str:
        if value.tzinfo is None:
            raise StoreError("times given to the store must be aware (e.g. datetime.now(UTC))")
        if self._sqlite:
            return f"'{_sqlite_time(value)}'"
        return f"'{value.astimezone(UTC).isoformat()}'::timestamptz"

    def _times(self, column: pa.ChunkedArray) -> pd.Series:
        if len(column) == 0 or pa.types.is_null(column.type):
            return pd.Series(pd.to_datetime([], utc=True), dtype="datetime64[ns, UTC]")
        if pa.types.is_timestamp(column.type):
            arr = column if column.type.tz else pc.assume_timezone(column, "UTC")
        else:  # SQLite: text; all-NULL columns come back as int64 or null
            if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
                column = pc.cast(column, pa.string())
            arr = pc.assume_timezone(pc.cast(column, pa.timestamp("us")), "UTC")
        return arr.to_pandas().astype("datetime64[ns, UTC]")

    def events_frame(self, since: datetime, until: datetime | None = None) -> pd.DataFrame:
        """Events with ``since <= ts < until``: customer_id, ts (UTC), kind, channel, amount, text."""
        where = f"ts >= {self._time_literal(since)}"
        if until is not None:
            where += f" AND ts < {self._time_literal(until)}"
        # COALESCE gives every column one type even when a whole Arrow batch is NULL (SQLite's ADBC
        # driver infers types per batch); the sentinels are turned back into missing values below.
        table = self._arrow(
            "SELECT customer_id, ts, kind, COALESCE(channel, '') AS channel, "
            "COALESCE(amount, 'NaN') AS amount, COALESCE(text, '') AS text "
            f"FROM events WHERE {where}"
            if not self._sqlite
            else "SELECT customer_id, ts, kind, COALESCE(channel, '') AS channel, "
            "COALESCE(amount, 9e999) AS amount, COALESCE(text, '') AS text "
            f"FROM events WHERE {where}"
        )
        amount = pc.cast(table["amount"], pa.float64())
        amount = pc.if_else(pc.is_inf(amount), pa.scalar(math.nan), amount)
        frame = pd.DataFrame(
            {
                "customer_id": pc.cast(table["customer_id"], pa.int64()).to_numpy(),
                "ts": self._times(table["ts"]).to_numpy(),
                "kind": pd.Categorical(table["kind"].to_pandas()),
                "channel": table["channel"].to_pandas().replace("", None),
                "amount": amount.to_numpy(zero_copy_only=False),
                "text": table["text"].to_pandas().replace("", None),
            }
        )
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame

    def customers_frame(self, fields: Sequence[str]) -> pd.DataFrame:
        """Every customer with region, created and the named PLAIN fields (never sealed ones)."""
        base = self._arrow("SELECT id, region, created FROM customers")
        frame = pd.DataFrame(
            {"region": base["region"].to_pandas(), "created": self._times(base["created"]).to_numpy()},
            index=pd.Index(pc.cast(base["id"], pa.int64()).to_numpy(), name="customer_id"),
        )
        frame["created"] = pd.to_datetime(frame["created"], utc=True)
        for name in fields:
            if not name.replace("_", "").isalnum():
                raise StoreError(f"{name!r} is not a field name")
        wanted = ", ".join(f"'{name}'" for name in fields)
        values = (
            self._arrow(
                "SELECT customer_id, field, value FROM customer_fields "
                f"WHERE field IN ({wanted}) AND value IS NOT NULL"
            )
            if fields
            else None
        )
        if values is not None and values.num_rows:
            long = pd.DataFrame(
                {
                    "customer_id": pc.cast(values["customer_id"], pa.int64()).to_numpy(),
                    "field": values["field"].to_pandas(),
                    "value": values["value"].to_pandas(),
                }
            )
            wide = long.pivot(index="customer_id", columns="field", values="value")
        else:
            wide = pd.DataFrame()
        for name in fields:
            column = wide[name] if name in wide.columns else pd.Series(dtype=object)
            frame[name] = column.reindex(frame.index).astype(object)
        return frame.sort_index()

    def consents_frame(self) -> pd.DataFrame:
        """The whole consent history: customer_id, channel, status, ts (the gates take the latest)."""
        table = self._arrow("SELECT customer_id, channel, status, ts FROM consents")
        return pd.DataFrame(
            {
                "customer_id": pc.cast(table["customer_id"], pa.int64()).to_numpy(),
                "channel": table["channel"].to_pandas(),
                "status": table["status"].to_pandas(),
                "ts": self._times(table["ts"])
                if table.num_rows
                else pd.Series([], dtype="datetime64[ns, UTC]"),
            }
        )

    def contact_history_frame(self, since: datetime, *, holdout_of: str | None = None) -> pd.DataFrame:
        """Triggers that contacted (or will contact) a customer: customer_id, playbook, ts.

        ``holdout_of``: also count that playbook's holdout triggers, as the contacts they stand in for,
        so the control group is capped exactly like the treated group and stays comparable.
        """
        statuses = ", ".join(f"'{s}'" for s in CONTACT_STATUSES)
        holdout = ""
        if holdout_of is not None:
            if not holdout_of.replace("_", "").isalnum():
                raise StoreError(f"{holdout_of!r} is not a playbook name")
            holdout = f" OR (treated = 0 AND status = 'holdout' AND playbook = '{holdout_of}')"
        table = self._arrow(
            f"SELECT customer_id, playbook, created, treated FROM triggers WHERE ((treated = 1 AND status IN "
            f"({statuses})){holdout}) AND created >= {self._time_literal(since)}"
        )
        return pd.DataFrame(
            {
                "customer_id": pc.cast(table["customer_id"], pa.int64()).to_numpy(),
                "playbook": table["playbook"].to_pandas(),
                "ts": self._times(table["created"])
                if table.num_rows
                else pd.Series([], dtype="datetime64[ns, UTC]"),
                "treated": pc.cast(table["treated"], pa.int64()).to_numpy() == 1,
            }
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

    def outcomes_frame(self) -> pd.DataFrame:
        """playbook, group, status, outcome of every raised or held-out trigger (for the lift report)."""
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(
                select(
                    t.triggers.c.playbook, t.triggers.c.treated, t.triggers.c.status, t.triggers.c.outcome
                ).where(t.triggers.c.status.in_(("pending", "delivered", "failed", "holdout", "closed")))
            ).all()
        return pd.DataFrame(
            {
                "playbook": [r.playbook for r in rows],
                "status": ["raised" if r.treated else "holdout" for r in rows],
                "outcome": [r.outcome for r in rows],
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
            return conn.execute(select(t.job_runs.c.started).where(t.job_runs.c.id == run)).scalar_one()

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
