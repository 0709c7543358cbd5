"""A sweep's result rows and its summary. Nothing here commits."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.db.base import utcnow
from app.db.models import SweepChunk, SweepRow, SweepSummary


def _number(name: str) -> ColumnElement[Any]:
    """The numeric column of a sortable metric, ``psr`` or ``objective`` (NULL when
    undefined); each is indexed ``(sweep_id, column, index)``."""
    column: ColumnElement[Any] = SweepRow.sort_column(name)
    return column


async def insert_rows(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert result rows; a row already there (a re-run after a crash, or a chunk
    taken over) is left as it is: results are deterministic."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "postgresql":
        statement = pg_insert(SweepRow).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite_insert(SweepRow).on_conflict_do_nothing()
    else:  # pragma: no cover - the two supported backends are above
        statement = insert(SweepRow)
    await session.execute(statement, list(rows))


async def done_indexes(session: AsyncSession, sweep_id: uuid.UUID) -> set[int]:
    query = select(SweepRow.index).where(SweepRow.sweep_id == sweep_id)
    return set(await session.scalars(query))


async def count(session: AsyncSession, sweep_id: uuid.UUID) -> int:
    query = select(func.count()).where(SweepRow.sweep_id == sweep_id)
    return int(await session.scalar(query) or 0)


async def best(
    session: AsyncSession, sweep_id: uuid.UUID, *, higher_is_better: bool
) -> SweepRow | None:
    """The best row by the stored objective (ties: the lowest index)."""
    order = SweepRow.objective.desc() if higher_is_better else SweepRow.objective.asc()
    query = (
        select(SweepRow)
        .where(SweepRow.sweep_id == sweep_id, SweepRow.objective.is_not(None))
        .order_by(order, SweepRow.index)
        .options(defer(SweepRow.returns))
        .limit(1)
    )
    return (await session.scalars(query)).first()


@dataclass(frozen=True, slots=True)
class RowView:
    """What a results page shows of a row (no ORM object: a page is read-only)."""

    index: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    psr: float | None


_VIEW_COLUMNS = (SweepRow.index, SweepRow.params, SweepRow.metrics, SweepRow.psr)


async def page(
    session: AsyncSession, sweep_id: uuid.UUID, *, sort: str, limit: int, offset: int
) -> tuple[list[RowView], int]:
    """A page of rows (without their returns) and the total.

    Order: by ``sort`` (a metric, ``psr`` or ``index``; ``-`` prefix = descending);
    rows whose value is undefined (NULL: NaN, no trades, ...) come last whichever
    the direction, by index; ties by index ascending, so pages are stable.

    Each step reads only the index ``(sweep_id, column, index)``: how many values
    are defined, then the page's row numbers among the defined values, then (past
    them) among the undefined ones; two range reads rather than one ``NULLS LAST``
    sort, which neither database can serve from one index in both directions. Only
    the page's rows are then loaded, by primary key."""
    name, descending = sort.removeprefix("-"), sort.startswith("-")
    if name == "index":
        total = await count(session, sweep_id)
        order = SweepRow.index.desc() if descending else SweepRow.index.asc()
        query = (
            select(*_VIEW_COLUMNS)
            .where(SweepRow.sweep_id == sweep_id)
            .order_by(order)
            .limit(limit)
            .offset(offset)
        )
        return [RowView(*r) for r in await session.execute(query)], total
    column = _number(name)
    of_sweep = SweepRow.sweep_id == sweep_id
    # Both counts in one scan of the column's index (COUNT(col) skips NULLs).
    counted = (
        await session.execute(select(func.count(), func.count(column)).where(of_sweep))
    ).one()
    total, defined = int(counted[0]), int(counted[1])
    wanted: list[int] = []
    if offset < defined:
        direction = column.desc() if descending else column.asc()
        wanted.extend(
            await session.scalars(
                select(SweepRow.index)
                .where(of_sweep, column.is_not(None))
                .order_by(direction, SweepRow.index)
                .limit(min(limit, defined - offset))
                .offset(offset)
            )
        )
    if len(wanted) < limit and defined < total:
        wanted.extend(
            await session.scalars(
                select(SweepRow.index)
                .where(of_sweep, column.is_(None))
                .order_by(SweepRow.index)
                .limit(limit - len(wanted))
                .offset(max(offset - defined, 0))
            )
        )
    if not wanted:
        return [], total
    loaded = await session.execute(
        select(*_VIEW_COLUMNS).where(of_sweep, SweepRow.index.in_(wanted))
    )
    by_index = {r[0]: RowView(*r) for r in loaded}
    return [by_index[i] for i in wanted], total


async def objectives(session: AsyncSession, sweep_id: uuid.UUID) -> list[float | None]:
    """The stored objective of every row, by index (no JSON, no ORM objects)."""
    query = (
        select(SweepRow.objective)
        .where(SweepRow.sweep_id == sweep_id)
        .order_by(SweepRow.index)
    )
    return list(await session.scalars(query))


async def get_row(
    session: AsyncSession, sweep_id: uuid.UUID, index: int
) -> SweepRow | None:
    return await session.get(SweepRow, (sweep_id, index))


