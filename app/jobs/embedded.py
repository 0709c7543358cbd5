"""Embedded mode: a real Celery worker inside the API process, plus the sweeper loop.

The worker consumes from kombu's in-memory transport on a few threads; the tasks and
every code path after the broker are the same as in distributed mode. Queued messages
live in memory only: if the process stops, the sweeper re-sends the pending rows at
the next start (the database is the source of truth).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import app.jobs.tasks  # noqa: F401 - registers the tasks on celery_app
from app.core.config import Settings
from app.core.outages import unavailable_dependency
from app.core.queue import MAINTENANCE_QUEUE, QUEUE, get_celery
from app.jobs import limits, registry, runner, sweeper

celery_app = get_celery()  # the in-process worker's app (the API's, embedded mode)

log = structlog.get_logger(__name__)


class EmbeddedWorker:
    """A Celery worker on a background thread of this process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._worker: Any = None
        self._thread: threading.Thread | None = None
        # A stop during the warm-up must keep the worker from starting after it:
        # stopping a WorkController that has not started yet does nothing, and the
        # thread would then consume the broker forever (it is a daemon thread).
        self._lock = threading.Lock()
        self._stopping = False
        self._started = False

    def start(self) -> None:
        runner.configure(self.settings)
        # The library worker (as celery.contrib.testing runs one on a thread), not
        # app.Worker, the `celery worker` program: that one also prints a banner,
        # sets up logging and warns when the *process* runs as root (a check meant
        # for a stand-alone worker daemon; here the process is the API server).
        self._worker = celery_app.WorkController(
            pool="threads",
            concurrency=self.settings.embedded_worker_concurrency,
            loglevel=self.settings.log_level,
            hostname=f"embedded@{socket.gethostname()}",
            # Job runs and maintenance (webhook deliveries) in the one worker.
            queues=[QUEUE, MAINTENANCE_QUEUE],
            without_heartbeat=True,
            without_mingle=True,
            without_gossip=True,
        )
        self._thread = threading.Thread(
            target=self._warm_up_then_work, name="embedded-celery-worker", daemon=True
        )
        self._thread.start()
        log.info(
            "embedded_worker.started", threads=self.settings.embedded_worker_concurrency
        )

    def _warm_up_then_work(self) -> None:
        """Each kind's warm-up (compiled kernels, the dataset) on this thread, off the
        request path: jobs submitted meanwhile wait in the queue, never a request."""
        for kind in registry.registered():
            if self._stopping:
                return
            if kind.warm_up is not None:
                kind.warm_up(self.settings)
        with self._lock:
            if self._stopping:
                return
            self._started = True
        self._worker.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def warming_up(self) -> bool:
        """Alive but still in its warm-up: a job submitted now waits for it (the
        readiness check says so, as a distributed worker answers no ping before its
        own warm-up is done)."""
        return self.alive and not self._started

    def stop(self, timeout: float = 30.0) -> None:
        """Warm shutdown: running jobs finish (bounded by ``timeout``)."""
        if self._worker is None or self._thread is None:
            return
        with self._lock:
            self._stopping = True
            started = self._started
        if started:
            self._worker.stop(in_sighandler=False)
        # not started: the thread ends after the warm-up step it is in
        self._thread.join(timeout)
        log.info("embedded_worker.stopped", clean=not self._thread.is_alive())


async def sweep_forever(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """The embedded equivalent of the Celery beat schedule (cancelled on shutdown)."""
    while True:
        try:
            async with sessionmaker() as session:
                await sweeper.sweep(session, settings=settings, enqueue=limits.send)
        except Exception as exc:  # the loop outlives any one sweep
            dependency = unavailable_dependency(exc)
            if dependency is None:
                log.exception("sweeper.failed")  # a bug: logged with its traceback
            else:  # an outage: the next sweep catches up
                log.warning(
                    "sweeper.skipped",
                    dependency=dependency,
                    error_type=type(exc).__name__,
                )
        await asyncio.sleep(settings.sweep_interval_seconds)
