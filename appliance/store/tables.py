"""The store's tables (SQLAlchemy Core), the single description Alembic migrations are checked against.

Customer fields live in ``customer_fields``, one row per (customer, declared field),
rather than one column per field: the declared schema is data, and adding a field to
the YAML must not need a migration. A row holds either a plain ``value`` (public and
internal fields) or a ``ciphertext`` with the ``key_id`` of the field key that sealed
it (sensitive and secret fields); a CHECK keeps the two from mixing. Transcript
messages are always sealed: free text quotes identifiers.

Times are stored in UTC; :class:`UTCDateTime` hands back aware datetimes on every
backend (SQLite has no time zones, PostgreSQL's ``timestamptz`` has).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

__all__ = [
    "UTCDateTime",
    "consents",
    "customer_fields",
    "customers",
    "events",
    "field_keys",
    "job_runs",
    "metadata",
    "outbox",
    "privacy_allowances",
    "privacy_queries",
    "privacy_spend",
    "revoked_tokens",
    "scheduler_jobs",
    "subject_erasures",
    "subject_keys",
    "suppressions",
    "transcript_messages",
    "transcripts",
    "triggers",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY is the rowid alias).
_Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; give an aware (UTC) datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


customers = Table(
    "customers",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("external_id", String(64), nullable=False),
    Column("region", String(2), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    UniqueConstraint("external_id"),
)

customer_fields = Table(
    "customer_fields",
    metadata,
    Column("customer_id", _Id, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("field", String(63), primary_key=True),
    Column("value", Text, nullable=True),
    Column("ciphertext", LargeBinary, nullable=True),
    Column("key_id", String(32), nullable=True),
    CheckConstraint(
        "(value IS NULL AND ciphertext IS NOT NULL AND key_id IS NOT NULL)"
        " OR (value IS NOT NULL AND ciphertext IS NULL AND key_id IS NULL)",
        name="plain_or_sealed",
    ),
    Index(None, "key_id"),
)

events = Table(
    "events",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("customer_id", _Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("channel", String(16), nullable=True),
    Column("amount", Double(), nullable=True),
    Column("currency", String(3), nullable=True),
    Column("details", JSON(), nullable=False),
    # Search query or telemetry code, already masked of identifiers by the node (features match
    # keywords in it); a column rather than a details key so 20M events load without JSON parsing.
    Column("text", String(256), nullable=True),
    Index(None, "customer_id", "ts"),
    Index(None, "ts"),
)

transcripts = Table(
    "transcripts",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("customer_id", _Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("started", UTCDateTime(), nullable=False),
    Index(None, "customer_id"),
)

transcript_messages = Table(
    "transcript_messages",
    metadata,
    Column("transcript_id", _Id, ForeignKey("transcripts.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", UTCDateTime(), nullable=False),
    Column("speaker", String(16), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("key_id", String(32), nullable=False),
    Index(None, "key_id"),
)

# Which field keys exist and what state they are in; the key material itself lives only in the
# 0600 keyring file (DESIGN: secrets never in the store). Lets `open` notice a keyring that does
# not belong to this database before anything is written with the wrong key.
field_keys = Table(
    "field_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("retired", UTCDateTime(), nullable=True),
    CheckConstraint("status IN ('active', 'previous', 'retired')", name="status"),
)


# -- proactive service (predictors/) ----------------------------------------------------------------

# Consent is a history, never overwritten: the latest record per (customer, channel) decides, and an
# auditor can see when and where a customer opted in or out.
consents = Table(
    "consents",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("customer_id", _Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(8), nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
    Column("source", String(64), nullable=False),
    CheckConstraint("status IN ('opt_in', 'opt_out')", name="status"),
    Index(None, "customer_id", "channel", "ts"),
)

# Customers nobody may contact proactively (do-not-contact requests, complaints in progress, staff).
suppressions = Table(
    "suppressions",
    metadata,
    Column("customer_id", _Id, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("reason", String(256), nullable=False),
    Column("added", UTCDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
)

# Every selected customer of a playbook run: raised (pending delivery or pull), held out (control
# group), suppressed or deferred by a gate (with the gates' explanation), then delivered and closed
# with an outcome. Nothing selected is ever dropped silently.
TRIGGER_STATUSES = ("pending", "delivered", "failed", "suppressed", "holdout", "deferred", "closed")
OUTCOMES = ("contacted", "converted", "declined")
triggers = Table(
    "triggers",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("run_id", String(32), nullable=False),
    Column("playbook", String(64), nullable=False),
    Column("customer_id", _Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("score", Double(), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("treated", Integer, nullable=False),  # 1 treated group, 0 holdout (control) group
    Column("status", String(16), nullable=False),
    Column("suppressed_by", String(32), nullable=True),
    Column("reasons", JSON(), nullable=False),  # gates: [{gate, passed, detail}], model reasons
    Column("model_version", String(32), nullable=True),
    Column("channel", String(16), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("not_before", UTCDateTime(), nullable=True),
    Column("updated", UTCDateTime(), nullable=False),
    Column("outcome", String(16), nullable=True),
    Column("outcome_ts", UTCDateTime(), nullable=True),
    CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in TRIGGER_STATUSES) + ")", name="status"),
    CheckConstraint(
        "outcome IS NULL OR outcome IN (" + ", ".join(f"'{o}'" for o in OUTCOMES) + ")", name="outcome"
    ),
    Index(None, "status", "id"),
    Index(None, "playbook", "created"),
    Index(None, "customer_id", "created"),
    Index(None, "run_id"),
)

# The transactional outbox: a raised trigger and its outbox row are written in one transaction, so a
# trigger is never raised without being queued for delivery, nor delivered without having been raised.
# The body is fixed when the trigger is raised, so every retry sends the same bytes.
outbox = Table(
    "outbox",
    metadata,
    Column("trigger_id", _Id, ForeignKey("triggers.id", ondelete="CASCADE"), primary_key=True),
    Column("status", String(12), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt", UTCDateTime(), nullable=False),
    Column("last_error", String(512), nullable=True),
    Column("delivered", UTCDateTime(), nullable=True),
    Column("body", Text, nullable=False),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    Index(None, "status", "next_attempt"),
)

# History of scheduled and manual job runs (APScheduler keeps only what runs next).
job_runs = Table(
    "job_runs",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("job_id", String(96), nullable=False),
    Column("started", UTCDateTime(), nullable=False),
    Column("finished", UTCDateTime(), nullable=True),
    Column("status", String(12), nullable=False),
    Column("duration_ms", Integer, nullable=True),
    Column("trigger", String(16), nullable=False),  # schedule | manual
    Column("detail", JSON(), nullable=True),
    Column("error", Text, nullable=True),
    CheckConstraint("status IN ('running', 'succeeded', 'failed', 'skipped')", name="status"),
    Index(None, "job_id", "started"),
)

# APScheduler 3's SQLAlchemyJobStore table, declared here (same columns as APScheduler's own) so the
# migrations own it and the store's schema check knows it.
scheduler_jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("id", String(191), primary_key=True),
    Column("next_run_time", Double(), nullable=True),
    Column("job_state", LargeBinary, nullable=False),
    Index(None, "next_run_time"),
)


# -- privacy-computing queries (migration 0003) --------------------------------------------------------
privacy_queries = Table(
    "privacy_queries",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("analyst", String(64), nullable=False),  # the API key's actor, e.g. key:ab12cd34
    Column("submitted", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("sql", Text, nullable=True),  # as written, when it came as SQL
    Column("plan", JSON(), nullable=False),  # QueryPlan.as_dict()
    Column("plan_digest", String(64), nullable=False),
    Column("key_id", String(32), nullable=True),
    Column("result_digest", String(64), nullable=True),  # SHA-256 of the encrypted result
    Column("released", JSON(), nullable=True),  # what the guards let out (never before release)
    Column("approved_by", String(64), nullable=True),
    Column("error", Text, nullable=True),
    CheckConstraint(
        "status IN ('computing', 'awaiting_approval', 'released', 'refused', 'failed')", name="status"
    ),
    Index(None, "analyst", "id"),
)

privacy_spend = Table(
    "privacy_spend",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("analyst", String(64), nullable=False),
    Column("query_id", String(64), nullable=False),
    Column("epsilon", Double(), nullable=False),
    Column("delta", Double(), nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
    UniqueConstraint("query_id"),
    Index(None, "analyst"),
)

privacy_allowances = Table(
    "privacy_allowances",
    metadata,
    Column("analyst", String(64), primary_key=True),
    Column("epsilon", Double(), nullable=False),
    Column("delta", Double(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    Column("actor", String(64), nullable=False),
)


# -- erasure by crypto-shredding (migration 0004) ------------------------------------------------------
# One random 256-bit key per customer, wrapped (AES-GCM) by the field key ``key_id`` and bound to the
# row, so the database never holds it in clear. The customer's pseudonym and the data keys of their
# sealed values derive from it: deleting this row (erasure) is what makes every copy of them unlinkable
# and unreadable.
subject_keys = Table(
    "subject_keys",
    metadata,
    Column("customer_id", _Id, ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Index(None, "key_id"),
)

# Masking tokens of erased subjects, by SHA-256 of the token: ``detokenize`` refuses them. The digest
# of a deterministic token names no one without the masking key, and nothing here points at a subject.
revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("revoked", UTCDateTime(), nullable=False),
)

# The erasure journal: ``pending`` from before the ledger entry is appended until the store rows are
# gone, ``erased`` until the encrypted privacy columns are refreshed; see appliance/subjects.py.
subject_erasures = Table(
    "subject_erasures",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("customer_id", _Id, nullable=True),  # cleared when the customer's rows are deleted
    Column("subject", String(64), nullable=False),  # the pseudonym the ledger entry names
    Column("status", String(12), nullable=False),
    Column("ledger_size", BigInteger, nullable=False),  # where to look for the entry on recovery
    Column("created", UTCDateTime(), nullable=False),
    UniqueConstraint("customer_id"),
    CheckConstraint("status IN ('pending', 'erased')", name="status"),
)
