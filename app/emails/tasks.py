"""``emails.send`` on the maintenance queue: one message, retried with backoff when
the SMTP server cannot be reached or refuses temporarily."""

from __future__ import annotations

import smtplib

from app.core.queue import celery_app
from app.emails import mail
from app.jobs.runner import worker_settings

SEND_TASK = "emails.send"


@celery_app.task(  # type: ignore[untyped-decorator]
    name=SEND_TASK,
    ignore_result=True,
    autoretry_for=(OSError, smtplib.SMTPException),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
)
def send_email(to: str, subject: str, body: str) -> None:
    mail.send(worker_settings(), to=to, subject=subject, body=body)
