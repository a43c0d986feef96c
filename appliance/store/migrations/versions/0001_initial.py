"""Initial store: customers with declared fields (plain or sealed), events, transcripts, field keys.

Revision ID: 0001_initial
Revises:
Create Date: 2024-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (tables.py may move on; this file may not).
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("region", sa.String(2), nullable=False),
        sa.Column("created", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_customers"),
        sa.UniqueConstraint("external_id", name="uq_customers_external_id"),
    )
    op.create_table(
        "customer_fields",
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("field", sa.String(63), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("customer_id", "field", name="pk_customer_fields"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_customer_fields_customer_id_customers",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "(value IS NULL AND ciphertext IS NOT NULL AND key_id IS NOT NULL)"
            " OR (value IS NOT NULL AND ciphertext IS NULL AND key_id IS NULL)",
            name="ck_customer_fields_plain_or_sealed",
        ),
    )
    op.create_index("ix_customer_fields_key_id", "customer_fields", ["key_id"])
    op.create_table(
        "events",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("ts", _Time, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("amount", sa.Double(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_events_customer_id_customers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_events_customer_id_ts", "events", ["customer_id", "ts"])
    op.create_index("ix_events_ts", "events", ["ts"])
    op.create_table(
        "transcripts",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("started", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_transcripts"),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name="fk_transcripts_customer_id_customers", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_transcripts_customer_id", "transcripts", ["customer_id"])
    op.create_table(
        "transcript_messages",
        sa.Column("transcript_id", _Id, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("ts", _Time, nullable=False),
        sa.Column("speaker", sa.String(16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("transcript_id", "seq", name="pk_transcript_messages"),
        sa.ForeignKeyConstraint(
            ["transcript_id"],
            ["transcripts.id"],
            name="fk_transcript_messages_transcript_id_transcripts",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_transcript_messages_key_id", "transcript_messages", ["key_id"])
    op.create_table(
        "field_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", _Time, nullable=False),
        sa.Column("retired", _Time, nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_field_keys"),
        sa.CheckConstraint("status IN ('active', 'previous', 'retired')", name="ck_field_keys_status"),
    )


def downgrade() -> None:
    for table in (
        "field_keys",
        "transcript_messages",
        "transcripts",
        "events",
        "customer_fields",
        "customers",
    ):
        op.drop_table(table)
