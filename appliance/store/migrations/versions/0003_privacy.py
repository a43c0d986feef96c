"""Privacy-computing queries: the queries analysts submit and the privacy budget they spend.

Revision ID: 0003_privacy
Revises: 0002_proactive
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_privacy"
down_revision = "0002_proactive"
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (tables.py may move on; this file may not).
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_queries",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("analyst", sa.String(64), nullable=False),
        sa.Column("submitted", _Time, nullable=False),
        sa.Column("updated", _Time, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("sql", sa.Text(), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("plan_digest", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("result_digest", sa.String(64), nullable=True),
        sa.Column("released", sa.JSON(), nullable=True),
        sa.Column("approved_by", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_privacy_queries"),
        sa.CheckConstraint(
            "status IN ('computing', 'awaiting_approval', 'released', 'refused', 'failed')",
            name="ck_privacy_queries_status",
        ),
    )
    op.create_index("ix_privacy_queries_analyst_id", "privacy_queries", ["analyst", "id"])
    op.create_table(
        "privacy_spend",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("analyst", sa.String(64), nullable=False),
        sa.Column("query_id", sa.String(64), nullable=False),
        sa.Column("epsilon", sa.Double(), nullable=False),
        sa.Column("delta", sa.Double(), nullable=False),
        sa.Column("ts", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_privacy_spend"),
        sa.UniqueConstraint("query_id", name="uq_privacy_spend_query_id"),
    )
    op.create_index("ix_privacy_spend_analyst", "privacy_spend", ["analyst"])
    op.create_table(
        "privacy_allowances",
        sa.Column("analyst", sa.String(64), nullable=False),
        sa.Column("epsilon", sa.Double(), nullable=False),
        sa.Column("delta", sa.Double(), nullable=False),
        sa.Column("updated", _Time, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("analyst", name="pk_privacy_allowances"),
    )


def downgrade() -> None:
    for table in ("privacy_allowances", "privacy_spend", "privacy_queries"):
        op.drop_table(table)
