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

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONDocument


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
    returns: Mapped[bytes] = mapped_column(LargeBinary)


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
