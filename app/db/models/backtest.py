"""Result tables of the backtest kind (the job row itself is :class:`Job`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONDocument


class BacktestSeries(Base):
    """Chart data (equity curve, drawdown, monthly returns), written at completion."""

    __tablename__ = "backtest_series"

    backtest_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
