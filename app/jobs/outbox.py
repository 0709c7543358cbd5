"""The notification outbox's periodic re-send (:func:`app.jobs.notify.resend`): the
``notifications.resend`` maintenance-queue task (``app.jobs.tasks``, worker side)
and its embedded-mode trigger here.

Distributed mode: Celery beat sends it every ``NOTIFICATION_RESEND_INTERVAL_SECONDS``
(``app.core.queue``), so it never waits behind job runs. Embedded mode has no beat:
every pass of the sweeper loop queues it on the in-memory maintenance queue, which
the in-process worker consumes. Imported by ``app.kinds`` (API, worker and beat).
"""

from __future__ import annotations

import datetime as dt

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.queue import RESEND_TASK, enqueue_maintenance
from app.jobs import registry


async def queue_resend_embedded(
    session: AsyncSession, settings: Settings, now: dt.datetime
) -> None:
    """Embedded mode's stand-in for the beat entry (a sweep hook)."""
    if settings.redis_url:
        return  # distributed: beat sends it
    await anyio.to_thread.run_sync(enqueue_maintenance, RESEND_TASK)


registry.on_sweep(queue_resend_embedded)
