"""``webhooks.deliver``: one attempt of one delivery, on the maintenance queue; a
failed attempt queues the next one with the schedule's delay (a countdown). Safe to
deliver twice: the claim only lets one attempt through while it is due."""

from __future__ import annotations

import uuid

from app.core.queue import enqueue_maintenance, get_celery
from app.jobs.runner import run_in_worker_db, worker_settings
from app.webhooks import delivery
from app.webhooks.client import guarded_client
from app.webhooks.hooks import DELIVER_TASK

celery_app = get_celery()  # a worker-side module: tasks register at import


@celery_app.task(name=DELIVER_TASK, ignore_result=True, acks_late=True)  # type: ignore[untyped-decorator]
def deliver(delivery_id: str) -> str:
    settings = worker_settings()
    key = uuid.UUID(delivery_id)
    attempt = run_in_worker_db(lambda s: delivery.claim(s, key, settings=settings))
    if attempt is None:
        return "skipped"
    with guarded_client(
        allowed_hosts=settings.webhook_allowed_hosts,
        timeout=settings.webhook_timeout_seconds,
    ) as client:
        outcome = delivery.send(client, attempt)
    delay = run_in_worker_db(
        lambda s: delivery.record(s, attempt, outcome, settings=settings)
    )
    if delay is not None:
        enqueue_maintenance(DELIVER_TASK, delivery_id, countdown=delay)
    return "delivered" if outcome.ok else "retry" if delay is not None else "failed"
