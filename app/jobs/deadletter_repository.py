"""The SQL of the poison-message counter and the dead-letter list (``jobs``
columns ``deliveries`` and ``dead_lettered_at``). Nothing here commits."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ACTIVE_STATUSES, Job, JobStatus

_ACTIVE = [s.value for s in ACTIVE_STATUSES]


async def add_delivery(session: AsyncSession, job_id: uuid.UUID) -> int | None:
    """Count a delivery that begins; the job's unfinished deliveries including this
    one, or None when the job is unknown or no longer active (nothing counted)."""
    statement = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(_ACTIVE))
        .values(deliveries=Job.deliveries + 1)
        .execution_options(synchronize_session=False)
    )
    result = cast("CursorResult[Any]", await session.execute(statement))
    if result.rowcount != 1:
        return None
    count = await session.scalar(select(Job.deliveries).where(Job.id == job_id))
    return int(count or 0)


async def end_delivery(session: AsyncSession, job_id: uuid.UUID) -> None:
    """Take a delivery that returned (whatever its outcome) off the counter."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.deliveries > 0)
        .values(deliveries=Job.deliveries - 1)
        .execution_options(synchronize_session=False)
    )


async def list_dead_letters(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[Job], int]:
    """Dead-lettered jobs, newest first, and their total."""
    where = Job.dead_lettered_at.is_not(None)
    total = await session.scalar(select(func.count()).where(where))
    query = (
        select(Job)
        .where(where)
        .order_by(Job.dead_lettered_at.desc(), Job.id)
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(query)), int(total or 0)


async def requeue(session: AsyncSession, job_id: uuid.UUID) -> bool:
    """Put a dead-lettered job back to ``pending`` with a fresh counter (guarded: only
    a job that is still a dead letter)."""
    statement = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.dead_lettered_at.is_not(None),
            Job.status == JobStatus.FAILED.value,
        )
        .values(
            status=JobStatus.PENDING.value,
            deliveries=0,
            dead_lettered_at=None,
            error=None,
            error_code=None,
            claim_token=None,
            cancel_requested=False,
            progress=0.0,
            current_date=None,
            trades_executed=0,
            started_at=None,
            completed_at=None,
            heartbeat_at=None,
        )
        .execution_options(synchronize_session="fetch")
    )
    result = cast("CursorResult[Any]", await session.execute(statement))
    return result.rowcount == 1
