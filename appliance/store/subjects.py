"""Subjects in the store: one wrapped key per customer, revoked masking tokens, the erasure journal.

A customer's subject key (32 random bytes) is the root of everything that links data to them: their
pseudonym is HMAC(node pseudonym key, kind ‖ id ‖ subject key) and their sealed values are sealed
under a data key derived from it (see :mod:`appliance.store.crypto`). The key is stored only wrapped
by a field key and bound to its row. Deleting it (crypto-shredding) is the heart of an erasure.

Invariant: a customer either has a subject key and ALL their sealed values are sealed under it, or
has none and their values are sealed under the field key alone (rows written before migration 0004).
Creating a key re-seals that customer's old values in the same transaction, and every read joins
the key in the same statement as the values, so no reader sees one without the other.

The erasure itself is driven by the node (:mod:`appliance.subjects`), which appends the ledger entry;
this module owns the SQL: the journal rows and the one transaction that deletes a customer.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, delete, func, insert, select, update

from appliance.store import tables as t
from appliance.store.crypto import SUBJECT_KEY_BYTES, associated_data
from appliance.store.errors import FieldKeyError, StoreError, UnknownSubject
from appliance.store.store import _chunks, _db

if TYPE_CHECKING:
    from appliance.store.store import Store

__all__ = ["ErasureConflict", "ErasureRow", "SubjectStore", "token_digest"]

T = TypeVar("T")
log = logging.getLogger("appliance.store")

#: Unwrapped keys are kept this long in a process; see ``SubjectStore`` for why not longer.
CACHE_SECONDS = 30.0
CACHE_ENTRIES = 100_000


def token_digest(token: str) -> str:
    """How the revocation list names a masking token without holding it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ErasureConflict(StoreError):
    """Another erasure of the same customer is under way, or this one was cancelled meanwhile."""


