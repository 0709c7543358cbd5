"""A backtest's result rows: trades (written in bulk at completion, read a page at a
time) and the chart series. Nothing here commits."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from app.db.models import BacktestSeries, Trade

_TRADE_FIELDS = (
    "symbol",
    "entry_date",
    "entry_price",
    "exit_date",
    "exit_price",
    "quantity",
    "pnl",
    "pnl_percent",
    "is_open",
)


TradeSort = Literal[
    "entry_date", "-entry_date", "exit_date", "-exit_date", "symbol", "-symbol",
    "pnl", "-pnl", "pnl_percent", "-pnl_percent",
]  # fmt: skip
_SORT_COLUMNS = {
    "entry_date": Trade.entry_date,
    "exit_date": Trade.exit_date,
    "symbol": Trade.symbol,
    "pnl": Trade.pnl,
    "pnl_percent": Trade.pnl_percent,
}


async def bulk_insert(
    session: AsyncSession, backtest_id: uuid.UUID, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Insert trades (mappings with the ``Trade`` column names); returns the count.

    ``exit_date``/``exit_price``/``pnl``/``pnl_percent`` may be missing (open trade).
    """
    values = [
        {"backtest_id": backtest_id, **{f: row.get(f) for f in _TRADE_FIELDS}}
        for row in rows
    ]
    if values:
        await session.execute(insert(Trade), values)
    return len(values)


def _filtered(
    backtest_id: uuid.UUID,
    *,
    symbol: str | None,
    is_open: bool | None,
    entry_from: dt.date | None,
    entry_to: dt.date | None,
) -> Select[Trade]:
    query = select(Trade).where(Trade.backtest_id == backtest_id)
    if symbol is not None:
        query = query.where(Trade.symbol == symbol)
    if is_open is not None:
        query = query.where(Trade.is_open.is_(is_open))
    if entry_from is not None:
        query = query.where(Trade.entry_date >= entry_from)
    if entry_to is not None:
        query = query.where(Trade.entry_date <= entry_to)
    return query


async def page(
    session: AsyncSession,
    backtest_id: uuid.UUID,
    *,
    symbol: str | None = None,
    is_open: bool | None = None,
    entry_from: dt.date | None = None,
    entry_to: dt.date | None = None,
    sort: TradeSort = "entry_date",
    limit: int | None = 100,
    offset: int = 0,
) -> tuple[list[Trade], int]:
    """One page of trades and the filtered total; ties broken by (entry_date, symbol,
    id) so pages are stable. NULLs (open trades' exits) sort last."""
    query = _filtered(
        backtest_id,
        symbol=symbol,
        is_open=is_open,
        entry_from=entry_from,
        entry_to=entry_to,
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    column = _SORT_COLUMNS[sort.removeprefix("-")]
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = await session.scalars(
        query.order_by(order.nulls_last(), Trade.entry_date, Trade.symbol, Trade.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def save_series(
    session: AsyncSession, job_id: uuid.UUID, payload: dict[str, Any]
) -> None:
    session.add(BacktestSeries(backtest_id=job_id, payload=payload))
    await session.flush()


async def get_series(session: AsyncSession, job_id: uuid.UUID) -> dict[str, Any] | None:
    series = await session.get(BacktestSeries, job_id)
    return None if series is None else series.payload
