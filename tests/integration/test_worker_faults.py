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
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psutil
import pytest
from celery import Celery

from tests.integration.conftest import start_live_stack
from tests.integration.stack import LiveStack, StackOptions

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
    assert "backtests.sweep" in beat_log