async def metric_cells(
    session: AsyncSession, sweep_id: uuid.UUID, metric: str
) -> list[tuple[int, dict[str, Any], float | None]]:
    """``(index, params, metric)`` of every row, by index."""
    query = (
        select(SweepRow.index, SweepRow.params, _number(metric))
        .where(SweepRow.sweep_id == sweep_id)
        .order_by(SweepRow.index)
    )
    return [(int(i), dict(p), v) for i, p, v in (await session.execute(query)).all()]


async def all_returns(
    session: AsyncSession, sweep_id: uuid.UUID
) -> list[tuple[int, bytes]]:
    """``(index, returns bytes)`` of every row, by index."""
    return await returns_between(session, sweep_id, lo=0, hi=None)


async def returns_between(
    session: AsyncSession, sweep_id: uuid.UUID, *, lo: int, hi: int | None
) -> list[tuple[int, bytes]]:
    """``(index, returns bytes)`` of the rows with ``lo <= index < hi``, by index
    (a primary-key range: callers read a large sweep in bounded blocks)."""
    query = select(SweepRow.index, SweepRow.returns).where(
        SweepRow.sweep_id == sweep_id, SweepRow.index >= lo
    )
    if hi is not None:
        query = query.where(SweepRow.index < hi)
    rows = await session.execute(query.order_by(SweepRow.index))
    return [(int(i), bytes(b)) for i, b in rows.all()]


async def save_dates(session: AsyncSession, sweep_id: uuid.UUID, dates: bytes) -> None:
    """The summary row with the sweep's dates (kept if already there)."""
    if await session.get(SweepSummary, sweep_id) is None:
        session.add(SweepSummary(sweep_id=sweep_id, dates=dates))
        await session.flush()


async def save_results(
    session: AsyncSession,
    sweep_id: uuid.UUID,
    *,
    overfitting: dict[str, Any] | None,
    walk_forward: dict[str, Any] | None,
    chart: dict[str, Any] | None,
) -> None:
    await session.execute(
        update(SweepSummary)
        .where(SweepSummary.sweep_id == sweep_id)
        .values(overfitting=overfitting, walk_forward=walk_forward, chart=chart)
    )


async def return_count(session: AsyncSession, sweep_id: uuid.UUID) -> int:
    """T, the daily returns each row holds: the sweep's dates minus the first."""
    summary = await get_summary(session, sweep_id)
    return 0 if summary is None else max(len(summary.dates) // 4 - 1, 0)


async def get_summary(
    session: AsyncSession, sweep_id: uuid.UUID
) -> SweepSummary | None:
    return await session.get(SweepSummary, sweep_id)


async def create_chunks(
    session: AsyncSession, sweep_id: uuid.UUID, *, n: int, size: int
) -> int:
    """Cut ``n`` rows into chunks of ``size`` (once per sweep); the chunk count."""
    query = select(func.count()).where(SweepChunk.sweep_id == sweep_id)
    existing = int(await session.scalar(query) or 0)
    if existing:
        return existing
    values = [
        {"sweep_id": sweep_id, "chunk": c, "lo": lo, "hi": min(lo + size, n),
         "status": "pending"}
        for c, lo in enumerate(range(0, n, size))
    ]  # fmt: skip
    if values:
        await session.execute(insert(SweepChunk), values)
    return len(values)


async def claim_chunk(
    session: AsyncSession,
    sweep_id: uuid.UUID,
    *,
    token: str,
    stale_before: dt.datetime | None,
) -> SweepChunk | None:
    """Claim the first pending chunk (or, with ``stale_before``, a running one whose
    heartbeat is older) by a guarded update; None when there is none to take."""
    claimable = SweepChunk.status == "pending"
    if stale_before is not None:
        stale = and_(
            SweepChunk.status == "running", SweepChunk.heartbeat_at < stale_before
        )
        claimable = or_(claimable, stale)
    candidates = await session.scalars(
        select(SweepChunk.chunk)
        .where(SweepChunk.sweep_id == sweep_id, claimable)
        .order_by(SweepChunk.chunk)
        .limit(8)
    )
    for chunk in list(candidates):
        result = await session.execute(
            update(SweepChunk)
            .where(
                SweepChunk.sweep_id == sweep_id, SweepChunk.chunk == chunk, claimable
            )
            .values(status="running", claim_token=token, heartbeat_at=utcnow())
        )
        if cast("CursorResult[Any]", result).rowcount == 1:
            return await session.get(SweepChunk, (sweep_id, chunk))
    return None


async def touch_chunk(
    session: AsyncSession, sweep_id: uuid.UUID, chunk: int, *, token: str, done: bool
) -> bool:
    """Heartbeat (or finish, ``done``) a chunk this claim holds; False once lost."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if done:
        values["status"] = "done"
    result = await session.execute(
        update(SweepChunk)
        .where(
            SweepChunk.sweep_id == sweep_id,
            SweepChunk.chunk == chunk,
            SweepChunk.status == "running",
            SweepChunk.claim_token == token,
        )
        .values(**values)
    )
    return cast("CursorResult[Any]", result).rowcount == 1


async def chunks_left(session: AsyncSession, sweep_id: uuid.UUID) -> int:
    query = select(func.count()).where(
        SweepChunk.sweep_id == sweep_id, SweepChunk.status != "done"
    )
    return int(await session.scalar(query) or 0)
