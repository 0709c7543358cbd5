"""Time limits, cancellable setup and the sweeper on its own queue, on
a live distributed stack of their own (API, a prefork jobs worker, the maintenance
worker, beat sweeping every second; heartbeats stale after 5 s).

The stack gives the free tier a tiny time limit (``JOB_TIME_LIMIT_MAX_SECONDS``:
free 10 s; pro keeps the default 10 minutes, and the other tests run as pro), a slowed
engine (a long backtest takes ~20 s, a short one about a second) and a slowed setup
phase (data loading takes 1.5 s before any progress: ``TEST_SETUP_DELAY_SECONDS``,
see ``slow_engine``). Poison jobs and dead letters are in test_worker_faults.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import psycopg
import pytest

from tests.integration.conftest import start_live_stack
from tests.integration.stack import (
    LiveStack,
    LiveUser,
    StackOptions,
)

pytestmark = pytest.mark.integration

TIME_LIMIT_SECONDS = 10
STALE_HEARTBEAT_SECONDS = 5
SWEEP_INTERVAL_SECONDS = 1
SETUP_DELAY_SECONDS = 1.5
LONG: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 20},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
}
SHORT: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2019-01-01",
    "end_date": "2019-03-31",
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    options = StackOptions(
        chunk_delay_seconds=0.3,
        with_beat=True,
        extra_env={
            "JOB_TIME_LIMIT_MAX_SECONDS": json.dumps(
                {"free": TIME_LIMIT_SECONDS, "pro": 600, "enterprise": 3600}
            ),
            "JOB_TIME_LIMIT_GRACE_SECONDS": "20",
            "TEST_SETUP_DELAY_SECONDS": str(SETUP_DELAY_SECONDS),
            "STALE_HEARTBEAT_SECONDS": str(STALE_HEARTBEAT_SECONDS),
            "PENDING_REQUEUE_SECONDS": "30",
            "SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL_SECONDS),
            "HEARTBEAT_INTERVAL_SECONDS": "0.5",
        },
    )
    with start_live_stack(options, tmp_path_factory.mktemp("limits")) as live:
        yield live


async def _submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/v1/backtest", json=body)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def _execute(stack: LiveStack, sql: str, *params: Any) -> None:
    with psycopg.connect(stack.sync_database_url, autocommit=True) as conn:
        conn.execute(sql, params)


def _pro(stack: LiveStack) -> LiveUser:
    """A pro user: the default 10-minute limit, not the free tier's tiny one."""
    user = stack.make_user()
    _execute(stack, "UPDATE users SET tier = 'pro' WHERE id = %s", user.id)
    return user


# --- time limits ----------------------------------------------------------------------


async def test_job_over_its_time_limit_fails_as_timeout(stack: LiveStack) -> None:
    user = stack.make_user()  # free: a 10 s limit
    async with stack.client(user) as http:
        task_id = await _submit(http, LONG)
        body = await stack.wait_status(http, task_id, timeout=90)

    assert body["status"] == "failed", body
    assert body["error_code"] == "timeout"
    assert body["error"] == (
        f"The backtest took longer than {TIME_LIMIT_SECONDS} seconds (its time "
        "limit) and was stopped."
    )
    assert 0 < body["progress"] < 100  # it ran, and was cut off mid-way
    assert body["metrics"] is None
    assert stack.count("trades", task_id) == 0
    assert stack.worker.alive()


# --- cancel during setup --------------------------------------------------------


async def test_cancel_during_data_loading_stops_before_the_simulation(
    stack: LiveStack,
) -> None:
    user = _pro(stack)
    async with stack.client(user) as http:
        task_id = await _submit(http, LONG)
        await stack.wait_status(http, task_id, {"running"}, interval=0.02)
        cancel = await http.delete(f"/v1/backtest/{task_id}")
        assert cancel.status_code == 200, cancel.text
        # The worker logs the stop at the checkpoint after the (slowed) loading.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _logged(stack, task_id):
            await asyncio.sleep(0.1)
        after = (await http.get(f"/v1/backtest/{task_id}")).json()
        # The worker is free again: the next job runs to completion.
        follow_up = await _submit(http, SHORT)
        done = await stack.wait_status(http, follow_up, timeout=60)

    assert _logged(stack, task_id) == "job.cancelled", stack.diagnostics()
    assert after["status"] == "cancelled"
    row = stack.job_row(task_id)
    assert row["progress"] == 0  # no simulation chunk ever ran
    assert stack.count("trades", task_id) == 0
    assert done["status"] == "completed", done


def _logged(stack: LiveStack, task_id: str) -> str | None:
    """How the worker ended ``task_id``'s run, from its log."""
    for line in stack.worker.log_text().splitlines():
        if task_id in line:
            for event in ("job.cancelled", "job.discarded", "job.completed"):
                if event in line:
                    return event
    return None


# --- the sweeper on the maintenance queue -------------------------------------------


async def test_orphans_are_requeued_with_no_jobs_worker_and_a_deep_queue(
    stack: LiveStack,
) -> None:
    """The whole jobs worker is SIGKILLed with 2 jobs running and 20 queued: the
    sweeper runs on the maintenance worker, so the orphans go back to pending
    although no worker consumes the jobs queue at all (before, its messages waited
    in that queue, behind the runs)."""
    user = _pro(stack)
    async with stack.client(user) as http:
        ids = [await _submit(http, LONG) for _ in range(22)]
        running: list[str] = []
        deadline = time.monotonic() + 60
        while len(running) < 2 and time.monotonic() < deadline:
            page = await http.get("/v1/backtest/history?status=running&limit=100")
            running = [item["task_id"] for item in page.json()]
            await asyncio.sleep(0.05)
        assert len(running) == 2, stack.diagnostics()
        dead = stack.worker
        group = [dead.pid, *(c.pid for c in psutil.Process(dead.pid).children())]
        for pid in group:
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        dead.popen.wait(10)
        recovered: dict[str, float] = {}
        deadline = killed_at + 10 * STALE_HEARTBEAT_SECONDS
        while len(recovered) < len(running) and time.monotonic() < deadline:
            for task_id in running:
                status = (await http.get(f"/v1/backtest/{task_id}")).json()["status"]
                if status != "running" and task_id not in recovered:
                    recovered[task_id] = time.monotonic() - killed_at
            await asyncio.sleep(0.1)
        queued = [(await http.get(f"/v1/backtest/{t}")).json()["status"] for t in ids]
        for task_id in ids:  # leave the stack idle for the next test
            await http.delete(f"/v1/backtest/{task_id}")
    stack.start_worker()

    worst = max(recovered.values(), default=float("nan"))
    print(
        f"\norphans re-queued {sorted(round(s, 1) for s in recovered.values())} s "
        f"after the kill (threshold {STALE_HEARTBEAT_SECONDS} s, worst "
        f"{worst / STALE_HEARTBEAT_SECONDS:.2f}x)"
    )
    assert set(recovered) == set(running), stack.diagnostics()
    for task_id in running:
        assert stack.job_row(task_id)["status"] in {"pending", "cancelled"}
    # nobody ran anything meanwhile: every job still waits (in the broker, or in the
    # fair queue behind the tier's concurrency cap)
    assert set(queued) <= {"pending", "queued"}, queued
    assert {"pending", "queued"} & set(queued)
    assert "jobs.sweep" in (stack.maintenance.log_text() if stack.maintenance else "")
