"""backtest results: positions and the analysis/book of each completed backtest

``backtest_positions``: one row per position (a symbol held continuously), paged by
``GET /v1/backtest/{id}/positions``. ``backtest_results``: the stored analysis (JSON)
and a compressed binary book (fills, daily holdings, cash, exposure) that the
holdings, exposure, export and report endpoints read. Both are written in the
transaction that completes the job and deleted with it (ON DELETE CASCADE). Jobs
completed before this revision have neither: those endpoints answer 409.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _job_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "backtest_id",
        sa.Uuid(),
        sa.ForeignKey("jobs.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "backtest_results",
        sa.Column(
            "backtest_id",
            sa.Uuid(),
            sa.ForeignKey("jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("analysis", JSONDocument, nullable=False),
        sa.Column("symbols", JSONDocument, nullable=False),
        sa.Column("sectors", JSONDocument, nullable=False),
        sa.Column("book", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "backtest_positions",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        _job_fk(),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("sector", sa.String(length=64), nullable=False),
        sa.Column("opened", sa.Date(), nullable=False),
        sa.Column("closed", sa.Date(), nullable=True),
        sa.Column("avg_entry_price", sa.Float(), nullable=False),
        sa.Column("avg_exit_price", sa.Float(), nullable=True),
        sa.Column("peak_shares", sa.Float(), nullable=False),
        sa.Column("shares", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("dividends", sa.Float(), nullable=False),
        sa.Column("realised_pnl", sa.Float(), nullable=False),
        sa.Column("unrealised_pnl", sa.Float(), nullable=False),
        sa.Column("pnl", sa.Float(), nullable=False),
        sa.Column("return_pct", sa.Float(), nullable=False),
        sa.Column("holding_days", sa.Integer(), nullable=False),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.Column("lots", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_backtest_positions_backtest_id_opened",
        "backtest_positions",
        ["backtest_id", "opened"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_backtest_positions_backtest_id_opened", table_name="backtest_positions"
    )
    op.drop_table("backtest_positions")
    op.drop_table("backtest_results")
