"""A completed backtest's stored results beyond lots and chart: positions (paged,
sorted, filtered like lots) and the analysis/book row. Nothing here commits."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Literal

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Select

from app.db.models import BacktestResult, Position

if TYPE_CHECKING:
    from app.backtests.results import Stored

PositionSort = Literal[
    "opened", "-opened", "closed", "-closed", "symbol", "-symbol", "pnl", "-pnl",
    "return_pct", "-return_pct", "holding_days", "-holding_days",
]  # fmt: skip
_SORT_COLUMNS = {
    "opened": Position.opened,
    "closed": Position.closed,
    "symbol": Position.symbol,
    "pnl": Position.pnl,
    "return_pct": Position.return_pct,
    "holding_days": Position.holding_days,
}


async def save(session: AsyncSession, job_id: uuid.UUID, stored: Stored) -> None:
    """Insert the positions and the results row of a completing job."""
    if stored.positions:
        rows = [{"backtest_id": job_id, **p} for p in stored.positions]
        await session.execute(insert(Position), rows)
    session.add(
        BacktestResult(
            backtest_id=job_id,
            analysis=stored.analysis,
            symbols=stored.symbols,
            sectors=stored.sectors,
            book=stored.book,
        )
    )
    await session.flush()


async def get(session: AsyncSession, job_id: uuid.UUID) -> BacktestResult | None:
    return await session.get(BacktestResult, job_id)


async def get_analysis(
    session: AsyncSession, job_id: uuid.UUID
) -> dict[str, object] | None:
    """Only the analysis document (not the book)."""
    query = select(BacktestResult.analysis).where(BacktestResult.backtest_id == job_id)
    value = await session.scalar(query)
    return None if value is None else dict(value)


def _filtered(
    job_id: uuid.UUID,
    *,
    symbol: str | None,
    sector: str | None,
    is_open: bool | None,
    opened_from: dt.date | None,
    opened_to: dt.date | None,
) -> Select[Position]:
    query = select(Position).where(Position.backtest_id == job_id)
    if symbol is not None:
        query = query.where(Position.symbol == symbol)
    if sector is not None:
        query = query.where(Position.sector == sector)
    if is_open is not None:
        held = Position.closed.is_(None)
        query = query.where(held if is_open else ~held)
    if opened_from is not None:
        query = query.where(Position.opened >= opened_from)
    if opened_to is not None:
        query = query.where(Position.opened <= opened_to)
    return query


async def page_positions(
    session: AsyncSession,
    job_id: uuid.UUID,
    *,
    symbol: str | None = None,
    sector: str | None = None,
    is_open: bool | None = None,
    opened_from: dt.date | None = None,
    opened_to: dt.date | None = None,
    sort: PositionSort = "opened",
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[Position], int]:
    """One page of positions and the filtered total; ties broken by (opened, symbol,
    id) so pages are stable; NULLs (open positions' ``closed``) sort last."""
    query = _filtered(
        job_id,
        symbol=symbol,
        sector=sector,
        is_open=is_open,
        opened_from=opened_from,
        opened_to=opened_to,
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    column = _SORT_COLUMNS[sort.removeprefix("-")]
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = await session.scalars(
        query.order_by(
            order.nulls_last(), Position.opened, Position.symbol, Position.id
        )
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def all_positions(session: AsyncSession, job_id: uuid.UUID) -> list[Position]:
    rows = await session.scalars(
        select(Position)
        .where(Position.backtest_id == job_id)
        .order_by(Position.opened, Position.symbol, Position.id)
    )
    return list(rows)
