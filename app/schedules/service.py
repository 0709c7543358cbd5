"""Schedules on the API side: create (cron checked), list, read, pause, resume,
delete. Firing is :mod:`app.schedules.firing`."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.db.base import utcnow
from app.db.models import Schedule, User
from app.schedules import cron, repository
from app.schedules.schemas import ScheduleCreate


def _checked(request: ScheduleCreate, settings: Settings) -> None:
    try:
        cron.zone(request.timezone)
    except cron.CronError as exc:
        raise ValidationFailed(f"{exc}.", field="body.timezone") from exc
    try:
        cron.check(
            request.cron,
            request.timezone,
            min_interval_seconds=settings.schedule_min_interval_seconds,
            now=utcnow(),
        )
    except cron.CronError as exc:
        raise ValidationFailed(f"{exc}.", field="body.cron") from exc


async def _room_for_one_more(
    session: AsyncSession, user: User, settings: Settings
) -> None:
    cap = settings.schedule_max_active_per_user
    if await repository.count_active(session, user.id) >= cap:
        raise Conflict(f"At most {cap} active schedules per account; pause one first.")


async def create(
    session: AsyncSession, *, user: User, request: ScheduleCreate, settings: Settings
) -> Schedule:
    _checked(request, settings)
    template = await repository.template_for_owner(
        session, request.template_id, user.id
    )
    if template is None:
        raise ValidationFailed("No such template.", field="body.template_id")
    await _room_for_one_more(session, user, settings)
    row = Schedule(
        user_id=user.id,
        template_id=template.id,
        cron=request.cron,
        timezone=request.timezone,
        status="active",
        next_run_at=cron.next_run(request.cron, request.timezone, utcnow()),
    )
    session.add(row)
    await session.commit()
    return row


async def get_owned(session: AsyncSession, *, user: User, schedule_id: str) -> Schedule:
    try:
        key = uuid.UUID(schedule_id)
    except ValueError:
        key = None
    row = key and await repository.get_for_owner(session, key, user.id)
    if not row:
        raise NotFound("Schedule not found", task_id=schedule_id)
    return row


async def list_owned(session: AsyncSession, *, user: User) -> list[Schedule]:
    return await repository.list_for_owner(session, user.id)


async def pause(session: AsyncSession, *, user: User, schedule_id: str) -> Schedule:
    row = await get_owned(session, user=user, schedule_id=schedule_id)
    row.status, row.next_run_at = "paused", None
    await session.commit()
    return row


async def resume(
    session: AsyncSession, *, user: User, schedule_id: str, settings: Settings
) -> Schedule:
    """Active again from now on (runs missed while paused are not made up)."""
    row = await get_owned(session, user=user, schedule_id=schedule_id)
    if row.status != "active":
        await _room_for_one_more(session, user, settings)
        row.status = "active"
        row.next_run_at = cron.next_run(row.cron, row.timezone, utcnow())
    await session.commit()
    return row


async def delete(session: AsyncSession, *, user: User, schedule_id: str) -> None:
    row = await get_owned(session, user=user, schedule_id=schedule_id)
    await session.delete(row)
    await session.commit()
