"""one job table for every kind: backtests -> jobs (+ kind)

The job lifecycle (``app.jobs``) serves every kind of job, so its rows move from
``backtests`` to ``jobs`` with a ``kind`` column ("backtest" for every existing row).
``trades`` and ``backtest_series`` keep their ``backtest_id`` column and now refer to
``jobs.id``. Works on PostgreSQL and SQLite (batch mode recreates the two result
tables there, which SQLite needs to change a foreign key).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)
COLUMNS = (
    "id, user_id, name, status, progress, sim_date, trades_executed, config, error, "
    "metrics, total_return, sharpe_ratio, attempts, claim_token, heartbeat_at, "
    "enqueued_at, created_at, started_at, completed_at, cancel_requested"
)
RESULT_TABLES = ("trades", "backtest_series")


def _job_table(name: str, *, with_kind: bool) -> None:
    kind = [sa.Column("kind", sa.String(length=32), nullable=False)] if with_kind else []
    op.create_table(
        name,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        *kind,
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column(
            "status", sa.String(length=16), server_default="pending", nullable=False
        ),
        sa.Column("progress", sa.Float(), server_default="0", nullable=False),
        sa.Column("sim_date", sa.Date(), nullable=True),
        sa.Column("trades_executed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("config", JSONDocument, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("metrics", JSONDocument, nullable=True),
        sa.Column("total_return", sa.Float(), nullable=True),
        sa.Column("sharpe_ratio", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("claim_token", sa.String(length=128), nullable=True),
        sa.Column("heartbeat_at", Timestamp, nullable=True),
        sa.Column("enqueued_at", Timestamp, nullable=True),
        sa.Column(
            "created_at", Timestamp, server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", Timestamp, nullable=True),
        sa.Column("completed_at", Timestamp, nullable=True),
        sa.Column(
            "cancel_requested", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'completed', 'failed', 'cancelled')",
            name=op.f(f"ck_{name}_status"),
        ),
        sa.CheckConstraint(
            "progress >= 0 AND progress <= 100",
            name=op.f(f"ck_{name}_progress_range"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f(f"fk_{name}_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )


def _point_results_at(old: str, new: str) -> None:
    for table in RESULT_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_backtest_id_{old}", type_="foreignkey")
            batch.create_foreign_key(
                f"fk_{table}_backtest_id_{new}",
                new,
                ["backtest_id"],
                ["id"],
                ondelete="CASCADE",
            )


def upgrade() -> None:
    _job_table("jobs", with_kind=True)
    op.execute(
        f"INSERT INTO jobs (kind, {COLUMNS}) SELECT 'backtest', {COLUMNS} "
        "FROM backtests"
    )
    _point_results_at("backtests", "jobs")
    op.drop_table("backtests")
    op.create_index("ix_jobs_user_id_created_at", "jobs", ["user_id", "created_at"])
    op.create_index("ix_jobs_user_id_status", "jobs", ["user_id", "status"])
    op.create_index("ix_jobs_status_heartbeat_at", "jobs", ["status", "heartbeat_at"])


def downgrade() -> None:
    _job_table("backtests", with_kind=False)
    op.execute(
        f"INSERT INTO backtests ({COLUMNS}) SELECT {COLUMNS} FROM jobs "
        "WHERE kind = 'backtest'"
    )
    _point_results_at("jobs", "backtests")
    op.drop_table("jobs")
    op.create_index(
        "ix_backtests_user_id_created_at", "backtests", ["user_id", "created_at"]
    )
    op.create_index("ix_backtests_user_id_status", "backtests", ["user_id", "status"])
    op.create_index(
        "ix_backtests_status_heartbeat_at", "backtests", ["status", "heartbeat_at"]
    )
