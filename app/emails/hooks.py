"""How e-mail plugs into the job lifecycle (``app.jobs.registry`` hooks):

* ``on_submission``: ``notify_email: true`` needs SMTP settings and an address on
  the account (400 naming ``body.notify_email`` otherwise).
* ``on_completion``: a job with ``notify_email: true`` — or without the field, for
  an account whose ``notify_email`` setting is on — gets one message, queued on the
  maintenance queue (``emails.send``).
"""

from __future__ import annotations

from typing import Any

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.service import check_can_email
from app.core.config import Settings
from app.core.queue import enqueue_maintenance
from app.db.models import User
from app.emails.mail import compose
from app.emails.tasks import SEND_TASK
from app.jobs import registry
from app.jobs.registry import JobEvent

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
) -> None:
    wanted = event.config.get(FIELD)
    user = await session.get(User, event.user_id)
    if user is None or not settings.smtp_url or not user.email:
        return
    if wanted is False or (wanted is None and not user.notify_email):
        return
    kind = registry.get(event.kind)
    base = settings.public_base_url.rstrip("/")
    subject, body = compose(
        event, label=kind.label, link=f"{base}{kind.path}/{event.job_id}"
    )
    await anyio.to_thread.run_sync(
        enqueue_maintenance, SEND_TASK, user.email, subject, body
    )
    log.info("email.queued", task_id=str(event.job_id))


registry.on_submission(check_notify_email)
registry.on_completion(mail_owner)
