"""``notifications.resend``: the periodic re-send of the notification outbox
(:func:`app.jobs.notify.resend`), a maintenance-queue task.

Distributed mode: Celery beat sends it every ``NOTIFICATION_RESEND_INTERVAL_SECONDS``
(``app.core.queue``), so it never waits behind job runs. Embedded mode has no beat:
every pass of the sweeper loop queues it on the in-memory maintenance queue, which
the in-process worker consumes. Imported by ``app.kinds`` (API, worker and beat).
"""

from __future__ import annotations

import datetime as dt

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.outages import unavailable_dependency
from app.core.queue import RESEND_TASK, celery_app, enqueue_maintenance
from app.db.base import utcnow
from app.jobs import notify, registry
from app.jobs.runner import run_in_worker_db, worker_settings

log = structlog.get_logger(__name__)


@celery_app.task(name=RESEND_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def resend() -> None:
    settings = worker_settings()
    try:
        run_in_worker_db(lambda s: notify.resend(s, settings, utcnow()))
    except Exception as exc:
        if unavailable_dependency(exc) is None:
            raise
        log.warning("outbox.resend_skipped", error_type=type(exc).__name__)


async def queue_resend_embedded(
    session: AsyncSession, settings: Settings, now: dt.datetime
) -> None:
    """Embedded mode's stand-in for the beat entry (a sweep hook)."""
    if settings.redis_url:
        return  # distributed: beat sends it
    await anyio.to_thread.run_sync(enqueue_maintenance, RESEND_TASK)


registry.on_sweep(queue_resend_embedded)
