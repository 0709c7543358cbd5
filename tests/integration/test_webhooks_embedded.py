"""Webhooks and e-mail end to end in embedded mode: one API process (SQLite,
in-process Celery worker consuming the jobs and the maintenance queue). A real
backtest completes, the completion listener queues a delivery, ``webhooks.deliver``
fails once against the receiver and retries after the (short, configured)
schedule's delay with the same ``webhook-id``; the callback_url gets its own signed
delivery; ``notify_email`` sends a real message to a local SMTP server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from tests.integration.receiver import start_receiver
from tests.integration.smtp_server import SmtpServer
from tests.integration.stack import EmbeddedServer

pytestmark = pytest.mark.integration
RETRY_DELAY = 0.5
SMALL = {
    "name": "five stocks",
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
}


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def webhook_server(
    tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer
) -> Iterator[EmbeddedServer]:
    root: Path = tmp_path_factory.mktemp("embedded_webhooks")
    server = EmbeddedServer(var_dir=root / "var", log_dir=root, chunk_delay=0.0)
    server.env.update(
        {
            "SMTP_URL": smtp.url,
            "WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
            "WEBHOOK_RETRY_SCHEDULE_SECONDS": f"[0, {RETRY_DELAY}, {RETRY_DELAY}]",
            "WEBHOOK_RETRY_JITTER": "0",
        }
    )
    try:
        yield server.start()
    finally:
        server.stop()


async def test_embedded_completion_webhook_retries_with_the_same_id(
    webhook_server: EmbeddedServer,
) -> None:
    hooks = start_receiver([500, 200])
    callback = start_receiver([200])
    user = webhook_server.make_user()
    async with webhook_server.client(user) as http:
        created = await http.post(
            "/v1/webhooks", json={"url": hooks.url, "events": ["backtest.completed"]}
        )
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        submitted = await http.post(
            "/v1/backtest", json={**SMALL, "callback_url": callback.url}
        )
        assert submitted.status_code == 200, submitted.text
        task_id = submitted.json()["task_id"]

        first, second = hooks.wait_for(2, timeout=60)
        (called,) = callback.wait_for(1, timeout=30)
        # The receiver answers before the worker records the outcome: poll for it.
        path = f"/v1/webhooks/{created.json()['id']}/deliveries"
        for _ in range(100):
            listed = (await http.get(path)).json()  # + the callback's delivery
            (shown,) = [d for d in listed if d["url"] == hooks.url]
            if shown["status"] != "pending":
                break
            await asyncio.sleep(0.1)
    hooks.server.shutdown()
    callback.server.shutdown()

    assert second.at - first.at >= RETRY_DELAY * 0.9  # the schedule's delay
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    for request in (first, second, called):
        payload = Webhook(secret).verify(request.body, request.headers)
        assert payload["type"] == "backtest.completed"
        assert payload["data"]["job_id"] == task_id
    assert "total_return" in json.loads(second.body)["data"]["metrics"]
    assert shown["url"] == hooks.url
    assert shown["status"] == "succeeded" and shown["attempts"] == 2


async def test_embedded_completion_email(
    webhook_server: EmbeddedServer, smtp: SmtpServer
) -> None:
    user = webhook_server.make_user()
    async with webhook_server.client(user) as http:
        saved = await http.patch("/v1/auth/me", json={"email": "ops@example.com"})
        assert saved.status_code == 200, saved.text
        submitted = await http.post(
            "/v1/backtest", json={**SMALL, "notify_email": True}
        )
        assert submitted.status_code == 200, submitted.text
    ((recipients, message),) = smtp.inbox.wait_for(1, timeout=60)
    assert recipients == ["ops@example.com"]
    assert message["Subject"] == "Backtest completed: five stocks"
    assert submitted.json()["task_id"] in message.get_payload()
