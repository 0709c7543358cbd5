"""Tell the registered completion listeners (webhooks, e-mail) that a job finished.

Called by the runner after the terminal state is committed and by the sweeper when
it gives up on a job. Listeners are best effort from the job's point of view: a
failing listener is logged and never changes the job (a webhook delivery itself is
then retried by its own task)."""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.models import Job, JobStatus
from app.jobs import registry
from app.jobs.registry import JobEvent

log = structlog.get_logger(__name__)
NOTIFIED_STATUSES = frozenset({JobStatus.COMPLETED.value, JobStatus.FAILED.value})


def event_of(row: Job) -> JobEvent:
    return JobEvent(
        job_id=row.id,
        user_id=row.user_id,
        kind=row.kind,
        status=row.status,
        name=row.name,
        config=dict(row.config or {}),
        metrics=dict(row.metrics) if row.metrics else None,
        error=row.error,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )


async def job_finished(
    session: AsyncSession, job_id: uuid.UUID, *, settings: Settings
) -> None:
    """Run every listener for job ``job_id`` (re-read: the committed state)."""
    listeners = registry.completion_listeners()
    if not listeners:
        return
    row = await session.get(Job, job_id, populate_existing=True)
    if row is None or row.status not in NOTIFIED_STATUSES:
        return
    event = event_of(row)
    for listener in listeners:
        try:
            await listener(session, event, settings)
        except Exception:
            await session.rollback()
            log.exception(
                "job.listener_failed", task_id=str(job_id), listener=listener.__name__
            )
