"""The e-mail outbox: a message is a ``pending_emails`` row written in the
transaction of the event it announces, then sent by ``emails.send`` (one attempt
per message on the maintenance queue).

Each attempt claims the row (``next_attempt_at`` moves a lease ahead), so the
periodic re-send's duplicate message does nothing while an attempt runs. A failed
attempt (SMTP unreachable, a temporary refusal) is retried after
``min(5 * 4**(n-1), 3600)`` seconds (n = attempts so far); after
``EMAIL_MAX_ATTEMPTS`` the row is ``failed``. At least once: a worker dying after
the SMTP server accepted the message, before the row is marked, sends it again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.outages import unavailable_dependency
from app.core.queue import enqueue_maintenance
from app.db.base import utcnow
from app.db.models import DeliveryStatus
from app.emails import repository
from app.jobs.registry import AfterCommit

log = structlog.get_logger(__name__)
SEND_TASK = "emails.send"
LEASE = dt.timedelta(seconds=120)  # above smtplib's timeouts of one attempt
CLAIM_SLACK = dt.timedelta(seconds=2)  # a countdown message may arrive a bit early
FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 3600.0


@dataclass(frozen=True)
class Message:
    email_id: uuid.UUID
    to: str
    subject: str
    body: str
    attempts: int


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    delay: float = FIRST_RETRY_SECONDS * 4.0 ** (attempts - 1)
    return min(delay, MAX_RETRY_SECONDS)


async def add(
    session: AsyncSession, *, user_id: uuid.UUID, to: str, subject: str, body: str
) -> AfterCommit:
    """The outbox row (not committed); returns the step that queues it."""
    row = await repository.add(
        session, user_id=user_id, to=to, subject=subject, body=body, now=utcnow()
    )
    ids = [row.id]

    async def send() -> None:
        await _queue(ids)

    return send


async def _queue(ids: list[uuid.UUID]) -> None:
    """Queue the messages; a broker outage leaves them to the periodic re-send."""
    for email_id in ids:
        try:
            await anyio.to_thread.run_sync(
                enqueue_maintenance, SEND_TASK, str(email_id)
            )
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
            log.warning("email.enqueue_failed", email_id=str(email_id))
            return


async def claim(session: AsyncSession, email_id: uuid.UUID) -> Message | None:
    row = await repository.claim(
        session, email_id, now=utcnow(), lease=LEASE, slack=CLAIM_SLACK
    )
    await session.commit()
    if row is None:
        return None
    return Message(row.id, row.to_address, row.subject, row.body, row.attempts)


async def record(
    session: AsyncSession,
    message: Message,
    *,
    error: str | None,
    settings: Settings,
) -> float | None:
    """Save an attempt's outcome; returns the delay of the next attempt, if any."""
    now = utcnow()
    delay: float | None = None
    if error is None:
        status, next_at = DeliveryStatus.SUCCEEDED.value, None
    elif message.attempts >= settings.email_max_attempts:
        status, next_at = DeliveryStatus.FAILED.value, None
    else:
        delay = retry_delay(message.attempts)
        status = DeliveryStatus.PENDING.value
        next_at = now + dt.timedelta(seconds=delay)
    await repository.finish(
        session,
        message.email_id,
        status=status,
        next_attempt_at=next_at,
        error=error,
        now=now,
    )
    await session.commit()
    return delay


async def resend_overdue(
    session: AsyncSession, settings: Settings, now: dt.datetime
) -> None:
    grace = dt.timedelta(seconds=settings.notification_resend_after_seconds)
    ids = await repository.overdue(session, before=now - grace)
    await session.rollback()
    if ids:
        log.info("email.resent_overdue", count=len(ids))
        await _queue(ids)
