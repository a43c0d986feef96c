"""Erasure by crypto-shredding: per-subject keys, revoked masking tokens, the erasure journal.

Revision ID: 0004_subject_keys
Revises: 0003_privacy
Create Date: 2026-11-26

Existing customers get their subject key lazily (the first time the node pseudonymises them or
writes a sealed value for them) or all at once with ``appliance store rotate-keys``; creating a
key re-seals that customer's existing values under it in the same transaction. A migration cannot
do it here: wrapping a key needs the field keyring, which lives outside the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_subject_keys"
down_revision = "0003_privacy"
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (tables.py may move on; this file may not).
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subject_keys",
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("created", _Time, nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_subject_keys"),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name="fk_subject_keys_customer_id_customers",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_subject_keys_key_id", "subject_keys", ["key_id"])
    op.create_table(
        "revoked_tokens",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("revoked", _Time, nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_revoked_tokens"),
    )
    op.create_table(
        "subject_erasures",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("customer_id", _Id, nullable=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("ledger_size", sa.BigInteger(), nullable=False),
        sa.Column("created", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subject_erasures"),
        sa.UniqueConstraint("customer_id", name="uq_subject_erasures_customer_id"),
        sa.CheckConstraint("status IN ('pending', 'erased')", name="ck_subject_erasures_status"),
    )


def downgrade() -> None:
    for table in ("subject_erasures", "revoked_tokens", "subject_keys"):
        op.drop_table(table)
