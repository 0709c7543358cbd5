"""Worker crashes on a live stack of its own (beat running the sweeper
every second, heartbeats stale after 5 s): a job survives its worker dying.

* A prefork *child* killed mid-job: the parent sees the lost worker, the message is
  rejected and re-queued (``acks_late`` + ``reject_on_worker_lost``), re-delivered
  under the same claim token, re-claimed (attempt 2) and completed.
* The whole worker killed: nothing re-queues the message (its Redis visibility
  timeout is far away), so the sweeper notices the stale heartbeat, puts the job back
  to pending and re-sends it; a new worker runs it.
"""

from __future__ import annotations

import asyncio
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
import pytest
import redis
from celery import Celery

from tests.integration.conftest import start_live_stack
from tests.integration.stack import (
    STARTUP_TIMEOUT,
    LiveStack,
    ManagedProcess,
    StackOptions,
    describe,
)

pytestmark = pytest.mark.integration

LONG: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 20},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
}
STALE_HEARTBEAT_SECONDS = 5


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    options = StackOptions(
        chunk_delay_seconds=0.06,
        redis_db=11,
        with_beat=True,
        extra_env={
            "STALE_HEARTBEAT_SECONDS": str(STALE_HEARTBEAT_SECONDS),
            "PENDING_REQUEUE_SECONDS": "10",
            "SWEEP_INTERVAL_SECONDS": "1",
            "HEARTBEAT_INTERVAL_SECONDS": "0.5",
        },
    )
    with start_live_stack(options, tmp_path_factory.mktemp("faults")) as stack:
        yield stack


async def _start_long_job(stack: LiveStack, http: httpx.AsyncClient) -> str:
    response = await http.post("/v1/backtest", json=LONG)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # well into the run, far from its end
        body = (await http.get(f"/v1/backtest/{task_id}")).json()
        if body["status"] == "running" and body["progress"] >= 15:
            return task_id
        assert body["status"] in {"pending", "running"}, body
        await asyncio.sleep(0.05)
    pytest.fail(f"{task_id} never got going\n{stack.diagnostics()}")


def _child_running(stack: LiveStack, task_id: str) -> int:
    """The pid of the prefork child executing ``task_id`` (``inspect active``)."""
    control = Celery(broker=stack.redis_url)
    try:
        replies = control.control.inspect(timeout=2.0).active() or {}
    finally:
        control.close()
    for tasks in replies.values():
        for task in tasks:
            if task["args"] == [task_id] or task_id in str(task["args"]):
                pid: int = task["worker_pid"]
                assert pid in {
                    c.pid for c in psutil.Process(stack.worker.pid).children()
                }
                return pid
    pytest.fail(f"no worker reports {task_id} as active: {replies}")


def _assert_one_result_set(
    stack: LiveStack, task_id: str, body: dict[str, Any]
) -> None:
    assert stack.count("trades", task_id) == body["metrics"]["total_trades"] > 0
    assert stack.count("backtest_series", task_id) == 1


async def test_killed_worker_child_job_is_rerun_and_completes(
    fault_stack: LiveStack,
) -> None:
    user = fault_stack.make_user()
    async with fault_stack.client(user) as http:
        task_id = await _start_long_job(fault_stack, http)
        child = _child_running(fault_stack, task_id)

        os.kill(child, signal.SIGKILL)
        body = await fault_stack.wait_status(http, task_id, timeout=90)

    assert body["status"] == "completed", body
    row = fault_stack.job_row(task_id)
    assert row["attempts"] == 2
    _assert_one_result_set(fault_stack, task_id, body)
    assert fault_stack.worker.alive()  # the parent survived and forked a new child
    log = fault_stack.worker.log_text()
    assert "WorkerLostError" in log or "exited with 'signal 9 (SIGKILL)'" in log


async def test_killed_worker_job_is_swept_and_finishes_on_a_new_worker(
    fault_stack: LiveStack,
) -> None:
    user = fault_stack.make_user()
    async with fault_stack.client(user) as http:
        task_id = await _start_long_job(fault_stack, http)
        dead = fault_stack.worker
        group = [dead.pid, *(c.pid for c in psutil.Process(dead.pid).children())]

        for pid in group:  # parent and children at once: nobody re-queues
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        dead.popen.wait(10)
        stuck = (await http.get(f"/v1/backtest/{task_id}")).json()
        fault_stack.start_worker()
        body = await fault_stack.wait_status(http, task_id, timeout=60)
        recovered_after = time.monotonic() - killed_at
        print(f"\nrecovered ({body['status']}) {recovered_after:.1f} s after kill")

    assert stuck["status"] == "running"  # nobody told the database
    assert body["status"] in {"completed", "failed"}
    row = fault_stack.job_row(task_id)
    if body["status"] == "completed":
        assert row["attempts"] == 2
        _assert_one_result_set(fault_stack, task_id, body)
    else:
        assert body["error"]
    beat_log = fault_stack.beat.log_text() if fault_stack.beat else ""
    assert "jobs.sweep" in beat_log


