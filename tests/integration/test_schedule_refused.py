"""A refused schedule firing (the owner's active-job quota exhausted) is recorded on
the schedule and announced: a ``schedule.refused`` webhook, signed, to a real HTTP
receiver subscribed to it (and not to one that is not), and an e-mail through a
real SMTP server when the owner asked for notifications. The rows are written in
the refusal's transaction (the outbox), then delivered."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from standardwebhooks.webhooks import Webhook

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import (
    Job,
    PendingEmail,
    Schedule,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from app.emails import mail, outbox
from app.webhooks import delivery
from app.webhooks.client import guarded_client
from tests.integration.receiver import start_receiver
from tests.integration.smtp_server import SmtpServer
from tests.integration.test_schedules import CONFIG, _sweep, due_schedule

pytestmark = pytest.mark.integration
__all__ = ["due_schedule"]  # the fixture, shared with test_schedules
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


async def test_a_refused_firing_is_announced_by_webhook_and_email(
    engine: AsyncEngine,
    test_settings: Settings,
    due_schedule: tuple[Schedule, User],
    smtp: SmtpServer,
) -> None:
    settings = test_settings.model_copy(
        update={
            "embedded_worker_concurrency": 0,
            "schedule_max_active_per_user": 2,
            "smtp_url": smtp.url,
            "webhook_allowed_hosts": ["127.0.0.1"],
        }
    )
    schedule, user = due_schedule
    subscribed, other = start_receiver([200]), start_receiver([200])
    async with AsyncSession(engine) as s:
        owner = await s.get(User, user.id)
        assert owner is not None
        owner.email, owner.notify_email = "owner@example.com", True
        for url, events in (
            (subscribed.url, ["schedule.refused"]),
            (other.url, ["backtest.completed"]),
        ):
            s.add(
                WebhookEndpoint(user_id=user.id, url=url, events=events, secret=SECRET)
            )
        # The free tier's waiting backstop, full: the run is refused (over the
        # concurrency cap alone it would only wait as queued). Older than the hourly
        # window, so only the backstop refuses; the sweep dispatches the cap's worth
        # first, then fires the schedule.
        waiting = (
            settings.rate_limits.waiting_jobs["free"]
            + settings.rate_limits.active_jobs["free"]
        )
        for _ in range(waiting):
            s.add(
                Job(
                    user_id=user.id,
                    kind="backtest",
                    config=CONFIG,
                    status="queued",
                    created_at=utcnow() - dt.timedelta(hours=2),
                )
            )
        await s.commit()

    await _sweep(engine, settings)

    async with AsyncSession(engine, expire_on_commit=False) as s:
        row = await s.get(Schedule, schedule.id)
        endpoints = select(WebhookEndpoint.id).where(WebhookEndpoint.user_id == user.id)
        (queued,) = await s.scalars(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id.in_(endpoints))
        )
        (email,) = await s.scalars(
            select(PendingEmail).where(PendingEmail.user_id == user.id)
        )
        # Delivered as the maintenance tasks do it (claim, send, record).
        attempt = await delivery.claim(s, queued.id, settings=settings)
        assert attempt is not None
        with guarded_client(allowed_hosts=["127.0.0.1"], timeout=5) as http:
            outcome = delivery.send(http, attempt)
        await delivery.record(s, attempt, outcome, settings=settings)
        message = await outbox.claim(s, email.id)
        assert message is not None
        mail.send(settings, to=message.to, subject=message.subject, body=message.body)
        await outbox.record(s, message, error=None, settings=settings)

    (request,) = subscribed.wait_for(1, timeout=30)
    ((recipients, sent),) = smtp.inbox.wait_for(1, timeout=30)
    subscribed.server.shutdown()
    other.server.shutdown()
    assert row is not None and "Too many waiting jobs" in (row.last_error or "")
    payload: dict[str, Any] = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["type"] == "schedule.refused"
    assert payload["data"]["schedule_id"] == str(schedule.id)
    assert "Too many waiting jobs" in payload["data"]["error"]
    assert other.requests == []  # not subscribed to schedule.refused
    assert recipients == ["owner@example.com"]
    assert sent["Subject"] == "Scheduled run refused: t"
    assert "Too many waiting jobs" in sent.get_payload()
