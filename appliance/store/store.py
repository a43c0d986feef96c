"""The customer data store: customers (declared fields, sensitive ones sealed), events, transcripts.

One :class:`Store` per process, over one SQLAlchemy engine: SQLite (WAL, foreign
keys on) is the embedded default, PostgreSQL (psycopg 3) the production store.
Every write call is one transaction: it validates all its records first and then
writes all of them or none, so bad input never leaves half a record behind.
Values come back decrypted; masking them for a role is the HTTP layer's job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError

from appliance.store import tables as t
from appliance.store.crypto import CipherMemo, FieldCipher, Keyring, associated_data
from appliance.store.errors import (
    FieldKeyError,
    RecordInvalid,
    StoreError,
    StoreUnavailable,
    UnknownCustomer,
    UnknownSubject,
)
from appliance.store.schema import CustomerRecord, CustomerSchema, EventRecord, MessageRecord

__all__ = ["MIGRATIONS_DIR", "Event", "Message", "RotationReport", "Store", "Transcript"]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "appliance_store_version"
_CHUNK = 500  # ids per IN (...) list; far below SQLite's and PostgreSQL's parameter limits
_PG_MIGRATION_LOCK = 0x6170706C  # pg_advisory_xact_lock key: one migrator at a time


@dataclass(frozen=True)
class Event:
    id: int
    customer_id: int
    ts: datetime
    kind: str
    channel: str | None
    amount: float | None
    currency: str | None
    details: Mapping[str, Any]
    text: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ts"] = self.ts.isoformat().replace("+00:00", "Z")
        d["details"] = dict(self.details)
        return d


@dataclass(frozen=True)
class Message:
    seq: int
    ts: datetime
    speaker: str
    text: str


@dataclass(frozen=True)
class Transcript:
    id: int
    customer_id: int
    channel: str
    started: datetime
    messages: tuple[Message, ...]


@dataclass(frozen=True)
class RotationReport:
    new_key_id: str
    retired: tuple[str, ...]
    reencrypted: int  # values moved to the new key (or sealed for the first time)
    rewrapped: int = 0  # subject keys wrapped under the new key

    def as_dict(self) -> dict[str, Any]:
        return {
            "new_key_id": self.new_key_id,
            "retired": list(self.retired),
            "reencrypted": self.reencrypted,
            "rewrapped": self.rewrapped,
        }


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _one_customer_statement(column: Any) -> Any:
    """A customer's head, fields and subject key in one statement; the columns are in :class:`_OneRow`'s
    order (the customer's columns, then one field's, then the key's)."""
    c, cf, sk = t.customers, t.customer_fields, t.subject_keys
    return (
        select(
            c.c.id,
            c.c.external_id,
            c.c.region,
            c.c.created,
            sk.c.wrapped,
            sk.c.key_id,
            cf.c.customer_id,
            cf.c.field,
            cf.c.value,
            cf.c.ciphertext,
            cf.c.key_id,
        )
        .select_from(c.outerjoin(cf, cf.c.customer_id == c.c.id).outerjoin(sk, sk.c.customer_id == c.c.id))
        .where(column == bindparam("key"))
    )


class _FieldRow(NamedTuple):
    """The field part of a :func:`_one_customer_statement` row, as :meth:`Store._put_field` reads it."""

    customer_id: int
    field: str
    value: str | None
    ciphertext: bytes | None
    key_id: str | None


class _RawRead:
    """A prebuilt SELECT run on a pooled DBAPI connection, for the masked-read hot path.

    SQLAlchemy's Connection (autobegin and its BEGIN, events, the result proxy and a type processor
    per value) cost more than the query itself when a read is one indexed statement. One statement is
    one snapshot on both backends, so no explicit transaction is needed. Errors leave as SQLAlchemy's
    DBAPIError (a dropped PostgreSQL connection invalidated), so :func:`_db` maps them like any other.
    """

    def __init__(self, engine: Engine, statement: Any) -> None:
        compiled = statement.compile(dialect=engine.dialect)
        self._engine = engine
        self._sql = str(compiled)
        self._positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        self._error: Any = engine.dialect.loaded_dbapi.Error  # the driver's base exception class

    def all(self, **params: Any) -> list[tuple[Any, ...]]:
        args = tuple(params[n] for n in self._positions) if self._positions is not None else params
        conn = self._engine.raw_connection()
        cursor = None
        try:
            cursor = conn.cursor()
            cursor.execute(self._sql, args)
            return list(cursor.fetchall())
        except self._error as exc:
            gone = self._engine.dialect.is_disconnect(exc, conn.dbapi_connection, cursor)
            if gone:
                conn.invalidate(exc)
            raise DBAPIError.instance(
                self._sql,
                None,
                exc,
                self._error,
                hide_parameters=True,
                connection_invalidated=gone,
                dialect=self._engine.dialect,
            ) from exc
        finally:
            if cursor is not None:
                with contextlib.suppress(Exception):
                    cursor.close()
            conn.close()  # back to the pool, which ends PostgreSQL's implicit transaction


def _chunks(items: Sequence[Any], n: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _first_line(exc: DBAPIError) -> str:
    """The driver's message without SQLAlchemy's SQL and bound parameters (they may hold values)."""
    return (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0]


def _engine(url: str) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"store.url {url!r} is not a database URL; use sqlite:///PATH or postgresql+psycopg://..."
        ) from exc
    backend = u.get_backend_name()
    if backend == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # SQLAlchemy, not the sqlite3 module, decides where transactions begin (see "begin").
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            try:
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA busy_timeout=30000")
            finally:
                cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine
    if backend == "postgresql":
        if u.get_driver_name() not in ("psycopg", "postgresql"):
            raise StoreError(f"store.url uses driver {u.get_driver_name()!r}; use postgresql+psycopg://...")
        u = u.set(drivername="postgresql+psycopg")
        try:
            return create_engine(u, pool_pre_ping=True)
        except NoSuchModuleError as exc:  # pragma: no cover - psycopg is a dependency
            raise StoreError("psycopg 3 is not installed; pip install 'psycopg[binary]'") from exc
    raise StoreError(
        f"store.url names a {backend} database; the store runs on sqlite:///PATH or postgresql+psycopg://..."
    )


class Store:
    """Customers, events and transcripts in one database; use :meth:`create` or :meth:`open`."""

    def __init__(self, engine: Engine, cipher: FieldCipher, schema: CustomerSchema) -> None:
        self._engine = engine
        self.cipher = cipher
        self.schema = schema
        self._one_reads = {
            "id": _RawRead(engine, _one_customer_statement(t.customers.c.id)),
            "external_id": _RawRead(engine, _one_customer_statement(t.customers.c.external_id)),
        }
        # The DBAPI's value of customers.created as the store's (SQLite keeps datetimes as text).
        created = t.customers.c.created.type.dialect_impl(engine.dialect).result_processor(
            engine.dialect, None
        )
        self._created: Callable[[Any], Any] = created if created is not None else (lambda v: v)
        from appliance.store.privacy import PrivacyStore
        from appliance.store.proactive import ProactiveStore
        from appliance.store.subjects import SubjectStore

        self.proactive = ProactiveStore(engine)
        self.privacy = PrivacyStore(engine)
        #: Per-customer keys (pseudonyms, sealed values), revoked tokens, erasures.
        self.subjects = SubjectStore(self)
        #: Applied to every event's ``text`` before it is written; the node sets it to mask identifiers
        #: (a search box receives phone numbers too), so no ingestion path stores raw ones.
        self.event_text_filter: Callable[[str], str] | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    @classmethod
    def create(cls, url: str, keyring_path: str | Path, *, schema: CustomerSchema | None = None) -> Store:
        """A new store: tables migrated to head in an empty database, and a new field keyring."""
        schema = schema or CustomerSchema.load()
        engine = _engine(url)
        try:
            _migrate(engine)
            with _db(engine), engine.connect() as conn:
                used = conn.execute(select(func.count()).select_from(t.field_keys)).scalar_one()
            if used:
                raise StoreError(
                    f"{_redacted(engine)} already holds a store; open it, or point store.url at an empty "
                    "database"
                )
            keyring = Keyring.create(Path(keyring_path))
            store = cls(engine, FieldCipher(keyring), schema)
            store._sync_field_keys()
        except BaseException:
            engine.dispose()
            raise
        return store

    @classmethod
    def open(cls, url: str, keyring_path: str | Path, *, schema: CustomerSchema | None = None) -> Store:
        """An existing store, migrated to head; refuses a keyring that does not belong to it.

        A database without a store is refused rather than silently started afresh: a
        missing ``store.db`` means restoring a backup, not an empty customer list.
        """
        schema = schema or CustomerSchema.load()
        u = make_url(url) if isinstance(url, str) and "://" in url else None
        if u is not None and u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
            if not Path(u.database).exists():
                raise StoreUnavailable(
                    f"the store database {u.database} is missing; restore it from backup (or create a "
                    "store with `appliance init`)"
                )
        engine = _engine(url)
        try:
            keyring = Keyring(Path(keyring_path))
            with _db(engine), engine.connect() as conn:
                found = inspect(conn).has_table(VERSION_TABLE)
            if not found:
                raise StoreUnavailable(
                    f"{_redacted(engine)} holds no store; point store.url at the store's database, restore "
                    "it from backup, or create one with `appliance init`"
                )
            _migrate(engine)
            store = cls(engine, FieldCipher(keyring), schema)
            store._sync_field_keys()
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (the scheduler keeps its job store in the same database)."""
        return self._engine

    @property
    def backend(self) -> str:
        return self._engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden (safe for logs and the ledger)."""
        return _redacted(self._engine)

    def _sync_field_keys(self) -> None:
        """Make ``field_keys`` agree with the keyring (the authority), and check it is this store's."""
        keys = {k.key_id: k for k in self.cipher.keyring.keys()}
        with _db(self._engine), self._engine.begin() as conn:
            rows = {r.key_id: r for r in conn.execute(select(t.field_keys))}
            foreign = [k for k, r in rows.items() if r.status != "retired" and k not in keys]
            if foreign:
                raise FieldKeyError(
                    f"keyring {self.cipher.keyring.path} does not hold key {foreign[0]} that this database "
                    "uses: it belongs to another store; restore this store's keyring from backup"
                )
            for k in keys.values():
                retired = datetime.fromisoformat(k.retired) if k.retired else None
                if k.key_id not in rows:
                    created = datetime.fromisoformat(k.created)
                    conn.execute(
                        insert(t.field_keys).values(
                            key_id=k.key_id, status=k.status, created=created, retired=retired
                        )
                    )
                elif rows[k.key_id].status != k.status:
                    conn.execute(
                        update(t.field_keys)
                        .where(t.field_keys.c.key_id == k.key_id)
                        .values(status=k.status, retired=retired)
                    )

    # -- customers ------------------------------------------------------------------------------------
    def validate_customers(self, rows: Iterable[Mapping[str, Any] | CustomerRecord]) -> list[CustomerRecord]:
        """Check every row (schema, duplicates in the call); raises on the first bad one, writes nothing."""
        records: list[CustomerRecord] = []
        seen: set[str] = set()
        for i, row in enumerate(rows):
            try:
                rec = row if isinstance(row, CustomerRecord) else self.schema.validate_customer(row)
            except RecordInvalid as exc:
                raise exc.at(i) from None
            if rec.external_id in seen:
                raise RecordInvalid("external_id", "appears twice in this batch; keep one", i)
            seen.add(rec.external_id)
            records.append(rec)
        return records

    def existing_external_ids(self, external_ids: Iterable[str]) -> set[str]:
        """Which of these external ids the store already holds."""
        return set(self.customer_ids_for(external_ids))

    def customer_ids_for(self, external_ids: Iterable[str]) -> dict[str, int]:
        """External id → store id, for the ids the store holds."""
        wanted = sorted(set(external_ids))
        out: dict[str, int] = {}
        with _db(self._engine), self._engine.connect() as conn:
            for chunk in _chunks(wanted):
                q = select(t.customers.c.external_id, t.customers.c.id).where(
                    t.customers.c.external_id.in_(chunk)
                )
                out.update({r.external_id: r.id for r in conn.execute(q)})
        return out

    def add_customers(self, rows: Iterable[Mapping[str, Any] | CustomerRecord]) -> list[int]:
        """Validate and insert customers in one transaction; returns their ids, in order.

        All or nothing: a bad row (or an external id already in the store) raises
        :class:`RecordInvalid` naming its position, and nothing of the call is written.
        """
        records = self.validate_customers(rows)
        if not records:
            return []
        existing = self.existing_external_ids(r.external_id for r in records)
        for i, r in enumerate(records):
            if r.external_id in existing:
                raise RecordInvalid("external_id", "already exists in the store; each customer once", i)
        self.cipher.keyring.refresh()
        with _db(self._engine, "customers"), self._engine.begin() as conn:
            now = _utcnow()
            result = conn.execute(
                insert(t.customers).returning(t.customers.c.id, sort_by_parameter_order=True),
                [
                    {"external_id": r.external_id, "region": r.region, "created": r.created or now}
                    for r in records
                ],
            )
            ids = [row.id for row in result]
            keys = self.subjects.insert_keys(conn, ids)
            field_rows = []
            for cid, rec in zip(ids, records, strict=True):
                for name, text in rec.values.items():
                    field_rows.append(self._field_row(cid, name, text, keys[cid]))
            if field_rows:
                conn.execute(insert(t.customer_fields), field_rows)
        return ids

    def _field_row(self, customer_id: int, name: str, text: str, subject_key: bytes) -> dict[str, Any]:
        spec = self.schema.field(name)
        if spec is not None and spec.encrypted:
            aad = associated_data("customer_fields", name, customer_id)
            sealed = self.cipher.encrypt(text, aad, subject_key)
            return {
                "customer_id": customer_id,
                "field": name,
                "value": None,
                "ciphertext": sealed.blob,
                "key_id": sealed.key_id,
            }
        return {"customer_id": customer_id, "field": name, "value": text, "ciphertext": None, "key_id": None}

    def _customers(
        self, conn: Connection, where: Any, limit: int | None = None, fields: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        q = select(t.customers).where(where).order_by(t.customers.c.id)
        if limit is not None:
            q = q.limit(limit)
        heads = conn.execute(q).all()
        if not heads:
            return []
        out = {
            h.id: {"id": h.id, "external_id": h.external_id, "region": h.region, "created": h.created}
            for h in heads
        }
        cf, sk = t.customer_fields, t.subject_keys
        for chunk in _chunks(list(out)):
            # The subject key in the same statement as the values (see appliance/store/subjects.py).
            q = (
                select(cf, sk.c.wrapped, sk.c.key_id.label("sk_key_id"))
                .select_from(cf.outerjoin(sk, sk.c.customer_id == cf.c.customer_id))
                .where(cf.c.customer_id.in_(chunk))
            )
            if fields is not None:
                q = q.where(cf.c.field.in_(list(fields)))
            keys: dict[int, bytes | None] = {}
            memo: CipherMemo = {}
            for f in conn.execute(q):
                self._put_field(
                    out[f.customer_id],
                    f,
                    self._subject_key(keys, f.customer_id, f.sk_key_id, f.wrapped),
                    memo,
                )
        return list(out.values())

    def _put_field(self, record: dict[str, Any], f: Any, subject_key: bytes | None, memo: CipherMemo) -> None:
        """One stored field row into its record, opened and decoded; undeclared fields are left out."""
        spec = self.schema.field(f.field)
        if spec is None:  # no longer declared: not returned (it may be unclassified PII)
            return
        if f.ciphertext is not None:
            aad = associated_data("customer_fields", f.field, f.customer_id)
            text = self.cipher.decrypt(f.key_id, f.ciphertext, aad, subject_key, memo)
        else:
            text = f.value
        record[f.field] = spec.decode(text)

    def _one_customer(self, by: str, key: int | str) -> dict[str, Any] | None:
        """One customer in one statement (the hot path of every masked read).

        The head, the fields and the subject key come in one prebuilt statement (:class:`_RawRead`):
        nothing is built per call and the database is asked once. The unwrapped subject key goes to
        the subject store's cache, so the pseudonym that the read's ledger entry needs does not fetch
        it again.
        """
        with _db(self._engine):
            rows = self._one_reads[by].all(key=key)
        if not rows:
            return None
        cid, external_id, region, created, wrapped, sk_key_id = rows[0][:6]
        record: dict[str, Any] = {
            "id": cid,
            "external_id": external_id,
            "region": region,
            "created": self._created(created),
        }
        subject_key = None if wrapped is None else self.cipher.unwrap(sk_key_id or "", bytes(wrapped), cid)
        memo: CipherMemo = {}
        for row in rows:
            if row[7] is not None:  # a customer without fields has one row, its field columns NULL
                self._put_field(record, _FieldRow(*row[6:]), subject_key, memo)
        if subject_key is not None:
            self.subjects.remember({cid: subject_key})
        return record

    def _subject_key(
        self, memo: dict[int, bytes | None], customer_id: int, key_id: str | None, wrapped: bytes | None
    ) -> bytes | None:
        """A customer's unwrapped subject key (None: values from before they had one), once per call."""
        if customer_id not in memo:
            memo[customer_id] = (
                None if wrapped is None else self.cipher.unwrap(key_id or "", wrapped, customer_id)
            )
        return memo[customer_id]

    def get_customer(self, customer_id: int) -> dict[str, Any]:
        """One customer as a dict: core columns and the declared fields it has, decrypted."""
        found = self._one_customer("id", customer_id)
        if found is None:
            raise UnknownCustomer(customer_id)
        return found

    def get_customers(
        self, ids: Sequence[int], fields: Sequence[str] | None = None
    ) -> dict[int, dict[str, Any]]:
        """Many customers by id (missing ids are absent), decrypting only ``fields`` when given."""
        out: dict[int, dict[str, Any]] = {}
        with _db(self._engine), self._engine.connect() as conn:
            for chunk in _chunks(sorted(set(ids)), 5000):
                for c in self._customers(conn, t.customers.c.id.in_(chunk), fields=fields):
                    out[c["id"]] = c
        return out

    def find_customer_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        return self._one_customer("external_id", external_id)

    def list_customers(self, *, after_id: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """A page of customers in id order (keyset pagination: pass the last id as ``after_id``)."""
        with _db(self._engine), self._engine.connect() as conn:
            return self._customers(conn, t.customers.c.id > after_id, limit=max(1, min(limit, 1000)))

    def _require_customers(self, conn: Connection, ids: Iterable[int]) -> None:
        wanted = sorted(set(ids))
        for chunk in _chunks(wanted):
            have = set(conn.execute(select(t.customers.c.id).where(t.customers.c.id.in_(chunk))).scalars())
            missing = [i for i in chunk if i not in have]
            if missing:
                raise UnknownCustomer(missing[0])

    # -- events -------------------------------------------------------------------------------------------
    def validate_events(self, rows: Iterable[Mapping[str, Any] | EventRecord]) -> list[EventRecord]:
        records = []
        for i, row in enumerate(rows):
            try:
                records.append(row if isinstance(row, EventRecord) else self.schema.validate_event(row))
            except RecordInvalid as exc:
                raise exc.at(i) from None
        return records

    def add_events(self, rows: Iterable[Mapping[str, Any] | EventRecord]) -> int:
        """Validate and insert events in one transaction (all or nothing); returns how many.

        Each event names its customer by ``customer_id`` or ``external_id``; an unknown
        customer refuses the whole call.
        """
        records = self.validate_events(rows)
        if not records:
            return 0
        ext = self.customer_ids_for(r.external_id for r in records if r.external_id is not None)
        resolved = []
        for i, r in enumerate(records):
            if r.external_id is not None:
                cid = ext.get(r.external_id)
                if cid is None:
                    raise RecordInvalid("external_id", "names no customer in the store; import it first", i)
            else:
                assert r.customer_id is not None
                cid = r.customer_id
            resolved.append(
                {
                    "customer_id": cid,
                    "ts": r.ts,
                    "kind": r.kind,
                    "channel": r.channel,
                    "amount": r.amount,
                    "currency": r.currency,
                    "details": dict(r.details),
                    "text": (
                        self.event_text_filter(r.text)
                        if r.text is not None and self.event_text_filter is not None
                        else r.text
                    ),
                }
            )
        with _db(self._engine, "events"), self._engine.begin() as conn:
            self._require_customers(conn, (r.customer_id for r in records if r.customer_id is not None))
            conn.execute(insert(t.events), resolved)
        return len(resolved)

    def events_for(
        self, customer_id: int, since: datetime | None = None, until: datetime | None = None
    ) -> list[Event]:
        """A customer's events in time order, optionally from ``since`` (inclusive) to ``until``."""
        for bound in (since, until):
            if bound is not None and bound.tzinfo is None:
                raise StoreError("since/until must be aware datetimes (e.g. datetime.now(UTC))")
        q = select(t.events).where(t.events.c.customer_id == customer_id)
        if since is not None:
            q = q.where(t.events.c.ts >= since)
        if until is not None:
            q = q.where(t.events.c.ts < until)
        with _db(self._engine), self._engine.connect() as conn:
            self._require_customers(conn, [customer_id])
            rows = conn.execute(q.order_by(t.events.c.ts, t.events.c.id)).all()
        return [
            Event(r.id, r.customer_id, r.ts, r.kind, r.channel, r.amount, r.currency, dict(r.details), r.text)
            for r in rows
        ]

    # -- transcripts -------------------------------------------------------------------------------------
    def add_transcript(
        self,
        customer_id: int,
        messages: Sequence[Mapping[str, Any] | MessageRecord],
        *,
        channel: str = "chat",
    ) -> int:
        """Store one conversation; every message's text is sealed. Returns the transcript id."""
        return self.add_transcripts([(customer_id, channel, messages)])[0]

    def add_transcripts(
        self, items: Sequence[tuple[int, str, Sequence[Mapping[str, Any] | MessageRecord]]]
    ) -> list[int]:
        """Many conversations ``(customer_id, channel, messages)`` in one transaction (all or nothing)."""
        checked: list[tuple[int, str, list[MessageRecord]]] = []
        for i, (cid, channel, messages) in enumerate(items):
            if channel not in self.schema.channels:
                raise RecordInvalid("channel", f"must be one of {', '.join(self.schema.channels)}", i)
            if not messages:
                raise RecordInvalid("messages", "is empty; a transcript needs at least one message", i)
            try:
                msgs = [
                    m if isinstance(m, MessageRecord) else self.schema.validate_message(m) for m in messages
                ]
            except RecordInvalid as exc:
                raise exc.at(i) from None
            checked.append((cid, channel, msgs))
        if not checked:
            return []
        self.cipher.keyring.refresh()
        keys = self.subjects.keys(c for c, _, _ in checked)
        with _db(self._engine, "transcripts"), self._engine.begin() as conn:
            self._require_customers(conn, (c for c, _, _ in checked))
            for c, _, _ in checked:
                if c not in keys:  # erased (or created) between the two statements
                    raise UnknownSubject(c)
            result = conn.execute(
                insert(t.transcripts).returning(t.transcripts.c.id, sort_by_parameter_order=True),
                [
                    {"customer_id": c, "channel": ch, "started": min(m.ts for m in ms)}
                    for c, ch, ms in checked
                ],
            )
            ids = [r.id for r in result]
            rows = []
            for tid, (cid, _, msgs) in zip(ids, checked, strict=True):
                for seq, m in enumerate(msgs):
                    sealed = self.cipher.encrypt(
                        m.text, associated_data("transcript_messages", "text", f"{tid}:{seq}"), keys[cid]
                    )
                    rows.append(
                        {
                            "transcript_id": tid,
                            "seq": seq,
                            "ts": m.ts,
                            "speaker": m.speaker,
                            "ciphertext": sealed.blob,
                            "key_id": sealed.key_id,
                        }
                    )
            conn.execute(insert(t.transcript_messages), rows)
        return ids

    def transcripts_for(self, customer_id: int) -> list[Transcript]:
        """A customer's conversations, oldest first, messages decrypted and in order."""
        with _db(self._engine), self._engine.connect() as conn:
            self._require_customers(conn, [customer_id])
            return self._transcripts(conn, customer_id)

    def _transcripts(self, conn: Connection, customer_id: int) -> list[Transcript]:
        heads = conn.execute(
            select(t.transcripts)
            .where(t.transcripts.c.customer_id == customer_id)
            .order_by(t.transcripts.c.started, t.transcripts.c.id)
        ).all()
        msgs: dict[int, list[Message]] = {h.id: [] for h in heads}
        tm, tr, sk = t.transcript_messages, t.transcripts, t.subject_keys
        keys: dict[int, bytes | None] = {}
        memo: CipherMemo = {}
        for chunk in _chunks(list(msgs)):
            # The subject key in the same statement as the messages (see appliance/store/subjects.py).
            q = (
                select(tm, tr.c.customer_id, sk.c.wrapped, sk.c.key_id.label("sk_key_id"))
                .select_from(
                    tm.join(tr, tr.c.id == tm.c.transcript_id).outerjoin(
                        sk, sk.c.customer_id == tr.c.customer_id
                    )
                )
                .where(tm.c.transcript_id.in_(chunk))
                .order_by(tm.c.transcript_id, tm.c.seq)
            )
            for m in conn.execute(q):
                aad = associated_data("transcript_messages", "text", f"{m.transcript_id}:{m.seq}")
                subject_key = self._subject_key(keys, m.customer_id, m.sk_key_id, m.wrapped)
                text = self.cipher.decrypt(m.key_id, m.ciphertext, aad, subject_key, memo)
                msgs[m.transcript_id].append(Message(m.seq, m.ts, m.speaker, text))
        return [Transcript(h.id, h.customer_id, h.channel, h.started, tuple(msgs[h.id])) for h in heads]

    # -- counts -------------------------------------------------------------------------------------------
    def _count(self, table: Any) -> int:
        with _db(self._engine), self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())

    def count_customers(self) -> int:
        return self._count(t.customers)

    def count_events(self) -> int:
        return self._count(t.events)

    def count_transcripts(self) -> int:
        return self._count(t.transcripts)

    def count_messages(self) -> int:
        return self._count(t.transcript_messages)

    def stats(self) -> dict[str, Any]:
        """Counts and key states, safe to print (no values, no key material, no password)."""
        with _db(self._engine), self._engine.connect() as conn:
            sealed: dict[str, int] = dict(
                conn.execute(
                    select(t.customer_fields.c.key_id, func.count())
                    .where(t.customer_fields.c.key_id.is_not(None))
                    .group_by(t.customer_fields.c.key_id)
                ).all()
            )
            for key_id, n in conn.execute(
                select(t.transcript_messages.c.key_id, func.count()).group_by(t.transcript_messages.c.key_id)
            ):
                sealed[key_id] = sealed.get(key_id, 0) + n
        wrapped = self.subjects.count_by_key()
        return {
            "backend": self.backend,
            "url": self.url,
            "customers": self.count_customers(),
            "events": self.count_events(),
            "transcripts": self.count_transcripts(),
            "messages": self.count_messages(),
            "field_keys": [
                {
                    "key_id": k.key_id,
                    "status": k.status,
                    "created": k.created,
                    "values": sealed.get(k.key_id, 0),
                    "subject_keys": wrapped.get(k.key_id, 0),
                }
                for k in self.cipher.keyring.keys()
            ],
            "subject_keys": sum(wrapped.values()),
        }

    # -- key rotation -------------------------------------------------------------------------------------
    def rotate_keys(
        self, *, batch_rows: int = 500, progress: Callable[[int, int], None] | None = None
    ) -> RotationReport:
        """Seal every value under a new field key, then destroy the old keys' material.

        One transaction per batch of ``batch_rows`` values; until the last row has
        moved the old keys stay ``previous`` and keep opening values, so readers see
        no gap and an interrupted rotation loses nothing (run it again to finish).
        Values of fields that became sensitive since they were written are sealed too.
        Subject keys are re-wrapped under the new key, and customers from before
        migration 0004 get theirs first (their values then move under it).
        """
        keyring = self.cipher.keyring
        keyring.refresh()
        self.subjects.bind_all(batch_rows)
        new = keyring.add_active()
        self._sync_field_keys()
        old = [k.key_id for k in keyring.keys() if k.status == "previous"]
        cf, tm = t.customer_fields, t.transcript_messages
        encrypted = list(self.schema.encrypted_fields)
        stale_fields = or_(
            and_(cf.c.key_id.is_not(None), cf.c.key_id != new.key_id),
            and_(cf.c.value.is_not(None), cf.c.field.in_(encrypted)),
        )
        stale_messages = tm.c.key_id != new.key_id
        stale_keys = t.subject_keys.c.key_id != new.key_id
        with _db(self._engine), self._engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(cf).where(stale_fields)).scalar_one()
            total += conn.execute(select(func.count()).select_from(tm).where(stale_messages)).scalar_one()
        moved = 0

        def tick(n: int) -> None:
            nonlocal moved
            moved += n
            if progress:
                progress(moved, max(total, moved))

        if progress:
            progress(0, total)
        rewrapped = 0
        for _round in range(3):  # rows another process wrote with an old key meanwhile get another pass
            self._reseal(cf, stale_fields, batch_rows, tick)
            self._reseal(tm, stale_messages, batch_rows, tick)
            rewrapped += self.subjects.rewrap(new.key_id, batch_rows)
            with _db(self._engine), self._engine.connect() as conn:
                left = conn.execute(select(func.count()).select_from(cf).where(stale_fields)).scalar_one()
                left += conn.execute(select(func.count()).select_from(tm).where(stale_messages)).scalar_one()
                left += conn.execute(
                    select(func.count()).select_from(t.subject_keys).where(stale_keys)
                ).scalar_one()
            if not left:
                break
        else:
            raise StoreError(
                f"key rotation: {left} values are still written with old keys by another process; the old "
                "keys are kept (nothing is lost); run `appliance store rotate-keys` again when writes are "
                "quiet"
            )
        if old:
            keyring.retire(old)
            self.cipher.forget_retired()
            self._sync_field_keys()
        return RotationReport(new.key_id, tuple(old), moved, rewrapped)

    def _reseal(self, table: Any, stale: Any, batch_rows: int, tick: Callable[[int], None]) -> None:
        """Move ``stale`` rows of ``table`` to the active key, one transaction per batch."""
        is_fields = table is t.customer_fields
        pk = (table.c.customer_id, table.c.field) if is_fields else (table.c.transcript_id, table.c.seq)
        tr, sk = t.transcripts, t.subject_keys
        owner = table.c.customer_id if is_fields else tr.c.customer_id
        cols = [*pk, table.c.ciphertext, table.c.key_id, owner.label("owner"), sk.c.wrapped]
        cols += [sk.c.key_id.label("sk_key_id")] + ([table.c.value] if is_fields else [])
        joined = table if is_fields else table.join(tr, tr.c.id == table.c.transcript_id)
        joined = joined.outerjoin(sk, sk.c.customer_id == owner)
        stmt = (
            update(table)
            .where(pk[0] == bindparam("b_0"), pk[1] == bindparam("b_1"))
            .values(
                ciphertext=bindparam("b_ct"),
                key_id=bindparam("b_key"),
                **({"value": None} if is_fields else {}),
            )
        )
        while True:
            with _db(self._engine, "key rotation"), self._engine.begin() as conn:
                q = select(*cols).select_from(joined).where(stale).order_by(*pk).limit(batch_rows)
                if self.backend == "postgresql":
                    q = q.with_for_update(of=table)
                rows = conn.execute(q).all()
                if not rows:
                    return
                params = []
                keys: dict[int, bytes | None] = {}
                for r in rows:
                    if is_fields:
                        aad = associated_data("customer_fields", r.field, r.customer_id)
                        where = f"customer {r.customer_id}, field {r.field}"
                    else:
                        aad = associated_data("transcript_messages", "text", f"{r.transcript_id}:{r.seq}")
                        where = f"transcript {r.transcript_id}, message {r.seq}"
                    try:
                        subject_key = self._subject_key(keys, r.owner, r.sk_key_id, r.wrapped)
                        text = (
                            r.value
                            if r.ciphertext is None
                            else self.cipher.decrypt(r.key_id, r.ciphertext, aad, subject_key)
                        )
                    except FieldKeyError:
                        raise FieldKeyError(
                            f"key rotation stopped: the value at {where} cannot be opened with its key "
                            "(altered, moved or its key lost); the old keys are kept, nothing was lost; "
                            "restore that row from a backup and rotate again"
                        ) from None
                    sealed = self.cipher.encrypt(text, aad, subject_key)
                    params.append({"b_0": r[0], "b_1": r[1], "b_ct": sealed.blob, "b_key": sealed.key_id})
                conn.execute(stmt, params)
            tick(len(rows))


# -- plumbing ------------------------------------------------------------------------------------------
def _redacted(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


@contextlib.contextmanager
def _db(engine: Engine, writing: str | None = None) -> Iterator[None]:
    """Database failures as store errors that say what to do (never the SQL or its parameters)."""
    try:
        yield
    except IntegrityError as exc:
        what = f" {writing}" if writing else ""
        raise StoreError(
            f"writing{what} conflicts with the data already stored ({_first_line(exc)}); nothing of this "
            "call was written; re-read and retry"
        ) from exc
    except DBAPIError as exc:
        if (
            exc.connection_invalidated
            or isinstance(exc.orig, OSError)
            or "connect" in _first_line(exc).lower()
        ):
            raise StoreUnavailable(
                f"the store at {_redacted(engine)} cannot be reached ({_first_line(exc)}); start the "
                "database or fix store.url"
            ) from exc
        raise StoreError(f"the store at {_redacted(engine)} failed: {_first_line(exc)}") from exc


def _migrate(engine: Engine) -> None:
    """Bring the database to the newest schema with Alembic's API; no alembic.ini at run time."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    with _db(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        if inspect(conn).has_table("customers") and not inspect(conn).has_table(VERSION_TABLE):
            raise StoreUnavailable(
                f"{_redacted(engine)} has a customers table that no appliance migration made; point "
                "store.url at an empty database"
            )
        command.upgrade(cfg, "head")
