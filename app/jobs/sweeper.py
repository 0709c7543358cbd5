"""The sweeper: no job stays ``running`` forever, no ``pending`` job is forgotten.

Run periodically (Celery beat in distributed mode, a background task of the API in
embedded mode). The database is the source of truth, so this also recovers from a
Redis restart that lost queued messages:

* ``running`` with a heartbeat older than ``STALE_HEARTBEAT_SECONDS``: its worker died
  without the broker noticing (e.g. the whole machine vanished). Re-queue it, or, once
  it has stopped its worker ``MAX_ATTEMPTS`` times (``jobs.deliveries``), fail it as a
  dead letter (:mod:`app.jobs.deadletters`).
* ``pending`` not (re)sent for ``PENDING_REQUEUE_SECONDS``: the message may be lost.
  Send it again; if the original is still queued, the second delivery finds the row
  already claimed and does nothing (guarded claim), so duplicates are harmless.
* ``queued`` jobs are not stale: they wait for a slot by design. Each sweep runs the
  queue's dispatcher (``app.jobs.scheduler``), which heals a dispatch missed
  during an outage.
* Idempotency keys older than ``IDEMPOTENCY_TTL_HOURS`` are deleted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.outages import unavailable_dependency
from app.db.base import utcnow
from app.db.models import Job, JobStatus
from app.jobs import deadletters, idempotency, limits, registry, scheduler
from app.jobs import repository as jobs_repo

log = structlog.get_logger(__name__)


@dataclass
class SweepReport:
    requeued: int = 0
    failed: int = 0
    resent: int = 0
    dispatched: int = 0
    expired_keys: int = 0


async def sweep(
    session: AsyncSession,
    *,
    settings: Settings,
    enqueue: limits.Sender,
    now: dt.datetime | None = None,
) -> SweepReport:
    now = now or utcnow()
    heartbeat_before = now - dt.timedelta(seconds=settings.stale_heartbeat_seconds)
    rows = await jobs_repo.list_stale(
        session,
        heartbeat_before=heartbeat_before,
        enqueued_before=now - dt.timedelta(seconds=settings.pending_requeue_seconds),
    )
    report = SweepReport()
    for row in rows:
        action = await _settle(session, row, settings, heartbeat_before)
        if action == "failed":
            report.failed += 1
            continue
        if action is None:
            continue
        job_limits = await limits.limits_of(session, row, settings)
        try:
            await anyio.to_thread.run_sync(enqueue, str(row.id), job_limits)
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise  # a bug, not an outage: the caller logs it
            log.warning("sweeper.enqueue_failed", task_id=str(row.id))  # next sweep
            await session.rollback()
            break
        await jobs_repo.mark_enqueued(session, row.id, now=now)
        await session.commit()
        if action == "requeued":
            report.requeued += 1
        else:
            report.resent += 1
    dispatched = await scheduler.dispatch_quietly(
        session, settings=settings, enqueue=enqueue
    )
    report.dispatched = 0 if dispatched is None else len(dispatched.sent)
    report.expired_keys = await idempotency.purge_expired(session, settings=settings)
    await _run_hooks(session, settings, now)
    if report.requeued or report.failed or report.resent or report.expired_keys:
        log.info("sweeper.swept", **report.__dict__)
    return report


async def _run_hooks(
    session: AsyncSession, settings: Settings, now: dt.datetime
) -> None:
    """The registered sweep hooks (webhook re-dispatch, due schedules); one failing
    hook does not stop the others."""
    for hook in registry.sweep_hooks():
        try:
            await hook(session, settings, now)
        except Exception as exc:
            await session.rollback()
            if unavailable_dependency(exc) is None:
                log.exception("sweeper.hook_failed", hook=hook.__name__)
            else:
                log.warning("sweeper.hook_skipped", hook=hook.__name__)


async def _settle(
    session: AsyncSession,
    row: Job,
    settings: Settings,
    heartbeat_before: dt.datetime,
) -> str | None:
    if row.status == JobStatus.PENDING.value:
        return "resent"
    if row.deliveries >= settings.max_attempts:
        stopped = row.deliveries
        ok = await deadletters.dead_letter(
            session, row, stopped=stopped, settings=settings
        )
        return "failed" if ok else None
    ok = await jobs_repo.release_stale_running(
        session, row.id, heartbeat_before=heartbeat_before
    )
    if not ok:
        await session.rollback()
        return None
    await session.commit()
    return "requeued"
