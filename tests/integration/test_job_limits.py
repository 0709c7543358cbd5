"""Time limits, cancellable setup, the sweeper on its own queue and dead letters, on
a live distributed stack of their own (API, a prefork jobs worker, the maintenance
worker, beat sweeping every second; heartbeats stale after 5 s).

The stack gives the free tier a tiny time limit (``JOB_TIME_LIMIT_MAX_SECONDS``:
free 10 s; pro keeps the default 10 minutes, and the other tests run as pro), a slowed
engine (a long backtest takes ~20 s, a short one about a second) and a slowed setup
phase (data loading takes 1.5 s before any progress: ``TEST_SETUP_DELAY_SECONDS``,
see ``slow_engine``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import psycopg
import pytest
from celery import Celery

from tests.integration.conftest import start_live_stack
from tests.integration.stack import (
    STARTUP_TIMEOUT,
    LiveStack,
    LiveUser,
    ManagedProcess,
    StackOptions,
    describe,
)

pytestmark = pytest.mark.integration

TIME_LIMIT_SECONDS = 10
STALE_HEARTBEAT_SECONDS = 5
SETUP_DELAY_SECONDS = 1.5
MAX_ATTEMPTS = 3
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
CRASH_MARKER = "[crash-worker]"
EARLY_MARKER = "[crash-before-claim]"
CRASH_LINE = "crash_worker: os._exit(1)"
EARLY_CRASH_LINE = "crash_worker: os._exit(1) before the claim"


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
            "SWEEP_INTERVAL_SECONDS": "1",
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


def _admin(stack: LiveStack) -> LiveUser:
    user = stack.make_user()
    _execute(stack, "UPDATE users SET is_admin = true WHERE id = %s", user.id)
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


# --- poison messages and dead letters ---------------------------------------------


def _start_crash_worker(stack: LiveStack) -> ManagedProcess:
    for worker in stack.workers:
        worker.stop()
    node = f"crash-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    args = [
        sys.executable, "-m", "celery", "-A", "tests.integration.crash_worker",
        "worker", "--loglevel=INFO", "--concurrency=2", "--pool=prefork",
        "-Q", "jobs", "-n", node, "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    env = {
        **stack.env,
        "CRASH_WORKER_MARKER": CRASH_MARKER,
        "CRASH_BEFORE_CLAIM_MARKER": EARLY_MARKER,
    }
    worker = ManagedProcess.start("crash-worker", args, env=env, log_dir=stack.log_dir)
    stack.workers.append(worker)
    control = Celery(broker=stack.redis_url)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            assert worker.alive(), f"crash worker exited\n{describe([worker])}"
            if control.control.ping(destination=[node], timeout=1.0):
                return worker
    finally:
        control.close()
    pytest.fail(f"crash worker did not answer ping\n{describe([worker])}")


async def test_poison_jobs_are_dead_lettered_and_an_admin_requeues_them(
    stack: LiveStack,
) -> None:
    worker = _start_crash_worker(stack)
    user, admin = _pro(stack), _admin(stack)
    async with stack.client(user) as http, stack.client(admin) as admin_http:
        late = await _submit(http, {**SHORT, "name": f"late {CRASH_MARKER}"})
        early = await _submit(http, {**SHORT, "name": f"early {EARLY_MARKER}"})
        bodies = {
            t: await stack.wait_status(http, t, timeout=120) for t in (late, early)
        }
        forbidden = await http.get("/v1/admin/dead-letters")
        listed = await admin_http.get("/v1/admin/dead-letters")
        unknown = await admin_http.post(
            f"/v1/admin/dead-letters/{uuid.uuid4()}/requeue"
        )
        not_allowed = await http.post(f"/v1/admin/dead-letters/{early}/requeue")
        log = worker.log_text()
        rows = {t: stack.job_row(t) for t in (late, early)}

        # A healthy worker again: the re-queued job runs from a fresh counter.
        for crashing in stack.workers:
            crashing.stop()
        stack.start_worker()
        requeued = await admin_http.post(f"/v1/admin/dead-letters/{early}/requeue")
        again = await admin_http.post(f"/v1/admin/dead-letters/{early}/requeue")
        final = await stack.wait_status(http, early, timeout=60)
        after = await admin_http.get("/v1/admin/dead-letters")

    for body in bodies.values():
        assert body["status"] == "failed", body
        assert body["error_code"] == "worker_lost"
        assert f"stopped its worker {MAX_ATTEMPTS} times" in body["error"]
    assert log.count(EARLY_CRASH_LINE) == MAX_ATTEMPTS
    assert log.count(CRASH_LINE) - log.count(EARLY_CRASH_LINE) == MAX_ATTEMPTS
    assert rows[early]["attempts"] == 0  # it never got as far as a claim
    assert rows[late]["attempts"] == MAX_ATTEMPTS
    assert rows[early]["deliveries"] == rows[late]["deliveries"] == MAX_ATTEMPTS
    # Reset by the requeue; the delivery that completed it takes itself off just
    # after the row turned completed.
    deadline = time.monotonic() + 10
    while stack.job_row(early)["deliveries"] != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stack.job_row(early)["deliveries"] == 0

    assert forbidden.status_code == 403, forbidden.text
    assert not_allowed.status_code == 403, not_allowed.text
    assert listed.status_code == 200, listed.text
    assert {d["task_id"] for d in listed.json()} >= {late, early}
    assert listed.headers["X-Total-Count"] == str(len(listed.json()))
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "NotFound"

    assert requeued.status_code == 200, requeued.text
    assert requeued.json()["task_id"] == early
    assert again.status_code == 404  # no longer a dead letter
    assert final["status"] == "completed", final
    assert final["error"] is None and final["error_code"] is None
    assert early not in {d["task_id"] for d in after.json()}
    assert late in {d["task_id"] for d in after.json()}
