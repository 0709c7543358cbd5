"""``emails.send`` on the maintenance queue: one attempt of one outbox message
(:mod:`app.emails.outbox`); a failed attempt queues the next one with a countdown."""

from __future__ import annotations

import smtplib
import uuid

from app.core.queue import enqueue_maintenance, get_celery
from app.emails import mail, outbox
from app.emails.outbox import SEND_TASK
from app.jobs.runner import run_in_worker_db, worker_settings

celery_app = get_celery()  # a worker-side module: tasks register at import


@celery_app.task(name=SEND_TASK, ignore_result=True, acks_late=True)  # type: ignore[untyped-decorator]
def send_email(email_id: str) -> str:
    settings = worker_settings()
    message = run_in_worker_db(lambda s: outbox.claim(s, uuid.UUID(email_id)))
    if message is None:
        return "skipped"
    error: str | None = None
    try:
        mail.send(settings, to=message.to, subject=message.subject, body=message.body)
    except (OSError, smtplib.SMTPException) as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    delay = run_in_worker_db(
        lambda s: outbox.record(s, message, error=error, settings=settings)
    )
    if delay is not None:
        enqueue_maintenance(SEND_TASK, email_id, countdown=delay)
    return "sent" if error is None else "retry" if delay is not None else "failed"
