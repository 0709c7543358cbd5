"""The notification outbox (``app.jobs.notify``): webhook deliveries and e-mails
are written in the transaction that saves a job's terminal state.

* A process that dies right after that commit (``outbox_crash_app``: the real
  embedded app, ``os._exit`` before the after-commit enqueue) loses nothing: once
  an API process runs again on the same database, the periodic re-send
  (``notifications.resend`` on the maintenance queue) delivers the webhook, signed,
  to a real HTTP receiver and the e-mail to a real SMTP server.
* No outbox row exists when the completing transaction rolls back (PostgreSQL).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import Job, PendingEmail, WebhookDelivery, WebhookEndpoint
from app.emails import mail, outbox
from app.jobs import notify
from app.jobs import repository as jobs_repo
from tests.integration.outbox_crash_app import CRASH_LINE
from tests.integration.receiver import start_receiver
from tests.integration.smtp_server import SmtpServer
from tests.integration.stack import (
    STARTUP_TIMEOUT,
    EmbeddedServer,
    ManagedProcess,
    _python,
    wait_http_ok,
)

pytestmark = pytest.mark.integration
SMALL = {
    "name": "outbox",
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
    "notify_email": True,
}
METRICS = {"total_return": 0.1, "sharpe_ratio": 1.0}


class CrashingServer(EmbeddedServer):
    """The embedded API, started from ``outbox_crash_app`` instead of ``slow_app``."""

    def start(self) -> CrashingServer:
        args = _python(
            "-m", "uvicorn", "tests.integration.outbox_crash_app:create_app",
            "--factory", "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "warning",
        )  # fmt: skip
        self.api = ManagedProcess.start(
            "crashing-api", args, env=self.env, log_dir=self.log_dir
        )
        wait_http_ok(self.api, f"{self.base_url}/health", STARTUP_TIMEOUT)
        return self


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


def _env(server: EmbeddedServer, smtp: SmtpServer) -> None:
    server.env.update(
        {
            "SMTP_URL": smtp.url,
            "WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
            "SWEEP_INTERVAL_SECONDS": "0.5",
            "NOTIFICATION_RESEND_AFTER_SECONDS": "1",
        }
    )


def _wait_dead(process: ManagedProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while process.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not process.alive(), "the crashing API did not die after the commit"


def test_completion_survives_a_death_after_the_commit(
    tmp_path: Path, smtp: SmtpServer
) -> None:
    hooks = start_receiver([200])
    crashing = CrashingServer(var_dir=tmp_path / "var", log_dir=tmp_path, chunk_delay=0)
    _env(crashing, smtp)
    crashing.start()
    user = crashing.make_user()
    with httpx.Client(
        base_url=crashing.base_url, headers=user.headers, timeout=30
    ) as http:
        assert http.patch("/v1/auth/me", json={"email": "o@example.com"}).is_success
        created = http.post(
            "/v1/webhooks", json={"url": hooks.url, "events": ["backtest.completed"]}
        )
        assert created.status_code == 201, created.text
        submitted = http.post("/v1/backtest", json=SMALL)
        assert submitted.status_code == 200, submitted.text
    task_id = submitted.json()["task_id"]
    assert crashing.api is not None
    _wait_dead(crashing.api)
    assert CRASH_LINE in crashing.diagnostics(200)
    assert hooks.requests == [] and smtp.inbox.messages == []  # nothing was sent

    # A new API process on the same SQLite file: only the periodic re-send can
    # send the rows (the job is completed: nothing runs it again).
    restarted = EmbeddedServer(
        var_dir=tmp_path / "var", log_dir=tmp_path, chunk_delay=0
    )
    restarted.env.update(crashing.env)  # the same JWT secret: the same sessions
    restarted.start()
    try:
        (request,) = hooks.wait_for(1, timeout=90)
        ((recipients, message),) = smtp.inbox.wait_for(1, timeout=90)
        with httpx.Client(
            base_url=restarted.base_url, headers=user.headers, timeout=30
        ) as http:
            job = http.get(f"/v1/backtest/{task_id}").json()
    finally:
        restarted.stop()
        hooks.server.shutdown()
    assert job["status"] == "completed"
    payload = Webhook(created.json()["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "backtest.completed"
    assert payload["data"]["job_id"] == task_id
    assert recipients == ["o@example.com"]
    assert task_id in message.get_payload()


async def _count(session: AsyncSession, model: Any, user_id: uuid.UUID) -> int:
    if model is WebhookDelivery:
        query = (
            select(func.count())
            .select_from(WebhookDelivery)
            .join(WebhookEndpoint)
            .where(WebhookEndpoint.user_id == user_id)
        )
    else:
        query = select(func.count()).where(PendingEmail.user_id == user_id)
    return int(await session.scalar(query) or 0)


@pytest.mark.parametrize("commit", [False, True], ids=["rollback", "commit"])
async def test_outbox_rows_exist_only_with_the_terminal_state(
    session: AsyncSession, test_settings: Settings, user_factory: Any, commit: bool
) -> None:
    settings = test_settings.model_copy(update={"smtp_url": "smtp://127.0.0.1:9"})
    user = await user_factory()
    user_id = user.id  # a rollback expires the ORM objects
    user.email, user.notify_email = "owner@example.com", True
    session.add(
        WebhookEndpoint(
            user_id=user_id,
            url="https://example.com/hook",
            events=["backtest.completed"],
            secret="whsec_" + "A" * 32,
        )
    )
    job = await jobs_repo.create(
        session, user_id=user_id, kind="backtest", config={}, name="tx"
    )
    job.status, job.claim_token, job_id = "running", "token", job.id
    await session.commit()

    # What the runner's save does: the terminal state, then the outbox rows,
    # in one transaction.
    assert await jobs_repo.mark_completed(
        session,
        job_id,
        claim_token="token",
        metrics=METRICS,
        total_return=0.1,
        sharpe_ratio=1.0,
    )
    steps = await notify.write_outbox(session, job_id, settings=settings)
    assert len(steps) == 2  # one per listener: webhooks, e-mail
    if commit:
        await session.commit()
    else:
        await session.rollback()

    status = await session.scalar(select(Job.status).where(Job.id == job_id))
    deliveries = await _count(session, WebhookDelivery, user_id)
    emails = await _count(session, PendingEmail, user_id)
    assert (status, deliveries, emails) == (
        ("completed", 1, 1) if commit else ("running", 0, 0)
    )


async def test_an_email_attempt_that_fails_is_retried_then_marked_failed(
    session: AsyncSession, test_settings: Settings, user_factory: Any
) -> None:
    """``emails.send``'s steps against an SMTP port nobody listens on: each failed
    attempt stays pending with the documented delay; the last one is ``failed``."""
    settings = test_settings.model_copy(
        update={"smtp_url": "smtp://127.0.0.1:9", "email_max_attempts": 2}
    )
    user = await user_factory()
    send = await outbox.add(
        session, user_id=user.id, to="x@example.com", subject="s", body="b"
    )
    await session.commit()
    assert send is not None
    (row,) = await session.scalars(
        select(PendingEmail).where(PendingEmail.user_id == user.id)
    )
    outcomes = []
    for _ in range(2):
        await session.execute(  # make the retry due now instead of in 5 s
            update(PendingEmail)
            .where(PendingEmail.id == row.id)
            .values(next_attempt_at=utcnow())
        )
        await session.commit()
        message = await outbox.claim(session, row.id)
        assert message is not None
        assert await outbox.claim(session, row.id) is None  # leased to this attempt
        try:
            mail.send(settings, to=message.to, subject="s", body="b")
        except OSError as exc:
            error = str(exc)
        delay = await outbox.record(session, message, error=error, settings=settings)
        await session.refresh(row)
        outcomes.append((delay, row.status, row.attempts))
    assert outcomes == [
        (outbox.retry_delay(1), "pending", 1),
        (None, "failed", 2),
    ]
    assert outbox.retry_delay(1) == 5.0 and outbox.retry_delay(2) == 20.0
    assert row.last_error
