"""sweep tables: sweep_rows, sweep_summaries, sweep_chunks

One row per combination of a sweep (params, metrics, PSR, daily returns as float64
bytes) and one summary per sweep (dates; overfitting and walk-forward at
completion, and the walk-forward's stitched curve) and the chunks several workers claim, all keyed by ``jobs.id`` with ON DELETE CASCADE.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sweep_rows",
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("params", JSONDocument, nullable=False),
        sa.Column("metrics", JSONDocument, nullable=False),
        sa.Column("objective", sa.Float(), nullable=True),
        sa.Column("psr", sa.Float(), nullable=True),
        sa.Column("returns", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["jobs.id"],
            name=op.f("fk_sweep_rows_sweep_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", "index", name=op.f("pk_sweep_rows")),
    )
    op.create_table(
        "sweep_summaries",
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("dates", sa.LargeBinary(), nullable=False),
        sa.Column("overfitting", JSONDocument, nullable=True),
        sa.Column("walk_forward", JSONDocument, nullable=True),
        sa.Column("chart", JSONDocument, nullable=True),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["jobs.id"],
            name=op.f("fk_sweep_summaries_sweep_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", name=op.f("pk_sweep_summaries")),
    )


    op.create_table(
        "sweep_chunks",
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("chunk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("lo", sa.Integer(), nullable=False),
        sa.Column("hi", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claim_token", sa.String(length=128), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["jobs.id"],
            name=op.f("fk_sweep_chunks_sweep_id_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sweep_id", "chunk", name=op.f("pk_sweep_chunks")),
    )


def downgrade() -> None:
    op.drop_table("sweep_chunks")
    op.drop_table("sweep_summaries")
    op.drop_table("sweep_rows")
