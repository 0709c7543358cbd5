"""The Celery application and the producer side of the job queue.

Redis broker in distributed mode, kombu's in-memory transport in embedded mode (the
worker then runs inside the API process). Task *definitions* live in
``app.jobs.tasks`` (one task runs every kind of job: it reads the kind from the job
row); this module only configures Celery and sends messages, so services can enqueue
without importing the worker side.

Reliability settings (why each is there):

* ``task_acks_late`` + ``task_reject_on_worker_lost``: a message is acknowledged only
  after the task finished, and re-queued if the worker process died mid-task, so a
  crashed worker never loses a job. The task itself is idempotent (guarded claim) and
  caps attempts, so a job that kills its worker every time ends ``failed``.
* ``worker_prefetch_multiplier = 1``: a worker reserves one job at a time, so a long
  backtest does not hold others hostage in its prefetch buffer.
* Soft/hard time limits per task, and per job from its owner's tier
  (``app.jobs.limits``, in the message); Redis ``visibility_timeout`` above the
  longest hard limit, so the broker never re-delivers a job that is still
  legitimately running.
* Running tasks survive a broker outage
  (``worker_cancel_long_running_tasks_on_connection_loss=False``); the sweeper
  re-sends what a Redis without persistence lost.
* Beat runs the sweeper every ``sweep_interval_seconds`` (stale heartbeats, lost
  messages) on the maintenance queue, never behind queued job runs.
"""

from __future__ import annotations

import threading
import uuid
from typing import TYPE_CHECKING

from app.core.config import Settings, get_settings

if TYPE_CHECKING:
    from celery import Celery

QUEUE = "jobs"
# Webhook deliveries and other housekeeping: never stuck behind long job runs.
MAINTENANCE_QUEUE = "maintenance"
RUN_TASK = "jobs.run"
SWEEP_TASK = "jobs.sweep"
# The notification outbox's periodic re-send (app.jobs.notify.resend).
RESEND_TASK = "notifications.resend"


def create_celery(settings: Settings) -> Celery:
    from celery import Celery  # noqa: PLC0415 - see get_celery

    # "localhost": kombu warns "No hostname was supplied" for a bare memory://.
    broker = settings.redis_url or "memory://localhost/"
    backend = settings.redis_url or "cache+memory://"
    app = Celery("backtest", broker=broker, backend=backend)
    hard = settings.task_time_limit_seconds
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_soft_time_limit=settings.task_soft_time_limit_seconds,
        task_time_limit=hard,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=True,
        broker_connection_retry_on_startup=True,
        # A broker outage must not stop running jobs: they only need the database,
        # and their late acks are harmless if lost (a re-delivery finds the job
        # finished and skips it). Explicit: Celery plans to flip the default.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # Above the longest hard limit a job can get (its own, per tier).
        broker_transport_options={
            "visibility_timeout": max(hard, settings.longest_job_seconds) + 300,
            # The in-memory transport (embedded mode) polls for messages (1 s by
            # default): a job dispatched when a slot frees would idle the slot that
            # long. Redis blocks on BRPOP instead and ignores this.
            **({} if settings.redis_url else {"polling_interval": 0.05}),
        },
        # Fail fast when Redis is down: the API answers 503 instead of hanging.
        broker_connection_timeout=2,
        redis_socket_connect_timeout=2,
        redis_socket_timeout=5,
        result_expires=24 * 3600,
        # The sweeper runs on the maintenance queue (its own worker slots), so
        # recovering orphaned jobs never waits behind the runs queued on ``jobs``;
        # a sweep not started within one interval expires (the next one does its
        # work), so a stalled maintenance worker does not come back to a backlog.
        task_routes={SWEEP_TASK: {"queue": MAINTENANCE_QUEUE}},
        beat_schedule={
            "sweep-stale-jobs": {
                "task": SWEEP_TASK,
                "schedule": float(settings.sweep_interval_seconds),
                "options": {
                    "queue": MAINTENANCE_QUEUE,
                    "expires": float(settings.sweep_interval_seconds),
                },
            },
            "resend-notifications": {
                "task": RESEND_TASK,
                "schedule": float(settings.notification_resend_interval_seconds),
                "options": {"queue": MAINTENANCE_QUEUE},
            },
        },
    )
    return app


_celery_app: Celery | None = None
_celery_lock = threading.Lock()


def get_celery() -> Celery:
    """The process's Celery app, built (from the settings) at its first use.

    Not at import: Celery and kombu (with yaml, dateutil, billiard...) cost the API
    process ~0.3 s of start-up and ~10 MB, and the API of distributed mode only sends
    messages, the first of them at its first submission (issue 18). The worker side
    (``celery_worker``, the task modules, the embedded worker) asks for it at import.
    Also connects the request-id headers (:mod:`app.core.task_context`), so every
    message this process sends carries the request id bound by the HTTP middleware.
    """
    global _celery_app  # noqa: PLW0603 - one app per process, built once
    if _celery_app is None:
        with _celery_lock:  # two first submissions at once must share one app
            if _celery_app is None:
                from app.core import task_context  # noqa: PLC0415 - imports celery

                app = create_celery(get_settings())
                task_context.install()
                _celery_app = app
    return _celery_app


def enqueue_job(
    job_id: uuid.UUID | str,
    *,
    soft_time_limit: float | None = None,
    time_limit: float | None = None,
) -> str:
    """Send ``jobs.run(job_id)``; returns the Celery task id (the claim token
    of that delivery). ``soft_time_limit``/``time_limit``: the job's own limits
    (``app.jobs.limits``; default: the task defaults). Blocking (call from a thread
    in async code); raises when the broker cannot be reached after a short retry."""
    result = get_celery().send_task(
        RUN_TASK,
        args=[str(job_id)],
        queue=QUEUE,
        soft_time_limit=soft_time_limit,
        time_limit=time_limit,
        # send_task ignores task_ignore_result: without this it also sets up the
        # Redis result consumer, whose reconnect loop (20 retries) made a submit with
        # Redis down hang ~20 s before the 503. Nobody reads results (the DB has them).
        ignore_result=True,
        retry=True,
        retry_policy={
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.25,
            "interval_max": 0.5,
        },
    )
    return str(result.id)


def enqueue_maintenance(
    task_name: str, *args: str, countdown: float | None = None
) -> str:
    """Send a maintenance task (e.g. a webhook delivery) to its own queue; blocking,
    raises when the broker cannot be reached (the caller's sweep re-sends)."""
    result = get_celery().send_task(
        task_name,
        args=list(args),
        queue=MAINTENANCE_QUEUE,
        countdown=countdown,
        ignore_result=True,
        retry=True,
        retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.25},
    )
    return str(result.id)
