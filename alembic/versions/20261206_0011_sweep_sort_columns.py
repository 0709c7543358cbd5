"""sweep rows: every sortable metric as an indexed numeric column

``GET /v1/sweeps/{id}/results?sort=<metric>`` sorted by a value parsed out of each
row's JSON ``metrics`` (``json_extract`` / ``->>``): every request parsed and sorted
all of a sweep's rows (p95 about 1 s at 5,000 rows). Each sortable metric is now also
a nullable float column ``m_<metric>`` (NULL when the metric is undefined), filled
here from the JSON of existing rows, with an index ``(sweep_id, m_<metric>, index)``
per column (and on ``objective`` and ``psr``): a page reads about limit + offset
index entries. On SQLite the table is rebuilt so the new columns sit before the
``returns`` blob (read without walking its overflow pages). PostgreSQL and SQLite.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 08:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of app.db.models.sweep.SORTABLE_METRICS as of this revision.
METRICS = (
    "alpha", "avg_trade_return", "benchmark_cagr", "benchmark_total_return",
    "best_trade_return", "beta", "cagr", "calmar_ratio", "correlation", "exposure",
    "final_equity", "information_ratio", "max_drawdown", "max_drawdown_duration_days",
    "profit_factor", "sharpe_ratio", "sortino_ratio", "total_return", "total_trades",
    "tracking_error", "turnover", "volatility", "win_rate", "worst_trade_return",
)  # fmt: skip
COLUMNS = tuple(f"m_{m}" for m in METRICS)
INDEXED = ("objective", "psr", *COLUMNS)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        with op.batch_alter_table("sweep_rows", recreate="always") as batch:
            for column in COLUMNS:
                batch.add_column(
                    sa.Column(column, sa.Float(), nullable=True),
                    insert_before="returns",
                )
    else:  # the returns are TOASTed out of line on PostgreSQL: order is moot
        for column in COLUMNS:
            op.add_column("sweep_rows", sa.Column(column, sa.Float(), nullable=True))
    rows = sa.table(
        "sweep_rows",
        sa.column("metrics", sa.JSON()),
        *(sa.column(c, sa.Float()) for c in COLUMNS),
    )
    # JSON null (an undefined metric) casts to NULL on both databases.
    op.execute(
        rows.update().values(
            {
                c: rows.c.metrics[m].as_float()
                for c, m in zip(COLUMNS, METRICS, strict=True)
            }
        )
    )
    for column in INDEXED:
        op.create_index(
            f"ix_sweep_rows_{column}", "sweep_rows", ["sweep_id", column, "index"]
        )


def downgrade() -> None:
    for column in INDEXED:
        op.drop_index(f"ix_sweep_rows_{column}", table_name="sweep_rows")
    with op.batch_alter_table("sweep_rows") as batch:
        for column in reversed(COLUMNS):
            batch.drop_column(column)
