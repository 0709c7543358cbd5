"""Celery tasks: thin adapters around :mod:`app.jobs.runner` and the sweeper.

Tasks take ids, not objects. ``jobs.run`` (every kind of job) is safe to deliver
twice (guarded claim), counts its deliveries against poison messages
(:mod:`app.jobs.deadletters`) and retries with exponential backoff only for transient
infrastructure errors (the database or Redis unreachable); a job's own failures
(``JobFailed``) fail the job instead. ``jobs.sweep`` and ``notifications.resend``
are the periodic maintenance tasks (beat, or the embedded sweeper loop).
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError

from app.core import task_context
from app.core.metrics import BACKTEST_ACTIVE, BACKTEST_DURATION, BACKTEST_REQUESTS
from app.core.outages import unavailable_dependency
from app.core.queue import RESEND_TASK, RUN_TASK, SWEEP_TASK, get_celery
from app.db.base import utcnow
from app.jobs import limits, notify, runner, sweeper

celery_app = get_celery()  # a worker-side module: tasks register at import

log = structlog.get_logger(__name__)
task_context.install()  # the request id rides in message headers into task logs

TRANSIENT = (
    OperationalError,
    DBAPIError,
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
)


@celery_app.task(  # type: ignore[untyped-decorator]
    name=RUN_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=5,
)
def run_job(self: Any, job_id: str) -> str:
    started, outcome = time.perf_counter(), "retry"
    BACKTEST_ACTIVE.inc()
    try:
        outcome = _run(self, job_id)
        return outcome
    finally:
        BACKTEST_ACTIVE.dec()
        if outcome != "retry":  # the job's slot is free: the next queued job may go
            runner.dispatch_next()
        BACKTEST_REQUESTS.labels(status=outcome).inc()
        BACKTEST_DURATION.labels(status=outcome).observe(time.perf_counter() - started)


def _run(self: Any, job_id: str) -> str:
    token = str(self.request.id)
    # Counted before the claim, so a message that crashes its worker anywhere below
    # (even before the claim) is caught as a poison message (app.jobs.deadletters).
    counted, outcome = runner.begin_delivery(job_id)
    if outcome is not None:
        runner.end_delivery(job_id)
        return outcome
    try:
        return _execute(job_id, token)
    finally:
        if counted:
            runner.end_delivery(job_id)


def _execute(job_id: str, token: str) -> str:
    try:
        return runner.execute(job_id, claim_token=token)
    except SoftTimeLimitExceeded:
        runner.fail_job(job_id, claim_token=token, reason="timeout")
        return "failed"
    except TRANSIENT:
        raise  # autoretry with backoff; the re-delivery re-claims under the same token
    except Exception:
        # A bug, not the user's fault and not transient: fail the job visibly instead
        # of leaving it running until the sweeper gives up on it.
        log.exception("job.crashed", task_id=job_id)
        runner.fail_job(job_id, claim_token=token, reason="internal")
        return "failed"


@celery_app.task(name=SWEEP_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def sweep() -> dict[str, int]:
    settings = runner.worker_settings()

    async def go(session: Any) -> sweeper.SweepReport:
        return await sweeper.sweep(session, settings=settings, enqueue=limits.send)

    try:
        report = runner.run_in_worker_db(go)
    except Exception as exc:
        dependency = unavailable_dependency(exc)
        if dependency is None:
            raise
        # An outage, not a bug: the next sweep (seconds away) catches up.
        log.warning(
            "sweeper.skipped", dependency=dependency, error_type=type(exc).__name__
        )
        return {}
    return dict(report.__dict__)


@celery_app.task(name=RESEND_TASK, ignore_result=True)  # type: ignore[untyped-decorator]
def resend() -> None:
    """The notification outbox's periodic re-send (:mod:`app.jobs.outbox`)."""
    settings = runner.worker_settings()
    try:
        runner.run_in_worker_db(lambda s: notify.resend(s, settings, utcnow()))
    except Exception as exc:
        if unavailable_dependency(exc) is None:
            raise
        log.warning("outbox.resend_skipped", error_type=type(exc).__name__)
