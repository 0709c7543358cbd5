"""job deliveries: the poison-message counter, the dead-letter mark, error codes

``jobs.deliveries`` counts deliveries of a job's message that began and never ended
(each delivery adds one before it claims the job and takes it back off when it
returns, whatever the outcome): what remains is the number of times the job stopped
its worker. ``jobs.dead_lettered_at`` marks a job failed for that reason (the admin
dead-letter list); ``jobs.error_code`` is the category of a failure (``timeout``,
``worker_lost``, ``internal``, ``job``). PostgreSQL and SQLite.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("deliveries", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("error_code", sa.String(length=32), nullable=True))
    op.create_index("ix_jobs_dead_lettered_at", "jobs", ["dead_lettered_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_dead_lettered_at", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("error_code")
        batch.drop_column("dead_lettered_at")
        batch.drop_column("deliveries")
