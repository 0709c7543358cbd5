"""Distributed mode (Postgres, Redis, separate API, worker, maintenance worker and
**two** beat processes): a schedule made due fires exactly once although both beats
send a sweep every second, the scheduled backtest runs, and the owner's webhook
hears of its completion through the maintenance queue, signed. An outbox row whose
message was never queued (a worker died after the commit) is delivered by beat's
``notifications.resend`` on the maintenance queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook

from tests.integration.conftest import start_live_stack
from tests.integration.receiver import start_receiver
from tests.integration.stack import LiveStack, ManagedProcess, StackOptions, _python

pytestmark = pytest.mark.integration
CONFIG = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2018-01-01",
    "end_date": "2019-12-31",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    options = StackOptions(
        chunk_delay_seconds=0.0,
        with_beat=True,
        redis_db=11,
        extra_env={
            "SWEEP_INTERVAL_SECONDS": "1",
            "WEBHOOK_ALLOWED_HOSTS": '["127.0.0.1"]',
            "WEBHOOK_RETRY_SCHEDULE_SECONDS": "[0, 0.5, 0.5]",
            "NOTIFICATION_RESEND_AFTER_SECONDS": "1",
            "NOTIFICATION_RESEND_INTERVAL_SECONDS": "1",
        },
    )
    log_dir: Path = tmp_path_factory.mktemp("notify_distributed")
    with start_live_stack(options, log_dir) as live:
        live.start_worker(queues="maintenance")
        beat_args = _python(
            "-m", "celery", "-A", "tests.integration.slow_worker", "beat",
            "--loglevel=INFO", "-s", str(log_dir / "beat2-schedule"),
        )  # fmt: skip
        second_beat = ManagedProcess.start(
            "beat2", beat_args, env=live.env, log_dir=log_dir
        )
        try:
            yield live
        finally:
            second_beat.stop()


async def test_schedule_fires_once_with_two_beats_and_the_webhook_hears_it(
    stack: LiveStack,
) -> None:
    receiver = start_receiver([200])
    user = stack.make_user()
    async with stack.client(user) as http:
        hook = await http.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["backtest.completed"]}
        )
        assert hook.status_code == 201, hook.text
        template = await http.post(
            "/v1/templates", json={"name": "hourly five", "config": CONFIG}
        )
        assert template.status_code == 201, template.text
        created = await http.post(
            "/v1/schedules",
            json={"template_id": template.json()["id"], "cron": "0 * * * *"},
        )
        assert created.status_code == 201, created.text
        schedule_id = created.json()["id"]
        stack.query(
            "UPDATE schedules SET next_run_at = now() - interval '1 minute' "
            "WHERE id = %s RETURNING id",
            schedule_id,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shown = (await http.get(f"/v1/schedules/{schedule_id}")).json()
            if shown["last_job_id"]:
                break
            await asyncio.sleep(0.5)
        assert shown["last_job_id"], shown
        await asyncio.sleep(4)  # several more sweeps from both beats
        history = (await http.get("/v1/backtest/history")).json()

    (request,) = receiver.wait_for(1, timeout=60)
    receiver.server.shutdown()
    assert [h["task_id"] for h in history] == [shown["last_job_id"]]
    firings = stack.query(
        "SELECT count(*) FROM schedule_firings WHERE schedule_id = %s", schedule_id
    )
    assert firings[0][0] == 1
    payload = Webhook(hook.json()["secret"]).verify(request.body, request.headers)
    assert payload["data"]["job_id"] == shown["last_job_id"]
    assert payload["data"]["name"] == "hourly five"


async def test_beat_resends_an_outbox_row_whose_message_was_lost(
    stack: LiveStack,
) -> None:
    receiver = start_receiver([200])
    user = stack.make_user()
    async with stack.client(user) as http:
        hook = await http.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["backtest.failed"]}
        )
        assert hook.status_code == 201, hook.text
    # What a worker killed between the commit and the enqueue leaves: a pending row
    # that no message will ever deliver.
    stack.query(
        "INSERT INTO webhook_deliveries (id, endpoint_id, msg_id, url, event_type, "
        "payload, status, attempts, next_attempt_at, created_at) VALUES "
        "(gen_random_uuid(), %s, 'msg_lost_after_commit', %s, 'backtest.failed', "
        '\'{"type": "backtest.failed", "data": {}}\', \'pending\', 0, '
        "now() - interval '1 minute', now()) RETURNING id",
        hook.json()["id"],
        receiver.url,
    )
    (request,) = receiver.wait_for(1, timeout=60)
    receiver.server.shutdown()
    payload = Webhook(hook.json()["secret"]).verify(request.body, request.headers)
    assert request.headers["webhook-id"] == "msg_lost_after_commit"
    assert payload["type"] == "backtest.failed"
