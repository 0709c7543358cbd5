"""job queue: the ``queued`` status, a cost estimate and the dispatch time

Issue 18: submissions over the per-tier concurrency cap wait as ``queued`` (no broker
message yet) until the scheduler (``app.jobs.scheduler``) dispatches them in fair
order. ``cost`` orders a user's own queued jobs (cheapest first); ``dispatched_at``
drives the round-robin across users. PostgreSQL and SQLite (the CHECK constraint is
replaced in batch mode there).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD = "status IN ('pending', 'running', 'completed', 'failed', 'cancelled')"
_NEW = "status IN ('queued', 'pending', 'running', 'completed', 'failed', 'cancelled')"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("cost", sa.Float(), server_default="1", nullable=False)
        )
        batch.add_column(
            sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.drop_constraint(op.f("ck_jobs_status"), type_="check")
        batch.create_check_constraint("status", _NEW)
    op.create_index(
        "ix_jobs_status_user_id_cost", "jobs", ["status", "user_id", "cost"]
    )


def downgrade() -> None:
    # Nothing may stay queued under the old constraint: hand them to the broker's
    # sweeper path (pending rows without a message are re-sent).
    op.execute("UPDATE jobs SET status = 'pending' WHERE status = 'queued'")
    op.drop_index("ix_jobs_status_user_id_cost", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint(op.f("ck_jobs_status"), type_="check")
        batch.create_check_constraint("status", _OLD)
        batch.drop_column("dispatched_at")
        batch.drop_column("cost")