# --- a job that kills its worker every time ------------------------------------------
MAX_ATTEMPTS = 3  # Settings.max_attempts, the default the stack runs with
# tests/integration/crash_worker.py crashes jobs named with CRASH_WORKER_MARKER and
# logs CRASH_LINE each time (it is never imported here: it patches what it loads).
CRASH_MARKER = "[crash-worker]"
CRASH_LINE = "crash_worker: os._exit(1)"
SHORT: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2019-01-01",
    "end_date": "2019-12-31",
}


def _start_crash_worker(stack: LiveStack) -> ManagedProcess:
    """Replace the stack's workers by one running ``tests.integration.crash_worker``
    (same arguments and environment as ``LiveStack.start_worker``)."""
    for worker in stack.workers:
        worker.stop()
    node = f"crash-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    args = [
        sys.executable, "-m", "celery", "-A", "tests.integration.crash_worker",
        "worker", "--loglevel=INFO", f"--concurrency={stack.options.concurrency}",
        "--pool=prefork", "-Q", "jobs", "-n", node, "--without-gossip",
        "--without-mingle",
    ]  # fmt: skip
    env = {**stack.env, "CRASH_WORKER_MARKER": CRASH_MARKER}
    worker = ManagedProcess.start("crash-worker", args, env=env, log_dir=stack.log_dir)
    stack.workers.append(worker)  # stopped (and shown in diagnostics) with the stack
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


async def test_job_killing_its_worker_every_time_fails_at_the_attempt_cap(
    fault_stack: LiveStack,
) -> None:
    worker = _start_crash_worker(fault_stack)
    user = fault_stack.make_user()
    async with fault_stack.client(user) as http:
        poison = await http.post(
            "/v1/backtest", json={**LONG, "name": f"poison {CRASH_MARKER}"}
        )
        assert poison.status_code == 200, poison.text
        poison_id = poison.json()["task_id"]
        others = []
        for i in range(4):  # share the pool with the poison job's crashes
            job = {**SHORT, "name": f"ok {i}"}
            response = await http.post("/v1/backtest", json=job)
            assert response.status_code == 200, response.text
            others.append(response.json()["task_id"])

        body = await fault_stack.wait_status(http, poison_id, timeout=60)
        done = [await fault_stack.wait_status(http, t, timeout=60) for t in others]

        # Terminal for good: no further delivery, claim or crash.
        crashes = worker.log_text().count(CRASH_LINE)
        await asyncio.sleep(3 * STALE_HEARTBEAT_SECONDS / 5)  # a few sweeps
        later = (await http.get(f"/v1/backtest/{poison_id}")).json()

    print(f"\npoison job: {body['status']}: {body['error']!r}")
    assert body["status"] == "failed", body
    assert body["error"] == (
        f"The backtest stopped its worker {MAX_ATTEMPTS} times (a crash, a kill or "
        "its hard time limit); it was not run again and is kept in the dead-letter "
        "list."
    )
    assert body["error_code"] == "worker_lost"
    assert body["metrics"] is None
    assert later["status"] == "failed" and later["error"] == body["error"]
    row = fault_stack.job_row(poison_id)
    # Three claims that crashed; the fourth delivery found the counter at the cap
    # and failed the job before claiming it.
    assert row["attempts"] == MAX_ATTEMPTS
    assert row["dead_lettered_at"] is not None
    assert crashes == MAX_ATTEMPTS == worker.log_text().count(CRASH_LINE)
    assert fault_stack.count("trades", poison_id) == 0
    assert fault_stack.count("backtest_series", poison_id) == 0

    assert [d["status"] for d in done] == ["completed"] * len(others), done
    for task_id, detail in zip(others, done, strict=True):
        assert fault_stack.job_row(task_id)["attempts"] == 1
        _assert_one_result_set(fault_stack, task_id, detail)
    assert worker.alive()  # the parent outlived its children
    maintenance = fault_stack.maintenance
    logs = worker.log_text() + (maintenance.log_text() if maintenance else "")
    assert "job.dead_lettered" in logs
    broker = redis.Redis.from_url(fault_stack.redis_url)
    try:  # the poison message was acknowledged, not left to be re-delivered
        # (Earlier tests of this module may leave a killed worker's deliveries in
        # ``unacked``: only this job's messages matter. A row is final a moment
        # before its late ack, so allow that moment.)
        def poison_messages() -> list[bytes]:
            queued = broker.lrange("jobs", 0, -1)
            unacked = broker.hvals("unacked")
            return [m for m in [*queued, *unacked] if poison_id.encode() in m]

        deadline = time.monotonic() + 10
        while poison_messages() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert poison_messages() == []
    finally:
        broker.close()