@dataclass(frozen=True)
class ErasureRow:
    """One journal row: ``pending`` (the store part not done yet) or ``erased`` (columns to refresh)."""

    id: str
    customer_id: int | None
    subject: str
    status: str
    ledger_size: int
    created: datetime


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SubjectStore:
    """Subject keys, token revocations and erasures, over one :class:`~appliance.store.Store`.

    Unwrapped keys are cached per process for :data:`CACHE_SECONDS` so that a playbook run that
    pseudonymises thousands of customers, and the reads that follow it, unwrap each key once. The
    window is short on purpose: another process that erased a customer cannot evict this cache.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._engine = store.engine
        self._cipher = store.cipher
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, tuple[float, bytes]] = OrderedDict()

    # -- keys -------------------------------------------------------------------------------------------
    def key(self, customer_id: int) -> bytes:
        """The customer's subject key, created if they have none yet; UnknownSubject if no such customer."""
        found = self.keys([customer_id])
        if customer_id not in found:
            raise UnknownSubject(customer_id)
        return found[customer_id]

    def keys(self, customer_ids: Iterable[int], *, create: bool = True) -> dict[int, bytes]:
        """Subject keys of these customers; ids that name no customer are left out.

        ``create``: give customers that have none yet (rows from before migration 0004, or loaded
        around the store) a key now, re-sealing their values under it in the same transaction.
        """
        wanted = sorted({int(i) for i in customer_ids})
        out: dict[int, bytes] = {}
        missing: list[int] = []
        now = time.monotonic()
        with self._lock:
            for cid in wanted:
                hit = self._cache.get(cid)
                if hit is not None and hit[0] > now:
                    out[cid] = hit[1]
                else:
                    missing.append(cid)
        if not missing:
            return out
        with _db(self._engine), self._engine.connect() as conn:
            fetched = self._fetch(conn, missing)
        absent = [cid for cid in missing if cid not in fetched]
        if absent and create:
            fetched.update(self._create(absent))
        self.remember(fetched)
        out.update(fetched)
        return out

    def has_key(self, customer_id: int) -> bool:
        """Whether the store holds a key for this customer (never creates one)."""
        with _db(self._engine), self._engine.connect() as conn:
            n = conn.execute(
                select(func.count())
                .select_from(t.subject_keys)
                .where(t.subject_keys.c.customer_id == customer_id)
            ).scalar_one()
        return bool(n)

    def forget(self, customer_id: int) -> None:
        """Drop a key from this process's cache (an erasure calls it)."""
        with self._lock:
            self._cache.pop(customer_id, None)

    def remember(self, keys: Mapping[int, bytes]) -> None:
        """Cache keys unwrapped by a read that joined them with the customer's values."""
        expires = time.monotonic() + CACHE_SECONDS
        with self._lock:
            for cid, key in keys.items():
                self._cache[cid] = (expires, key)
                self._cache.move_to_end(cid)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)

    def _fetch(self, conn: Connection, ids: Sequence[int]) -> dict[int, bytes]:
        sk = t.subject_keys.c
        out: dict[int, bytes] = {}
        for chunk in _chunks(ids):
            for r in conn.execute(
                select(sk.customer_id, sk.wrapped, sk.key_id).where(sk.customer_id.in_(chunk))
            ):
                out[r.customer_id] = self._cipher.unwrap(r.key_id, r.wrapped, r.customer_id)
        return out

    def insert_keys(self, conn: Connection, customer_ids: Sequence[int]) -> dict[int, bytes]:
        """New keys for customers that have none, written in the caller's transaction."""
        keys = {cid: secrets.token_bytes(SUBJECT_KEY_BYTES) for cid in customer_ids}
        if keys:
            now = _utcnow()
            rows = []
            for cid, key in keys.items():
                sealed = self._cipher.wrap(key, cid)
                rows.append(
                    {"customer_id": cid, "wrapped": sealed.blob, "key_id": sealed.key_id, "created": now}
                )
            conn.execute(insert(t.subject_keys), rows)
        return keys

    def _create(self, ids: Sequence[int]) -> dict[int, bytes]:
        """Keys for existing customers without one; a key another process created meanwhile is read."""
        self._cipher.keyring.refresh()
        for attempt in range(3):
            try:
                with _db(self._engine, "subject keys"), self._engine.begin() as conn:
                    have = self._fetch(conn, ids)
                    exist: list[int] = []
                    for chunk in _chunks([i for i in ids if i not in have]):
                        exist += conn.execute(
                            select(t.customers.c.id).where(t.customers.c.id.in_(chunk))
                        ).scalars()
                    made = self.insert_keys(conn, sorted(exist))
                    self._bind_legacy(conn, made)
                return {**have, **made}
            except StoreError:
                if attempt == 2:  # a concurrent writer each time: give up with its error
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _bind_legacy(self, conn: Connection, keys: Mapping[int, bytes]) -> int:
        """Re-seal values written before these customers had keys under their new keys."""
        if not keys:
            return 0
        cf, tm, tr = t.customer_fields, t.transcript_messages, t.transcripts
        cipher = self._cipher
        moved = 0
        for chunk in _chunks(sorted(keys)):
            rows = conn.execute(
                select(cf.c.customer_id, cf.c.field, cf.c.ciphertext, cf.c.key_id).where(
                    cf.c.customer_id.in_(chunk), cf.c.ciphertext.is_not(None)
                )
            ).all()
            for r in rows:
                aad = associated_data("customer_fields", r.field, r.customer_id)
                sealed = cipher.encrypt(cipher.decrypt(r.key_id, r.ciphertext, aad), aad, keys[r.customer_id])
                conn.execute(
                    update(cf)
                    .where(cf.c.customer_id == r.customer_id, cf.c.field == r.field)
                    .values(ciphertext=sealed.blob, key_id=sealed.key_id)
                )
            moved += len(rows)
            msgs = conn.execute(
                select(tm.c.transcript_id, tm.c.seq, tm.c.ciphertext, tm.c.key_id, tr.c.customer_id)
                .select_from(tm.join(tr, tr.c.id == tm.c.transcript_id))
                .where(tr.c.customer_id.in_(chunk))
            ).all()
            for m in msgs:
                aad = associated_data("transcript_messages", "text", f"{m.transcript_id}:{m.seq}")
                sealed = cipher.encrypt(cipher.decrypt(m.key_id, m.ciphertext, aad), aad, keys[m.customer_id])
                conn.execute(
                    update(tm)
                    .where(tm.c.transcript_id == m.transcript_id, tm.c.seq == m.seq)
                    .values(ciphertext=sealed.blob, key_id=sealed.key_id)
                )
            moved += len(msgs)
        return moved

    def bind_all(self, batch_rows: int = 500) -> int:
        """Give every customer without a key one (the upgrade of a store older than migration 0004)."""
        made = 0
        after = 0
        while True:
            with _db(self._engine), self._engine.connect() as conn:
                c, sk = t.customers.c, t.subject_keys.c
                ids = list(
                    conn.execute(
                        select(c.id)
                        .where(c.id > after, ~c.id.in_(select(sk.customer_id)))
                        .order_by(c.id)
                        .limit(batch_rows)
                    ).scalars()
                )
            if not ids:
                return made
            made += len(self._create(ids))
            after = ids[-1]

    def rewrap(self, key_id: str, batch_rows: int = 500) -> int:
        """Wrap every subject key under field key ``key_id`` (a rotation); one transaction per batch."""
        sk = t.subject_keys
        moved = 0
        while True:
            with _db(self._engine, "key rotation"), self._engine.begin() as conn:
                q = (
                    select(sk.c.customer_id, sk.c.wrapped, sk.c.key_id)
                    .where(sk.c.key_id != key_id)
                    .order_by(sk.c.customer_id)
                    .limit(batch_rows)
                )
                if self._store.backend == "postgresql":
                    q = q.with_for_update()
                rows = conn.execute(q).all()
                if not rows:
                    return moved
                for r in rows:
                    try:
                        key = self._cipher.unwrap(r.key_id, r.wrapped, r.customer_id)
                    except FieldKeyError:
                        raise FieldKeyError(
                            f"key rotation stopped: the subject key of customer {r.customer_id} cannot be "
                            "opened with its field key (altered, moved or its key lost); the old keys are "
                            "kept, nothing was lost; restore that row from a backup and rotate again"
                        ) from None
                    sealed = self._cipher.wrap(key, r.customer_id)
                    conn.execute(
                        update(sk)
                        .where(sk.c.customer_id == r.customer_id)
                        .values(wrapped=sealed.blob, key_id=sealed.key_id)
                    )
            moved += len(rows)

    def count_by_key(self) -> dict[str, int]:
        """Subject keys per wrapping field key (for ``store stats``)."""
        sk = t.subject_keys.c
        with _db(self._engine), self._engine.connect() as conn:
            return dict(conn.execute(select(sk.key_id, func.count()).group_by(sk.key_id)).all())  # type: ignore[arg-type]

    # -- revoked tokens -----------------------------------------------------------------------------------
    def token_revoked(self, token: str) -> bool:
        """Whether ``token`` belonged to an erased subject (``detokenize`` then refuses it)."""
        rt = t.revoked_tokens.c
        with _db(self._engine), self._engine.connect() as conn:
            n = conn.execute(
                select(func.count()).select_from(t.revoked_tokens).where(rt.digest == token_digest(token))
            ).scalar_one()
        return bool(n)

    # -- erasure ------------------------------------------------------------------------------------------
    def begin_erasure(self, customer_id: int, subject: str, ledger_size: int) -> str:
        """Journal an erasure as ``pending`` (nothing deleted yet); returns its id."""
        erasure_id = secrets.token_hex(16)
        try:
            with _db(self._engine, "subject_erasures"), self._engine.begin() as conn:
                conn.execute(
                    insert(t.subject_erasures).values(
                        id=erasure_id,
                        customer_id=customer_id,
                        subject=subject,
                        status="pending",
                        ledger_size=ledger_size,
                        created=_utcnow(),
                    )
                )
        except StoreError as exc:
            raise ErasureConflict(
                f"customer {customer_id} is already being erased (or an interrupted erasure of it waits for "
                "recovery); wait a minute and try again"
            ) from exc
        return erasure_id

    def erase(
        self,
        erasure_id: str,
        customer_id: int,
        *,
        tokens: Callable[[Mapping[str, Any], Sequence[str]], Iterable[str]],
        before_commit: Callable[[Mapping[str, int]], T],
    ) -> tuple[dict[str, int], T]:
        """Delete the customer and every row that names them, in ONE transaction.

        In order: claim the journal row (``pending`` → ``erased``), read the customer's values and
        transcripts and revoke the tokens ``tokens(record, texts)`` computes from them, delete the rows,
        then call ``before_commit(counts)`` (the node appends the ledger entry there) and commit. If
        ``before_commit`` raises, nothing of this transaction stays.

        SQLite overwrites the deleted rows with zeros (``secure_delete``) and the write-ahead log is
        checkpointed afterwards, so the database file keeps no copy of the customer's plain values
        (their sealed ones are unreadable anyway). PostgreSQL keeps dead row versions until VACUUM.
        """
        se = t.subject_erasures
        store = self._store
        sqlite = store.backend == "sqlite"
        with _db(self._engine, "erasure"), self._engine.begin() as conn:
            if sqlite:  # usually the build's default already; made sure of for this transaction
                secure = int(conn.exec_driver_sql("PRAGMA secure_delete").scalar_one())
                conn.exec_driver_sql("PRAGMA secure_delete=ON")
            try:
                claimed = conn.execute(
                    update(se)
                    .where(se.c.id == erasure_id, se.c.status == "pending", se.c.customer_id == customer_id)
                    .values(status="erased", customer_id=None)
                ).rowcount
                if claimed != 1:
                    raise ErasureConflict(
                        f"the erasure of customer {customer_id} was cancelled by recovery meanwhile; nothing "
                        "was erased; run it again"
                    )
                found = store._customers(conn, t.customers.c.id == customer_id)
                if not found:
                    raise UnknownSubject(customer_id)
                texts = [m.text for tr in store._transcripts(conn, customer_id) for m in tr.messages]
                digests = sorted({token_digest(tok) for tok in tokens(found[0], texts)})
                counts = self._delete(conn, customer_id)
                counts["revoked_tokens"] = self._revoke(conn, digests)
            finally:
                if sqlite:  # the pooled connection goes back as it came
                    conn.exec_driver_sql(f"PRAGMA secure_delete={secure}")
            result = before_commit(counts)
        self.forget(customer_id)
        if sqlite:
            self._checkpoint()
        return counts, result

    def _checkpoint(self) -> None:
        """Move the WAL into the database file and empty it (best effort: readers may hold it)."""
        raw = self._engine.raw_connection()
        try:
            cur = raw.cursor()
            try:
                cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                cur.close()
        except Exception as exc:  # noqa: BLE001 - the erasure is committed; a later checkpoint finishes
            log.info("WAL checkpoint after an erasure did not run: %s", type(exc).__name__)
        finally:
            raw.close()

    def _revoke(self, conn: Connection, digests: Sequence[str]) -> int:
        rt = t.revoked_tokens
        have: set[str] = set()
        for chunk in _chunks(list(digests)):
            have |= set(conn.execute(select(rt.c.digest).where(rt.c.digest.in_(chunk))).scalars())
        new = [d for d in digests if d not in have]
        if new:
            now = _utcnow()
            conn.execute(insert(rt), [{"digest": d, "revoked": now} for d in new])
        return len(new)

    def _delete(self, conn: Connection, customer_id: int) -> dict[str, int]:
        """Every row naming the customer, children first; counts per table (zeros left out)."""
        c = customer_id
        tr, trg = t.transcripts, t.triggers
        their_triggers = select(trg.c.id).where(trg.c.customer_id == c)
        their_transcripts = select(tr.c.id).where(tr.c.customer_id == c)
        steps: list[tuple[str, Any]] = [
            ("outbox", delete(t.outbox).where(t.outbox.c.trigger_id.in_(their_triggers))),
            ("triggers", delete(trg).where(trg.c.customer_id == c)),
            ("consents", delete(t.consents).where(t.consents.c.customer_id == c)),
            ("suppressions", delete(t.suppressions).where(t.suppressions.c.customer_id == c)),
            ("events", delete(t.events).where(t.events.c.customer_id == c)),
            (
                "transcript_messages",
                delete(t.transcript_messages).where(
                    t.transcript_messages.c.transcript_id.in_(their_transcripts)
                ),
            ),
            ("transcripts", delete(tr).where(tr.c.customer_id == c)),
            ("customer_fields", delete(t.customer_fields).where(t.customer_fields.c.customer_id == c)),
            ("subject_keys", delete(t.subject_keys).where(t.subject_keys.c.customer_id == c)),
            ("customers", delete(t.customers).where(t.customers.c.id == c)),
        ]
        counts = {name: conn.execute(stmt).rowcount for name, stmt in steps}
        counts["privacy_queries"] = self._delete_lookups(conn, c)
        return {k: v for k, v in counts.items() if v}

    @staticmethod
    def _delete_lookups(conn: Connection, customer_id: int) -> int:
        """Privacy queries whose Paillier lookup named the customer (their plan and SQL hold the id)."""
        pq = t.privacy_queries.c
        doomed = []
        for r in conn.execute(select(pq.id, pq.plan)):
            lookup = (r.plan or {}).get("lookup") if isinstance(r.plan, Mapping) else None
            if isinstance(lookup, Mapping) and str(customer_id) in {str(i) for i in lookup.get("ids") or ()}:
                doomed.append(r.id)
        if doomed:
            conn.execute(delete(t.privacy_queries).where(pq.id.in_(doomed)))
        return len(doomed)

    def cancel_erasure(self, erasure_id: str) -> bool:
        """Drop a ``pending`` journal row (its ledger entry was never appended): the subject stays."""
        se = t.subject_erasures.c
        with _db(self._engine, "subject_erasures"), self._engine.begin() as conn:
            n = conn.execute(
                delete(t.subject_erasures).where(se.id == erasure_id, se.status == "pending")
            ).rowcount
        return bool(n)

    def finish_erasure(self, erasure_id: str) -> None:
        """Drop an ``erased`` journal row once the privacy columns no longer hold the subject."""
        se = t.subject_erasures.c
        with _db(self._engine, "subject_erasures"), self._engine.begin() as conn:
            conn.execute(delete(t.subject_erasures).where(se.id == erasure_id, se.status == "erased"))

    def erasures(self) -> list[ErasureRow]:
        """The journal: erasures not finished (normally none)."""
        se = t.subject_erasures
        with _db(self._engine), self._engine.connect() as conn:
            rows = conn.execute(select(se).order_by(se.c.created)).all()
        return [
            ErasureRow(r.id, r.customer_id, r.subject, r.status, int(r.ledger_size), r.created) for r in rows
        ]
