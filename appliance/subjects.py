"""Data subjects in the node: who a pseudonym is, and erasure by crypto-shredding (``node.subjects``).

The ledger is append-only and its proofs must keep verifying, so an erasure does not touch it: the
customer's entries keep naming them by pseudonym, ``cust:HMAC(node key, cust ‖ id ‖ subject key)``.
What the erasure destroys is the subject key, in the same store transaction as the customer row and
every row naming them. Without the key nobody (the node included) can recompute the pseudonym from
the id, and every copy of their sealed values, backups included, stays sealed under a data key that
can no longer be derived. See docs/erasure.md for what stays and what an operator must do.

The order of one erasure, and why a crash at any point leaves the subject either intact or erased
with the ``subject.erased`` entry recorded:

1. **Journal** (its own transaction): a ``pending`` row with a random erasure id, the pseudonym and
   the ledger size. Nothing is deleted yet.
2. **Delete** (ONE store transaction, kept open): claim the journal row (``pending`` → ``erased``),
   read the customer's values and revoke their masking tokens, delete the customer, every row naming
   them and their subject key.
3. **Append** ``subject.erased`` (durable when it returns) while that transaction is still open;
   then **commit**. If the append fails the transaction rolls back and the journal row is dropped:
   the subject is intact and nothing is recorded.
4. **Refresh** the encrypted privacy columns (full re-encryption of those that held the customer),
   then drop the journal row.

A crash between 1 and 3 leaves a ``pending`` row and no entry: recovery drops the row (the subject is
intact). A crash between the append and the commit leaves a ``pending`` row AND the entry (found by
its erasure id after the recorded ledger size): recovery does step 2 again without a second entry.
A crash before 4 finished leaves an ``erased`` row: recovery refreshes the columns. Recovery runs
when the node opens and before every erasure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from appliance.errors import ErasurePending, ErasureRefused
from appliance.masking import FREE_TEXT
from appliance.store.errors import StoreError, UnknownSubject
from appliance.store.subjects import ErasureRow

if TYPE_CHECKING:
    from appliance.node import Node

__all__ = ["REASON_CODES", "ErasureReport", "SubjectInfo", "SubjectService"]

log = logging.getLogger("appliance.subjects")

#: Why a subject is erased (recorded in clear; the free-text reason only as a digest).
REASON_CODES = (
    "data_subject_request",  # the person asked (GDPR art. 17, PIPL art. 47, CCPA 1798.105)
    "consent_withdrawn",
    "retention_expired",
    "legal_order",
    "other",
)
MAX_REASON_CHARS = 2000
_SYSTEM = "system:erasure"
#: A pending erasure younger than this may still be running in another process: recovery waits.
_RECOVER_AFTER_S = 10.0


@dataclass(frozen=True)
class SubjectInfo:
    """What the node can say about a customer id: no values, only whether it can still be linked."""

    customer_id: int
    exists: bool
    has_key: bool
    pseudonym: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "exists": self.exists,
            "has_key": self.has_key,
            "pseudonym": self.pseudonym,
        }


@dataclass(frozen=True)
class ErasureReport:
    erasure_id: str
    subject: str  # the pseudonym the ledger keeps; nothing links it to the person any more
    ledger_seq: int
    removed: Mapping[str, int]  # rows deleted, per table
    tokens_revoked: int
    columns_refreshed: tuple[str, ...] = ()
    columns_pending: str | None = None  # why the privacy columns are not refreshed yet (retried)

    def as_dict(self) -> dict[str, Any]:
        return {
            "erasure_id": self.erasure_id,
            "subject": self.subject,
            "ledger_seq": self.ledger_seq,
            "removed": dict(self.removed),
            "tokens_revoked": self.tokens_revoked,
            "columns_refreshed": list(self.columns_refreshed),
            "columns_pending": self.columns_pending,
        }


class SubjectService:
    """``node.subjects``: pseudonyms of customers and their erasure."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._store = node.store.subjects

    # -- lookups ------------------------------------------------------------------------------------------
    def show(self, customer_id: int, *, actor: str, request_id: str | None = None) -> SubjectInfo:
        """The customer's pseudonym (recorded as ``subject.shown``), or that the id names no one.

        A customer from before subject keys existed has none yet; it is not created here.
        """
        node = self._node
        exists = bool(node.store.get_customers([customer_id], fields=()))
        has_key = exists and self._store.has_key(customer_id)
        pseudonym = node.pseudonyms.pseudonym("cust", str(customer_id)) if has_key else None
        node.record(
            actor,
            "subject.shown",
            [pseudonym] if pseudonym else [],
            {"exists": exists, "has_key": has_key},
            request_id=request_id,
        )
        return SubjectInfo(customer_id, exists, has_key, pseudonym)

    # -- erasure ------------------------------------------------------------------------------------------
    def erase(
        self,
        customer_id: int,
        reason: str,
        *,
        actor: str,
        request_id: str | None = None,
        code: str = "data_subject_request",
    ) -> ErasureReport:
        """Erase one customer by crypto-shredding (the order and its crash cases: the module docstring).

        Raises UnknownSubject (nothing written) for an id that names no customer, never existed or
        already erased; ErasureRefused for a missing reason or an unknown code.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ErasureRefused("give a reason for the erasure (it is recorded as a SHA-256 digest only)")
        if len(reason) > MAX_REASON_CHARS:
            raise ErasureRefused(f"the reason has {len(reason)} characters; at most {MAX_REASON_CHARS}")
        if code not in REASON_CODES:
            raise ErasureRefused(f"reason code {code!r} is unknown; use one of {', '.join(REASON_CODES)}")
        node = self._node
        self.recover()
        key = self._store.key(customer_id)  # UnknownSubject; creates the key of a customer older than keys
        subject = node.pseudonyms.subject_pseudonym("cust", customer_id, key)
        del key
        erasure_id = self._store.begin_erasure(customer_id, subject, node.ledger.refresh())
        base = {
            "erasure": erasure_id,
            "reason_code": code,
            "reason_sha256": hashlib.sha256(reason.encode("utf-8")).hexdigest(),
        }
        appended: list[int] = []

        def record(counts: Mapping[str, int]) -> int:
            removed = {k: v for k, v in counts.items() if k != "revoked_tokens"}
            details = {**base, "removed": removed, "tokens_revoked": counts.get("revoked_tokens", 0)}
            seq = node.record(actor, "subject.erased", [subject], details, request_id=request_id).seq
            appended.append(seq)
            return seq

        try:
            counts, seq = self._store.erase(
                erasure_id, customer_id, tokens=self._tokens, before_commit=record
            )
        except BaseException as exc:
            if not appended:
                self._store.cancel_erasure(erasure_id)
                raise
            # The entry is durable but the store did not commit: finish the store part now, or later.
            try:
                counts, _ = self._complete(erasure_id, customer_id)
            except (StoreError, OSError) as again:
                log.warning("erasure %s: the store part failed: %s", erasure_id, again)
                raise ErasurePending(
                    f"the erasure is recorded (ledger entry {appended[0]}) but the store could not finish "
                    "it; the node finishes it at its next start or with `appliance subject recover`"
                ) from exc
            seq = appended[0]
        refreshed, pending = self._refresh(erasure_id)
        return ErasureReport(
            erasure_id,
            subject,
            seq,
            {k: v for k, v in counts.items() if k != "revoked_tokens"},
            counts.get("revoked_tokens", 0),
            tuple(refreshed),
            pending,
        )

    def _tokens(self, record: Mapping[str, Any], texts: Sequence[str]) -> list[str]:
        """Every reversible token the masking engine could have issued for this customer's values."""
        masking = self._node.masking
        kinds = self._node.masking_fields()
        out: list[str] = []

        def scan(text: str) -> None:
            for f in masking.analyzer.analyze(text):
                out.append(masking.token(text[f.start : f.end], f.type))

        for name, value in record.items():
            kind = kinds.get(name)
            if kind is None or value is None or isinstance(value, bool):
                continue
            text = value.isoformat() if isinstance(value, date) else str(value)
            if kind == FREE_TEXT:
                scan(text)
            else:
                out.append(masking.token(text, kind))
        for text in texts:
            scan(text)
        return [tok for tok in out if tok]

    def _complete(self, erasure_id: str, customer_id: int) -> tuple[dict[str, int], None]:
        """Step 2 again, for an erasure whose entry is already in the ledger (no second entry)."""
        return self._store.erase(erasure_id, customer_id, tokens=self._tokens, before_commit=lambda _c: None)

    def _refresh(self, erasure_id: str) -> tuple[list[str], str | None]:
        """Step 4; a failure leaves the journal row for recovery to retry, and says why."""
        try:
            refreshed = self._node.privacy.refresh_columns(actor=_SYSTEM)
        except Exception as exc:  # noqa: BLE001 - the erasure is done; the columns are retried later
            log.warning("erasure %s: privacy columns not refreshed yet: %s", erasure_id, type(exc).__name__)
            return [], f"{type(exc).__name__}: {exc}"
        self._store.finish_erasure(erasure_id)
        return refreshed, None

    # -- recovery -----------------------------------------------------------------------------------------
    def _entry_appended(self, row: ErasureRow) -> bool:
        ledger = self._node.ledger
        ledger.refresh()
        for _seq, raw in ledger.iter_raw(row.ledger_size):
            entry = json.loads(raw)
            if (
                entry.get("action") == "subject.erased"
                and (entry.get("details") or {}).get("erasure") == row.id
            ):
                return True
        return False

    def recover(self, *, min_age: float = _RECOVER_AFTER_S) -> list[str]:
        """Finish or undo erasures a crash interrupted (see the module docstring); what was done."""
        done: list[str] = []
        now = datetime.now(UTC)
        for row in self._store.erasures():
            if row.status == "pending":
                if (now - row.created).total_seconds() < min_age or row.customer_id is None:
                    continue
                if self._entry_appended(row):
                    try:
                        self._complete(row.id, row.customer_id)
                    except UnknownSubject:  # the rows went meanwhile: only the journal row is left
                        self._store.cancel_erasure(row.id)
                    done.append(f"erasure {row.id}: finished (its ledger entry was recorded)")
                else:
                    if self._store.cancel_erasure(row.id):
                        done.append(f"erasure {row.id}: undone (no ledger entry; the subject is intact)")
                    continue
            _, pending = self._refresh(row.id)
            if pending is None:
                done.append(f"erasure {row.id}: privacy columns refreshed")
        return done

    def recover_quietly(self) -> None:
        """Recovery at node start: a failure is logged (the next start or erasure retries), never raised."""
        t0 = time.perf_counter()
        try:
            for line in self.recover():
                log.warning("%s", line)
        except Exception as exc:  # noqa: BLE001 - a node that cannot recover still serves the rest
            log.warning("erasure recovery failed (%s); it is retried at the next start", type(exc).__name__)
        finally:
            elapsed = time.perf_counter() - t0
            if elapsed > 1.0:
                log.info("erasure recovery took %.1f s", elapsed)
