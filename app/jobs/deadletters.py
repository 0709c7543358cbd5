"""Poison messages and the dead-letter list.

Every delivery of a job's message counts itself on the job row before it claims the
job (``jobs.deliveries`` + 1, committed) and takes itself off when it returns,
whatever the outcome (:mod:`app.jobs.tasks`). A delivery that never returns is one
whose worker died under it: a crash or a kill inside the run, an out-of-memory kill,
the hard time limit, or a crash before the claim (a bad message). So the counter is
the number of times the job stopped its worker. Once it reaches ``MAX_ATTEMPTS``
(3), the next delivery (or the sweeper, finding the job's heartbeat stale) does not
run it again: the job fails with "The <kind> stopped its worker 3 times", error code
``worker_lost``, and is listed as a dead letter for admins
(``GET /v1/admin/dead-letters``); ``POST /v1/admin/dead-letters/{id}/requeue``
resets the counter and queues it again.

Deliveries that end normally never count, so Celery's retries after a transient
outage and duplicate deliveries (a re-sent message for a claimed job) are free.
"""

from __future__ import annotations

import uuid

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import NotFound
from app.core.outages import unavailable_dependency
from app.db.models import Job
from app.jobs import deadletter_repository as repo
from app.jobs import limits, notify, registry
from app.jobs import repository as jobs_repo

log = structlog.get_logger(__name__)
WORKER_LOST = "worker_lost"


def poison_error(kind: str, stopped: int) -> str:
    try:
        noun = registry.get(kind).label.lower()
    except LookupError:
        noun = "job"
    return (
        f"The {noun} stopped its worker {stopped} times (a crash, a kill or its "
        "hard time limit); it was not run again and is kept in the dead-letter list."
    )


async def dead_letter(
    session: AsyncSession, row: Job, *, stopped: int, settings: Settings
) -> bool:
    """Fail ``row`` as a poison job (whoever holds it) and list it; commits. False
    when it was no longer active."""
    ok = await jobs_repo.mark_failed(
        session,
        row.id,
        error=poison_error(row.kind, stopped),
        error_code=WORKER_LOST,
        dead_letter=True,
    )
    # the notifications go in the same transaction (the outbox, README)
    steps = await notify.write_outbox(session, row.id, settings=settings) if ok else []
    await session.commit()
    if ok:
        log.warning("job.dead_lettered", task_id=str(row.id), stopped=stopped)
        await notify.send_outbox(steps, row.id)
    return ok


async def list_dead_letters(
    session: AsyncSession, *, limit: int, offset: int
) -> tuple[list[Job], int]:
    return await repo.list_dead_letters(session, limit=limit, offset=offset)


async def requeue(
    session: AsyncSession, *, job_id: uuid.UUID, settings: Settings
) -> Job:
    """Reset a dead letter's counter and queue it again (``NotFound`` unless it is a
    dead letter). If the broker cannot be reached the job stays pending and the
    sweeper sends it later."""
    if not await repo.requeue(session, job_id):
        await session.rollback()
        raise NotFound("No dead letter with this id.")
    await session.commit()
    row = await jobs_repo.get(session, job_id)
    assert row is not None
    job_limits = await limits.limits_of(session, row, settings)
    try:
        await anyio.to_thread.run_sync(limits.send, str(job_id), job_limits)
    except Exception as exc:
        if unavailable_dependency(exc) is None:
            raise
        log.warning("dead_letter.requeue_not_sent", task_id=str(job_id))
        return row
    await jobs_repo.mark_enqueued(session, job_id)
    await session.commit()
    await session.refresh(row)
    log.info("dead_letter.requeued", task_id=str(job_id))
    return row
