"""Result tables of the sweep kind (the job row itself is :class:`Job`).

A sweep row needs metrics and daily returns, not trades: one row per combination
with its grid params, the backtest metric set, its PSR and its daily returns as
little-endian float64 bytes (``T`` returns = 8·T bytes; 10 years ≈ 20 kB). Rows are
written while the sweep runs, so a cancelled sweep keeps the rows it finished.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONDocument

#: Metrics of a sweep row that are also stored as numeric columns ``m_<metric>``
#: (sortable and indexed). Names as in a single backtest's ``metrics``. Migration
#: 0011 added them; adding one needs a migration too.
SORTABLE_METRICS = (
    "alpha", "avg_trade_return", "benchmark_cagr", "benchmark_total_return",
    "best_trade_return", "beta", "cagr", "calmar_ratio", "correlation", "exposure",
    "final_equity", "information_ratio", "max_drawdown", "max_drawdown_duration_days",
    "profit_factor", "sharpe_ratio", "sortino_ratio", "total_return", "total_trades",
    "tracking_error", "turnover", "volatility", "win_rate", "worst_trade_return",
)  # fmt: skip


class SweepRow(Base):
    """One combination of a sweep; ``index`` is its position among the valid
    combinations in grid order (the last grid key varies fastest)."""

    __tablename__ = "sweep_rows"

    sweep_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    # The objective's value (sign as the metric: lower-is-better metrics are not
    # negated here), denormalised for "best so far" and the default sort.
    objective: Mapped[float | None] = mapped_column(Float)
    psr: Mapped[float | None] = mapped_column(Float)
    # Every sortable metric (SORTABLE_METRICS) again as a number, ``m_<metric>``:
    # NULL when the metric is undefined (None/NaN/inf in ``metrics``). Each has an
    # index ``(sweep_id, m_<metric>, index)`` (and ``objective``/``psr`` too), so a
    # sorted page reads about limit + offset index entries instead of parsing every
    # row's JSON. Declared before ``returns``: SQLite then reads them without
    # walking a long row's overflow pages.
    m_alpha: Mapped[float | None] = mapped_column(Float)
    m_avg_trade_return: Mapped[float | None] = mapped_column(Float)
    m_benchmark_cagr: Mapped[float | None] = mapped_column(Float)
    m_benchmark_total_return: Mapped[float | None] = mapped_column(Float)
    m_best_trade_return: Mapped[float | None] = mapped_column(Float)
    m_beta: Mapped[float | None] = mapped_column(Float)
    m_cagr: Mapped[float | None] = mapped_column(Float)
    m_calmar_ratio: Mapped[float | None] = mapped_column(Float)
    m_correlation: Mapped[float | None] = mapped_column(Float)
    m_exposure: Mapped[float | None] = mapped_column(Float)
    m_final_equity: Mapped[float | None] = mapped_column(Float)
    m_information_ratio: Mapped[float | None] = mapped_column(Float)
    m_max_drawdown: Mapped[float | None] = mapped_column(Float)
    m_max_drawdown_duration_days: Mapped[float | None] = mapped_column(Float)
    m_profit_factor: Mapped[float | None] = mapped_column(Float)
    m_sharpe_ratio: Mapped[float | None] = mapped_column(Float)
    m_sortino_ratio: Mapped[float | None] = mapped_column(Float)
    m_total_return: Mapped[float | None] = mapped_column(Float)
    m_total_trades: Mapped[float | None] = mapped_column(Float)
    m_tracking_error: Mapped[float | None] = mapped_column(Float)
    m_turnover: Mapped[float | None] = mapped_column(Float)
    m_volatility: Mapped[float | None] = mapped_column(Float)
    m_win_rate: Mapped[float | None] = mapped_column(Float)
    m_worst_trade_return: Mapped[float | None] = mapped_column(Float)
    returns: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (
        *(
            Index(f"ix_sweep_rows_{c}", "sweep_id", c, "index")
            for c in ("objective", "psr", *(f"m_{m}" for m in SORTABLE_METRICS))
        ),
    )

    @classmethod
    def sort_column(cls, name: str) -> Any:
        """The numeric column behind ``name``: a metric, ``psr`` or ``objective``."""
        if name in {"psr", "objective"}:
            return getattr(cls, name)
        if name not in SORTABLE_METRICS:
            raise KeyError(name)
        return getattr(cls, f"m_{name}")


class SweepSummary(Base):
    """What a sweep knows once per sweep: its dates (``int32`` days since the epoch,
    little-endian; written before the first row) and, at completion, the
    overfitting diagnostics and the walk-forward result."""

    __tablename__ = "sweep_summaries"

    sweep_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    dates: Mapped[bytes] = mapped_column(LargeBinary)
    overfitting: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    walk_forward: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # The walk-forward's stitched out-of-sample curve: dates, equity, benchmark.
    chart: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class SweepChunk(Base):
    """A contiguous range of a sweep's rows (``lo`` <= index < ``hi``) that one
    worker claims at a time, so several workers can share a sweep: ``pending`` ->
    ``running`` (``claim_token``, ``heartbeat_at``) -> ``done``. A running chunk
    whose heartbeat went stale is taken over by the sweep's coordinator."""

    __tablename__ = "sweep_chunks"

    sweep_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    chunk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lo: Mapped[int] = mapped_column(Integer)
    hi: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    claim_token: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column()
