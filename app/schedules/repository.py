"""SQL of schedules and their firings (repositories never commit)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Schedule, ScheduleFiring, Template


async def template_for_owner(
    session: AsyncSession, template_id: uuid.UUID, user_id: uuid.UUID
) -> Template | None:
    query = select(Template).where(
        Template.id == template_id, Template.user_id == user_id
    )
    return (await session.scalars(query)).first()


async def get_for_owner(
    session: AsyncSession, schedule_id: uuid.UUID, user_id: uuid.UUID
) -> Schedule | None:
    query = select(Schedule).where(
        Schedule.id == schedule_id, Schedule.user_id == user_id
    )
    return (await session.scalars(query)).first()


async def list_for_owner(session: AsyncSession, user_id: uuid.UUID) -> list[Schedule]:
    query = (
        select(Schedule)
        .where(Schedule.user_id == user_id)
        .order_by(Schedule.created_at, Schedule.id)
    )
    return list(await session.scalars(query))


async def count_active(session: AsyncSession, user_id: uuid.UUID) -> int:
    query = select(func.count()).where(
        Schedule.user_id == user_id, Schedule.status == "active"
    )
    return int(await session.scalar(query) or 0)


async def due(
    session: AsyncSession, *, now: dt.datetime, limit: int = 100
) -> list[uuid.UUID]:
    query = (
        select(Schedule.id)
        .where(Schedule.status == "active", Schedule.next_run_at <= now)
        .order_by(Schedule.next_run_at)
        .limit(limit)
    )
    return list(await session.scalars(query))


async def add_firing(
    session: AsyncSession, schedule_id: uuid.UUID, due_at: dt.datetime
) -> ScheduleFiring:
    """Flushes at once: the primary key (schedule, due time) raises IntegrityError
    when another process fired this due time (or waits for its transaction)."""
    row = ScheduleFiring(schedule_id=schedule_id, due_at=due_at)
    session.add(row)
    await session.flush()
    return row
