from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, BigIntPK


class Trade(Base):
    """One position of a backtest: opened at ``entry_date``, closed at ``exit_date``."""

    __tablename__ = "trades"
    __table_args__ = (
        Index(
            "ix_trades_backtest_id_symbol_entry_date",
            "backtest_id",
            "symbol",
            "entry_date",
        ),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    backtest_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE")
    )
    symbol: Mapped[str] = mapped_column(String(32))
    entry_date: Mapped[dt.date] = mapped_column(Date)
    entry_price: Mapped[float] = mapped_column(Float)
    exit_date: Mapped[dt.date | None] = mapped_column(Date)
    exit_price: Mapped[float | None] = mapped_column(Float)
    quantity: Mapped[float] = mapped_column(Float)  # shares; fractional allowed
    pnl: Mapped[float | None] = mapped_column(Float)
    pnl_percent: Mapped[float | None] = mapped_column(Float)
    is_open: Mapped[bool] = mapped_column(Boolean)
