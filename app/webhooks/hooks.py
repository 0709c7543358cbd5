"""How webhooks plug into the job lifecycle (``app.jobs.registry`` hooks), without
``app.jobs`` knowing about webhooks:

* ``on_submission``: a submission's ``callback_url`` must pass the SSRF check, and
  the account needs a webhook endpoint (its secret signs callback deliveries).
* ``on_completion``: in the transaction that saves a job's terminal state (the
  outbox, ``app.jobs.notify``), one delivery row per enabled endpoint subscribed to
  ``<kind>.<status>``, plus one to the job's ``callback_url``; each is queued on
  the maintenance queue after the commit.
* ``on_notice``: the same for a ``Notice`` (``schedule.refused``) to the endpoints
  subscribed to its type.
* ``on_resend``: pending deliveries whose attempt is overdue by
  ``NOTIFICATION_RESEND_AFTER_SECONDS`` (message lost: the worker died after the
  commit, the broker restarted) are queued again; the claim makes a duplicate
  message harmless.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import ValidationFailed
from app.core.outages import unavailable_dependency
from app.core.queue import enqueue_maintenance
from app.db.base import utcnow
from app.jobs import registry
from app.jobs.registry import AfterCommit, JobEvent, Notice
from app.webhooks import repository
from app.webhooks.delivery import payload_of
from app.webhooks.service import check_safe_url

log = structlog.get_logger(__name__)
DELIVER_TASK = "webhooks.deliver"
CALLBACK_FIELD = "callback_url"


async def check_callback(
    session: AsyncSession,
    user: Any,
    kind: str,
    config: dict[str, Any],
    settings: Settings,
) -> None:
    url = config.get(CALLBACK_FIELD)
    if not url:
        return
    await check_safe_url(str(url), settings=settings, field=f"body.{CALLBACK_FIELD}")
    if not await repository.active_for_owner(session, user.id):
        raise ValidationFailed(
            "callback_url deliveries are signed with your default webhook "
            "endpoint's secret: create one first (POST /v1/webhooks).",
            field=f"body.{CALLBACK_FIELD}",
        )


async def deliveries_for(
    session: AsyncSession, event: JobEvent, settings: Settings
) -> AfterCommit | None:
    """The job's delivery rows (not committed: the caller's transaction)."""
    endpoints = await repository.active_for_owner(session, event.user_id)
    if not endpoints:
        return None
    payload = payload_of(
        event, path=registry.get(event.kind).path, base_url=settings.public_base_url
    )
    targets = [(e.id, e.url) for e in endpoints if event.type in e.events]
    if callback := event.config.get(CALLBACK_FIELD):
        targets.append((endpoints[0].id, str(callback)))  # the default endpoint
    return await add_deliveries(session, targets, event.type, event.job_id, payload)


async def add_deliveries(
    session: AsyncSession,
    targets: list[tuple[uuid.UUID, str]],
    event_type: str,
    job_id: uuid.UUID | None,
    payload: dict[str, Any],
) -> AfterCommit | None:
    """Outbox rows for ``targets`` (endpoint id, url), not committed; returns the
    step that queues them once the caller has committed."""
    if not targets:
        return None
    now = utcnow()
    ids = [
        (
            await repository.add_delivery(
                session,
                endpoint_id=endpoint_id,
                url=url,
                event_type=event_type,
                job_id=job_id,
                payload=payload,
                now=now,
            )
        ).id
        for endpoint_id, url in targets
    ]

    async def send() -> None:
        await _send(ids)

    return send


async def notice_deliveries(
    session: AsyncSession, notice: Notice, settings: Settings
) -> AfterCommit | None:
    """Delivery rows of a ``Notice`` (``schedule.refused``) for the subscribed
    endpoints (not committed: the caller's transaction)."""
    endpoints = await repository.active_for_owner(session, notice.user_id)
    targets = [(e.id, e.url) for e in endpoints if notice.type in e.events]
    payload = {
        "type": notice.type,
        "timestamp": utcnow().isoformat(),
        "data": notice.data,
    }
    return await add_deliveries(session, targets, notice.type, None, payload)


async def _send(ids: list[uuid.UUID]) -> None:
    """Queue the deliveries; a broker outage leaves them to the sweep."""
    for delivery_id in ids:
        try:
            await anyio.to_thread.run_sync(
                enqueue_maintenance, DELIVER_TASK, str(delivery_id)
            )
        except Exception as exc:
            if unavailable_dependency(exc) is None:
                raise
            log.warning("webhooks.enqueue_failed", delivery_id=str(delivery_id))
            return


async def resend_overdue(
    session: AsyncSession, settings: Settings, now: dt.datetime
) -> None:
    grace = dt.timedelta(seconds=settings.notification_resend_after_seconds)
    ids = await repository.overdue(session, before=now - grace)
    await session.rollback()
    if ids:
        log.info("webhooks.resent_overdue", count=len(ids))
        await _send(ids)


registry.on_submission(check_callback)
registry.on_completion(deliveries_for)
registry.on_resend(resend_overdue)
registry.on_notice(notice_deliveries)
