"""Celery edge of the sweep kind: ``sweeps.chunks``, a helper that works through a
running sweep's chunks (:mod:`app.sweeps.chunks`). Best effort by design: a helper
that never runs, or dies, costs speed only (the coordinator runs or takes over every
chunk), so it is not retried and not acknowledged late."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.queue import QUEUE, get_celery
from app.data.store import load_dataset
from app.db.models import JobStatus
from app.jobs import limits
from app.jobs import repository as jobs_repo
from app.jobs.progress import get_bus
from app.jobs.runner import run_in_worker_db, worker_settings
from app.sweeps import chunks, grid, rows

celery_app = get_celery()  # a worker-side module: tasks register at import

CHUNKS_TASK = "sweeps.chunks"
# How often a helper re-reads the job's status from the database (the Redis cancel
# flag is read more often, through rows.CancelCheck).
STATUS_POLL_SECONDS = 0.5
log = structlog.get_logger(__name__)


def request_helpers(job_id: uuid.UUID, count: int, settings: Settings) -> None:
    """Queue ``count`` helpers for a running sweep (best effort), each under the
    job's own time limits (its owner's tier, :mod:`app.jobs.limits`) rather than
    the generic task limits: a helper works for the sweep as long as the sweep may
    run. (The job's status stops it sooner: a sweep that ends stops its helpers.)"""
    if count <= 0:
        return
    soft, hard = limits.celery_limits(run_in_worker_db(_limits_of(job_id, settings)))
    for _ in range(count):
        try:
            celery_app.send_task(
                CHUNKS_TASK,
                args=[str(job_id)],
                queue=QUEUE,
                ignore_result=True,
                soft_time_limit=soft,
                time_limit=hard,
            )
        except Exception as exc:  # no helper: the coordinator does the work
            log.warning("sweep.helper_not_queued", error_type=type(exc).__name__)
            return


def _limits_of(
    job_id: uuid.UUID, settings: Settings
) -> Callable[[AsyncSession], Awaitable[limits.TimeLimits]]:
    async def read(session: AsyncSession) -> limits.TimeLimits:
        row = await jobs_repo.get(session, job_id)
        if row is None:  # deleted meanwhile: the helpers will find nothing to do
            return limits.time_limits(settings, tier="free", is_admin=False, kind="")
        return await limits.limits_of(session, row, settings)

    return read


class _Running:
    """True while the sweep is running: the Redis cancel flag (fast path) and the
    job row's status, read at most every STATUS_POLL_SECONDS."""

    def __init__(self, job_id: uuid.UUID, redis_url: str | None) -> None:
        self.job_id, self.bus = job_id, get_bus(redis_url)
        self.last, self.running = 0.0, True

    def cancelled(self) -> bool:
        if not self.running:
            return True
        now = time.monotonic()
        if now - self.last >= STATUS_POLL_SECONDS:
            self.last = now
            row = run_in_worker_db(lambda s: jobs_repo.get(s, self.job_id))
            self.running = row is not None and row.status == JobStatus.RUNNING.value
        try:
            if self.bus.cancel_requested(str(self.job_id)):
                self.running = False
        except Exception:  # Redis down: the database check still sees a cancel
            log.debug("sweep.helper_bus_unavailable")
        return not self.running


@celery_app.task(name=CHUNKS_TASK, bind=True, ignore_result=True)  # type: ignore[untyped-decorator]
def run_chunks(self: Any, job_id_text: str) -> str:
    settings = worker_settings()
    job_id = uuid.UUID(job_id_text)
    row = run_in_worker_db(lambda s: jobs_repo.get(s, job_id))
    if row is None or row.status != JobStatus.RUNNING.value:
        return "skipped"
    config = row.config
    data = load_dataset(
        config["base"].get("dataset"), datasets_dir=settings.resolved_datasets_dir
    )
    running = _Running(job_id, settings.redis_url)
    try:
        chunks.work(
            job_id,
            config=config,
            combos=grid.valid_combinations(config),
            data=data,
            token=f"helper:{self.request.id}",
            cancelled=rows.CancelCheck(running.cancelled),
        )
    except chunks.Stop:
        return "stopped"
    except SoftTimeLimitExceeded:  # the job's own limit: the coordinator fails it
        return "timed out"
    return "done"
