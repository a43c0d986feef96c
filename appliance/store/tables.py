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
    "customer_fields",
    "customers",
    "events",
    "field_keys",
    "metadata",
    "transcript_messages",
    "transcripts",
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
