"""Proactive service: event text, consents, suppressions, triggers, outbox, job runs, scheduler jobs.

Revision ID: 0002_proactive
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_proactive"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

# Frozen copies of the column types of this revision (tables.py may move on; this file may not).
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete="CASCADE"
    )


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("text", sa.String(256), nullable=True))
    op.create_table(
        "consents",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("ts", _Time, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
        _fk("consents", "customer_id", "customers"),
        sa.CheckConstraint("status IN ('opt_in', 'opt_out')", name="ck_consents_status"),
    )
    op.create_index("ix_consents_customer_id_channel_ts", "consents", ["customer_id", "channel", "ts"])
    op.create_table(
        "suppressions",
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("reason", sa.String(256), nullable=False),
        sa.Column("added", _Time, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name="pk_suppressions"),
        _fk("suppressions", "customer_id", "customers"),
    )
    op.create_table(
        "triggers",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("playbook", sa.String(64), nullable=False),
        sa.Column("customer_id", _Id, nullable=False),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("treated", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("suppressed_by", sa.String(32), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("created", _Time, nullable=False),
        sa.Column("not_before", _Time, nullable=True),
        sa.Column("updated", _Time, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("outcome_ts", _Time, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_triggers"),
        _fk("triggers", "customer_id", "customers"),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed', 'suppressed', 'holdout', 'deferred', 'closed')",
            name="ck_triggers_status",
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('contacted', 'converted', 'declined')",
            name="ck_triggers_outcome",
        ),
    )
    op.create_index("ix_triggers_status_id", "triggers", ["status", "id"])
    op.create_index("ix_triggers_playbook_created", "triggers", ["playbook", "created"])
    op.create_index("ix_triggers_customer_id_created", "triggers", ["customer_id", "created"])
    op.create_index("ix_triggers_run_id", "triggers", ["run_id"])
    op.create_table(
        "outbox",
        sa.Column("trigger_id", _Id, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt", _Time, nullable=False),
        sa.Column("last_error", sa.String(512), nullable=True),
        sa.Column("delivered", _Time, nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("trigger_id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["trigger_id"], ["triggers.id"], name="fk_outbox_trigger_id_triggers", ondelete="CASCADE"
        ),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="ck_outbox_status"),
    )
    op.create_index("ix_outbox_status_next_attempt", "outbox", ["status", "next_attempt"])
    op.create_table(
        "job_runs",
        sa.Column("id", _Id, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(96), nullable=False),
        sa.Column("started", _Time, nullable=False),
        sa.Column("finished", _Time, nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'skipped')", name="ck_job_runs_status"
        ),
    )
    op.create_index("ix_job_runs_job_id_started", "job_runs", ["job_id", "started"])
    op.create_table(
        "scheduler_jobs",
        sa.Column("id", sa.String(191), nullable=False),
        sa.Column("next_run_time", sa.Double(), nullable=True),
        sa.Column("job_state", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_jobs"),
    )
    op.create_index("ix_scheduler_jobs_next_run_time", "scheduler_jobs", ["next_run_time"])


def downgrade() -> None:
    for table in ("scheduler_jobs", "job_runs", "outbox", "triggers", "suppressions", "consents"):
        op.drop_table(table)
    with op.batch_alter_table("events") as batch:
        batch.drop_column("text")
