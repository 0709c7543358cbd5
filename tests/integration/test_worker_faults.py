"""Worker crashes on a live stack of its own (beat running the sweeper
every second, heartbeats stale after 5 s): a job survives its worker dying.

* A prefork *child* killed mid-job: the parent sees the lost worker, the message is
  rejected and re-queued (``acks_late`` + ``reject_on_worker_lost``), re-delivered
  under the same claim token, re-claimed (attempt 2) and completed.
* The whole worker killed: nothing re-queues the message (its Redis visibility
  timeout is far away), so the sweeper notices the stale heartbeat, puts the job back
  to pending and re-sends it; a new worker runs it.

* Jobs that kill their worker every time, mid-run or before their claim: stopped at
  the attempt cap, dead-lettered, re-queued by an admin (one test for both crash
  points; the same scenario used to run twice, here and in test_job_limits.py).
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
import psycopg
import pytest
import redis
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

LONG: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 20},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
}
STALE_HEARTBEAT_SECONDS = 5
SWEEP_INTERVAL_SECONDS = 1
MAX_ATTEMPTS = 3  # Settings.max_attempts, the default the stack runs with
SHORT: dict[str, Any] = {
    "symbols": ["AAPL", "MSFT", "AMZN", "GOOGL", "JPM"],
    "start_date": "2019-01-01",
    "end_date": "2019-12-31",
}
# tests/integration/crash_worker.py crashes jobs named with these markers and logs
# these lines each time (it is never imported here: it patches what it loads).
CRASH_MARKER = "[crash-worker]"
EARLY_MARKER = "[crash-before-claim]"
CRASH_LINE = "crash_worker: os._exit(1)"
EARLY_CRASH_LINE = "crash_worker: os._exit(1) before the claim"


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    options = StackOptions(
        chunk_delay_seconds=0.06,
        redis_db=11,
        with_beat=True,
        extra_env={
            "STALE_HEARTBEAT_SECONDS": str(STALE_HEARTBEAT_SECONDS),
            "PENDING_REQUEUE_SECONDS": "10",
            "SWEEP_INTERVAL_SECONDS": str(SWEEP_INTERVAL_SECONDS),
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


# --- poison messages and dead letters ---------------------------------------------


async def _submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/v1/backtest", json=body)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def _user_with(fault_stack: LiveStack, column: str) -> LiveUser:
    """A user made pro (6 jobs at once, within its caps) or admin."""
    user = fault_stack.make_user()
    with psycopg.connect(fault_stack.sync_database_url, autocommit=True) as conn:
        value = "'pro'" if column == "tier" else "true"
        conn.execute(f"UPDATE users SET {column} = {value} WHERE id = %s", (user.id,))
    return user


def _start_crash_worker(fault_stack: LiveStack) -> ManagedProcess:
    for worker in fault_stack.workers:
        worker.stop()
    node = f"crash-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    args = [
        sys.executable, "-m", "celery", "-A", "tests.integration.crash_worker",
        "worker", "--loglevel=INFO", "--concurrency=2", "--pool=prefork",
        "-Q", "jobs", "-n", node, "--without-gossip", "--without-mingle",
    ]  # fmt: skip
    env = {
        **fault_stack.env,
        "CRASH_WORKER_MARKER": CRASH_MARKER,
        "CRASH_BEFORE_CLAIM_MARKER": EARLY_MARKER,
    }
    worker = ManagedProcess.start(
        "crash-worker", args, env=env, log_dir=fault_stack.log_dir
    )
    fault_stack.workers.append(worker)
    control = Celery(broker=fault_stack.redis_url)
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
    fault_stack: LiveStack,
) -> None:
    """A real prefork worker whose child each poison job kills (``os._exit``), in
    distributed mode: ``late`` crashes mid-run after its claim, ``early`` before its
    claim (the delivery is counted, nothing else). Each is delivered 3 times, then
    failed as ``worker_lost`` and dead-lettered; 4 healthy jobs sharing the pool
    complete once. An admin reads the dead-letter list and re-queues one."""
    worker = _start_crash_worker(fault_stack)
    user = _user_with(fault_stack, "tier")
    admin = _user_with(fault_stack, "is_admin")
    async with (
        fault_stack.client(user) as http,
        fault_stack.client(admin) as admin_http,
    ):
        late = await _submit(http, {**SHORT, "name": f"late {CRASH_MARKER}"})
        early = await _submit(http, {**SHORT, "name": f"early {EARLY_MARKER}"})
        # share the pool with the poison jobs' crashes
        others = [await _submit(http, {**SHORT, "name": f"ok {i}"}) for i in range(4)]
        bodies = {
            t: await fault_stack.wait_status(http, t, timeout=120)
            for t in (late, early)
        }
        done = [await fault_stack.wait_status(http, t, timeout=120) for t in others]
        # Terminal for good: no further delivery, claim or crash.
        crashes = worker.log_text().count(CRASH_LINE)
        await asyncio.sleep(3 * SWEEP_INTERVAL_SECONDS)  # a few sweeps
        later = {t: (await http.get(f"/v1/backtest/{t}")).json() for t in bodies}
        forbidden = await http.get("/v1/admin/dead-letters")
        listed = await admin_http.get("/v1/admin/dead-letters")
        unknown = await admin_http.post(
            f"/v1/admin/dead-letters/{uuid.uuid4()}/requeue"
        )
        not_allowed = await http.post(f"/v1/admin/dead-letters/{early}/requeue")
        log = worker.log_text()
        crash_worker_alive = worker.alive()  # the parent outlived its children
        rows = {t: fault_stack.job_row(t) for t in (late, early)}
        results = {  # before the requeue runs ``early`` for good
            t: (fault_stack.count("trades", t), fault_stack.count("backtest_series", t))
            for t in (late, early)
        }
        poison_left = _poison_messages(fault_stack, [late, early])

        # A healthy worker again: the re-queued job runs from a fresh counter.
        for crashing in fault_stack.workers:
            crashing.stop()
        fault_stack.start_worker()
        requeued = await admin_http.post(f"/v1/admin/dead-letters/{early}/requeue")
        again = await admin_http.post(f"/v1/admin/dead-letters/{early}/requeue")
        final = await fault_stack.wait_status(http, early, timeout=60)
        after = await admin_http.get("/v1/admin/dead-letters")

    for task_id, body in bodies.items():
        assert body["status"] == "failed", body
        assert body["error_code"] == "worker_lost"
        assert body["error"] == (
            f"The backtest stopped its worker {MAX_ATTEMPTS} times (a crash, a kill "
            "or its hard time limit); it was not run again and is kept in the "
            "dead-letter list."
        )
        assert body["metrics"] is None
        assert later[task_id]["status"] == "failed"
        assert later[task_id]["error"] == body["error"]
        assert rows[task_id]["dead_lettered_at"] is not None
        assert results[task_id] == (0, 0)  # no trades, no series
    assert crashes == log.count(CRASH_LINE)  # no crash after the verdict
    assert log.count(EARLY_CRASH_LINE) == MAX_ATTEMPTS
    assert log.count(CRASH_LINE) - log.count(EARLY_CRASH_LINE) == MAX_ATTEMPTS
    assert rows[early]["attempts"] == 0  # it never got as far as a claim
    # Three claims that crashed; the fourth delivery found the counter at the cap
    # and failed the job before claiming it.
    assert rows[late]["attempts"] == MAX_ATTEMPTS
    assert rows[early]["deliveries"] == rows[late]["deliveries"] == MAX_ATTEMPTS
    assert poison_left == [], poison_left  # acknowledged, not left to re-deliver
    assert crash_worker_alive
    maintenance = fault_stack.maintenance
    logs = log + (maintenance.log_text() if maintenance else "")
    assert "job.dead_lettered" in logs

    assert [d["status"] for d in done] == ["completed"] * len(others), done
    for task_id, detail in zip(others, done, strict=True):
        assert fault_stack.job_row(task_id)["attempts"] == 1
        assert (
            fault_stack.count("trades", task_id)
            == detail["metrics"]["total_trades"]
            > 0
        )
        assert fault_stack.count("backtest_series", task_id) == 1

    # Reset by the requeue; the delivery that completed it takes itself off just
    # after the row turned completed.
    deadline = time.monotonic() + 10
    while fault_stack.job_row(early)["deliveries"] != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fault_stack.job_row(early)["deliveries"] == 0

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


def _poison_messages(fault_stack: LiveStack, task_ids: list[str]) -> list[Any]:
    """The broker messages (queued or unacknowledged) of ``task_ids`` still there
    after a moment: a row is final a moment before its late ack. (Earlier tests of
    this module leave a killed worker's deliveries in ``unacked``: only these jobs'
    messages matter.)"""
    broker = redis.Redis.from_url(fault_stack.redis_url)
    try:

        def left() -> list[Any]:
            messages = [
                *broker.lrange("jobs", 0, -1),
                *broker.hvals("unacked"),
            ]
            return [m for m in messages if any(t.encode() in m for t in task_ids)]

        deadline = time.monotonic() + 10
        while left() and time.monotonic() < deadline:
            time.sleep(0.1)
        return left()
    finally:
        broker.close()
