"""What a completed backtest keeps beyond its lots and chart: positions, the analysis
and a compact binary book (fills, daily holdings, cash, exposure), written at
completion in the job's completing transaction (:mod:`app.backtests.results`)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigIntPK, JSONDocument


class BacktestResult(Base):
    """One row per completed backtest: ``analysis`` (JSON, served as is), ``book``
    (a compressed ``.npz`` of daily arrays and fills) and the run's symbols with their
    sectors (``book`` refers to symbols by column index)."""

    __tablename__ = "backtest_results"

    backtest_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    analysis: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    symbols: Mapped[list[str]] = mapped_column(JSONDocument)
    sectors: Mapped[list[str]] = mapped_column(JSONDocument)
    book: Mapped[bytes] = mapped_column(LargeBinary)


class Position(Base):
    """A symbol held continuously from its first buy to its last sell (app.engine.
    positions); ``closed`` is None while still held at the end."""

    __tablename__ = "backtest_positions"
    __table_args__ = (
        Index("ix_backtest_positions_backtest_id_opened", "backtest_id", "opened"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    backtest_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE")
    )
    symbol: Mapped[str] = mapped_column(String(32))
    sector: Mapped[str] = mapped_column(String(64))
    opened: Mapped[dt.date] = mapped_column(Date)
    closed: Mapped[dt.date | None] = mapped_column(Date)
    avg_entry_price: Mapped[float] = mapped_column(Float)
    avg_exit_price: Mapped[float | None] = mapped_column(Float)
    peak_shares: Mapped[float] = mapped_column(Float)
    shares: Mapped[float] = mapped_column(Float)  # still held at the end (0 if closed)
    cost: Mapped[float] = mapped_column(Float)
    dividends: Mapped[float] = mapped_column(Float)
    realised_pnl: Mapped[float] = mapped_column(Float)
    unrealised_pnl: Mapped[float] = mapped_column(Float)
    pnl: Mapped[float] = mapped_column(Float)
    return_pct: Mapped[float] = mapped_column(Float)
    holding_days: Mapped[int] = mapped_column(Integer)
    fills: Mapped[int] = mapped_column(Integer)
    lots: Mapped[int] = mapped_column(Integer)

    @property
    def is_open(self) -> bool:
        return self.closed is None
