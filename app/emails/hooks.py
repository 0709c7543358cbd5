"""How e-mail plugs into the job lifecycle (``app.jobs.registry`` hooks):

* ``on_submission``: ``notify_email: true`` needs SMTP settings and an address on
  the account (400 naming ``body.notify_email`` otherwise).
* ``on_completion``: a job with ``notify_email: true`` — or without the field, for
  an account whose ``notify_email`` setting is on — gets one message: an outbox row
  written in the transaction that saves the job's terminal state, queued on the
  maintenance queue (``emails.send``) after the commit (:mod:`app.emails.outbox`).
* ``on_notice``: a ``Notice`` (``schedule.refused``) e-mailed on the same rule.
* ``on_resend``: outbox messages whose attempt is overdue are queued again.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import check_can_email
from app.core.config import Settings
from app.db.models import User
from app.emails import outbox
from app.emails.mail import compose
from app.jobs import registry
from app.jobs.registry import AfterCommit, JobEvent, Notice

log = structlog.get_logger(__name__)
FIELD = "notify_email"


async def check_notify_email(
    session: AsyncSession,
    user: Any,
    kind: str,
    config: dict[str, Any],
    settings: Settings,
) -> None:
    if config.get(FIELD) is True:
        check_can_email(user, settings, field=f"body.{FIELD}")


async def mail_owner(
    session: AsyncSession, event: JobEvent, settings: Settings
) -> AfterCommit | None:
    wanted = event.config.get(FIELD)
    user = await session.get(User, event.user_id)
    if user is None or not settings.smtp_url or not user.email:
        return None
    if wanted is False or (wanted is None and not user.notify_email):
        return None
    kind = registry.get(event.kind)
    base = settings.public_base_url.rstrip("/")
    subject, body = compose(
        event, label=kind.label, link=f"{base}{kind.path}/{event.job_id}"
    )
    log.info("email.queued", task_id=str(event.job_id))
    return await outbox.add(
        session, user_id=user.id, to=user.email, subject=subject, body=body
    )


async def mail_notice(
    session: AsyncSession, notice: Notice, settings: Settings
) -> AfterCommit | None:
    """A ``Notice`` (``schedule.refused``) by e-mail, on the same rule as a job:
    ``notify_email`` in its configuration, else the account's setting."""
    wanted = notice.config.get(FIELD)
    user = await session.get(User, notice.user_id)
    if user is None or not settings.smtp_url or not user.email:
        return None
    if wanted is False or (wanted is None and not user.notify_email):
        return None
    return await outbox.add(
        session,
        user_id=user.id,
        to=user.email,
        subject=notice.subject,
        body=notice.text,
    )


registry.on_submission(check_notify_email)
registry.on_notice(mail_notice)
registry.on_completion(mail_owner)
registry.on_resend(outbox.resend_overdue)
