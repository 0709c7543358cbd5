"""Firing due schedules: a sweep hook (Celery beat's sweep in distributed mode, the
sweeper loop in embedded mode), so the schedule lives in the database and survives
restarts.

Exactly once per (schedule, due time), whatever the number of beat processes: the
firing row's primary key is that pair, and it is inserted in the **same
transaction** as the job it creates (the submission commits both). A second pass
that reaches the same due time fails the insert (or waits for the first
transaction, then fails) and skips. Each firing is a normal submission of the
template's kind (validation, the owner's quota); a refused one (429, a template no
longer valid) is recorded on the schedule (``last_error``) and on its firing row.
Missed runs (the service was down) are not replayed: the next run is the first
one after now.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import AppError
from app.core.rate_limit import RateLimiter
from app.db.models import Schedule, ScheduleFiring, Template, User
from app.jobs import notify, registry
from app.jobs.quotas import SubmissionQuota
from app.jobs.registry import AfterCommit, Notice
from app.schedules import cron, repository

log = structlog.get_logger(__name__)
STUCK_AFTER = dt.timedelta(minutes=5)
REFUSED_EVENT = "schedule.refused"


async def fire_due(session: AsyncSession, settings: Settings, now: dt.datetime) -> int:
    """Fire every schedule due at ``now``; returns how many jobs this pass created."""
    ids = await repository.due(session, now=now)
    await session.rollback()
    if not ids:
        return 0
    limiter = RateLimiter(settings)
    fired = 0
    try:
        for schedule_id in ids:
            fired += await _fire(session, schedule_id, settings, limiter, now)
    finally:
        await limiter.aclose()
    return fired


async def _claim(
    session: AsyncSession, schedule_id: uuid.UUID, now: dt.datetime
) -> tuple[dt.datetime, Template, User] | None:
    """Insert the firing row of the schedule's due time (not committed: the
    submission commits it with the job); None when there is nothing to fire."""
    row = await session.get(Schedule, schedule_id, populate_existing=True)
    due_at = row.next_run_at if row is not None else None
    if row is None or row.status != "active" or due_at is None or due_at > now:
        await session.rollback()  # paused, deleted, or fired and moved on
        return None
    try:
        await repository.add_firing(session, schedule_id, due_at)
    except IntegrityError:
        await session.rollback()
        log.info("schedule.already_fired", schedule_id=str(schedule_id))
        await _unstick(session, schedule_id, due_at, now)
        return None
    template = await session.get(Template, row.template_id)
    user = await session.get(User, row.user_id)
    if template is None or user is None:  # deleted meanwhile (cascade follows)
        await session.rollback()
        return None
    return due_at, template, user


async def _fire(
    session: AsyncSession,
    schedule_id: uuid.UUID,
    settings: Settings,
    limiter: RateLimiter,
    now: dt.datetime,
) -> int:
    claimed = await _claim(session, schedule_id, now)
    if claimed is None:
        return 0
    due_at, template, user = claimed
    config = {**template.config}
    config.setdefault("name", template.name)
    # Read now: the refusal's rollback expires the ORM objects.
    refused = _refused(schedule_id, template, due_at, settings)
    quota = SubmissionQuota(limiter=limiter, settings=settings)
    job_id, error = None, None
    steps: list[AfterCommit] = []
    try:
        outcome = await registry.api_of(template.kind).submit(
            session, user=user, config=config, settings=settings, quota=quota, key=None
        )
        job_id = uuid.UUID(outcome.body["task_id"])
    except AppError as exc:
        await session.rollback()
        error = f"Run of {due_at:%Y-%m-%d %H:%M} UTC refused: {exc.message}"
        # Recorded unless the firing row exists already (the job was stored but
        # not queued: a 503); either way the schedule moves on.
        if await _record_refusal(session, schedule_id, due_at, error):
            steps = await notify.write_notice(
                session, refused(error), settings=settings
            )
    await _advance(session, schedule_id, due_at, job_id=job_id, error=error, now=now)
    await notify.send_outbox(steps, schedule_id)
    if job_id is None:
        log.warning("schedule.refused", schedule_id=str(schedule_id), error=error)
        return 0
    log.info("schedule.fired", schedule_id=str(schedule_id), task_id=str(job_id))
    return 1


def _refused(
    schedule_id: uuid.UUID, template: Template, due_at: dt.datetime, settings: Settings
) -> Callable[[str], Notice]:
    """The ``schedule.refused`` notice (webhook ``data``, e-mail text) for a
    refusal's error; written with the refusal's firing row, in its transaction
    (the outbox). Reads the template now: a rollback expires ORM objects."""
    link = f"{settings.public_base_url.rstrip('/')}/v1/schedules/{schedule_id}"
    name, template_id, user_id = template.name, template.id, template.user_id
    config = dict(template.config)

    def notice(error: str) -> Notice:
        return Notice(
            type=REFUSED_EVENT,
            user_id=user_id,
            data={
                "schedule_id": str(schedule_id),
                "template_id": str(template_id),
                "template_name": name,
                "due_at": due_at.isoformat(),
                "error": error,
                "links": {"self": link},
            },
            subject=f"Scheduled run refused: {name}",
            text=f'The scheduled run of "{name}" was refused.\n\n{error}\n\n'
            f"Schedule: {link}\n",
            config=config,
        )

    return notice


async def _unstick(
    session: AsyncSession, schedule_id: uuid.UUID, due_at: dt.datetime, now: dt.datetime
) -> None:
    """A pass that fired ``due_at`` and died before moving the schedule on would
    leave it stuck on a due time nobody may fire again: move it on after a while."""
    firing = await session.get(ScheduleFiring, (schedule_id, due_at))
    if firing is not None and firing.created_at < now - STUCK_AFTER:
        await _advance(
            session,
            schedule_id,
            due_at,
            job_id=firing.job_id,
            error=firing.error,
            now=now,
        )
    else:
        await session.rollback()


async def _record_refusal(
    session: AsyncSession, schedule_id: uuid.UUID, due_at: dt.datetime, error: str
) -> bool:
    try:
        firing = await repository.add_firing(session, schedule_id, due_at)
    except IntegrityError:
        await session.rollback()
        return False
    firing.error = error
    return True


async def _advance(
    session: AsyncSession,
    schedule_id: uuid.UUID,
    due_at: dt.datetime,
    *,
    job_id: uuid.UUID | None,
    error: str | None,
    now: dt.datetime,
) -> None:
    row = await session.get(Schedule, schedule_id, populate_existing=True)
    if row is None:
        await session.rollback()
        return
    if job_id is not None:
        firing = await session.get(ScheduleFiring, (schedule_id, due_at))
        if firing is not None:
            firing.job_id = job_id
        row.last_job_id = job_id
    row.last_run_at = due_at
    row.last_error = error
    row.next_run_at = cron.next_run(row.cron, row.timezone, max(due_at, now))
    await session.commit()
