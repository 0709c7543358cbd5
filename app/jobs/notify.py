"""The notification outbox of the job lifecycle: completion listeners (webhooks,
e-mail) write their rows in the transaction that saves a job's terminal state, and
queue the rows' messages after the commit.

* ``write_outbox(session, job_id)`` — called by the runner (completed, failed) and
  the sweeper (gave up on a job) **before** they commit the terminal state: the
  outbox rows (webhook deliveries, pending e-mails) commit with it or not at all.
  Each listener runs in a savepoint, so a failing listener is logged, loses only
  its own rows and never changes the job.
* ``send_outbox(steps)`` — after the commit: the listeners' after-commit steps
  (queue the deliveries on the maintenance queue). If the process dies between
  the commit and this call, or the broker is down, the rows stay ``pending``.
* ``resend(session, settings, now)`` — the periodic re-send
  (``notifications.resend`` on the maintenance queue, every
  ``NOTIFICATION_RESEND_INTERVAL_SECONDS``): queues again every pending row whose
  attempt is overdue by ``NOTIFICATION_RESEND_AFTER_SECONDS`` (the registered
  ``on_resend`` hooks). A duplicate message is harmless: each attempt first claims
  its row, and a webhook keeps its ``webhook-id`` on every attempt (at least once).
"""

from __future__ import annotations

import datetime as dt
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.outages import unavailable_dependency
from app.db.models import Job, JobStatus
from app.jobs import registry
from app.jobs.registry import AfterCommit, JobEvent, Notice

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


async def write_outbox(
    session: AsyncSession, job_id: uuid.UUID, *, settings: Settings
) -> list[AfterCommit]:
    """Write every listener's outbox rows for job ``job_id`` in the caller's
    (uncommitted) transaction; returns the steps to run after its commit."""
    listeners = registry.completion_listeners()
    if not listeners:
        return []
    row = await session.get(Job, job_id, populate_existing=True)
    if row is None or row.status not in NOTIFIED_STATUSES:
        return []
    event = event_of(row)
    steps: list[AfterCommit] = []
    for listener in listeners:
        try:
            async with session.begin_nested():
                step = await listener(session, event, settings)
        except Exception:
            log.exception(
                "job.listener_failed", task_id=str(job_id), listener=listener.__name__
            )
            continue
        if step is not None:
            steps.append(step)
    return steps


async def write_notice(
    session: AsyncSession, notice: Notice, *, settings: Settings
) -> list[AfterCommit]:
    """The outbox rows of ``notice`` in the caller's (uncommitted) transaction."""
    steps: list[AfterCommit] = []
    for listener in registry.notice_listeners():
        try:
            async with session.begin_nested():
                step = await listener(session, notice, settings)
        except Exception:
            log.exception(
                "notice.listener_failed", type=notice.type, listener=listener.__name__
            )
            continue
        if step is not None:
            steps.append(step)
    return steps


async def send_outbox(steps: list[AfterCommit], key: object) -> None:
    """Run the after-commit steps; a failure leaves the rows to ``resend``."""
    for step in steps:
        try:
            await step()
        except Exception:
            log.exception("job.outbox_send_failed", task_id=str(key))


async def resend(session: AsyncSession, settings: Settings, now: dt.datetime) -> None:
    """Queue again the overdue outbox rows of every registered domain."""
    for hook in registry.resend_hooks():
        try:
            await hook(session, settings, now)
        except Exception as exc:
            await session.rollback()
            if unavailable_dependency(exc) is None:
                log.exception("outbox.resend_failed", hook=hook.__name__)
            else:
                log.warning("outbox.resend_skipped", hook=hook.__name__)


async def job_finished(
    session: AsyncSession, job_id: uuid.UUID, *, settings: Settings
) -> None:
    """Notify for a terminal state that is already committed (tools, tests): write
    the outbox rows, commit them, queue them."""
    steps = await write_outbox(session, job_id, settings=settings)
    await session.commit()
    await send_outbox(steps, job_id)
