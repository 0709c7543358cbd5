"""Chaos: the stack's Redis or PostgreSQL restarted while jobs are queued and running.

Each test runs its own live stack (API, a prefork worker, beat sweeping every second)
on *private* servers it may kill: a private ``redis-server`` (with an append-only file
or without persistence) and, for the PostgreSQL test, a private cluster (``initdb``)
on a free port. The machine's shared servers are never touched.

What must hold, whatever was lost (the database is the source of truth):

* during the outage the API answers 503 with ``Retry-After`` in the JSON error
  envelope, never a 500 and never a hang; with Redis down, reads (which only need
  PostgreSQL; the rate limiter fails open) keep working;
* afterwards submissions work again, and every accepted job ends terminal: the
  sweeper re-sends pending rows whose message was lost and takes back running rows
  whose heartbeat stopped;
* completed ⇒ its metrics and exactly one result set (trades and chart series); no
  results for any other job; nothing left pending or running;
* a progress WebSocket ends cleanly: the terminal message and 1000, or 1013 "try
  again later" (then a reconnect gets the final state), never an internal error.

The measured numbers (503 latency, recovery time, job counts) are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import redis

from app.core.queue import QUEUE
from tests.integration.conftest import (
    _unavailable,
    private_postgres,
    start_live_stack,
)
from tests.integration.stack import (
    TERMINAL,
    LiveStack,
    LiveUser,
    StackOptions,
    Watched,
    watch_progress,
)

pytestmark = pytest.mark.integration

# ~50 engine chunks at CHUNK_DELAY each: a job runs ~8 s, long enough to be running
# when a server goes down and to outlive a short outage.
CHUNK_DELAY = 0.15
JOB: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 10},
    "start_date": "2016-01-01",
    "end_date": "2018-12-31",
}
JOBS = 4  # concurrency 2: two running, two queued
OUTAGE_SECONDS = 5.0
RECOVERY_LIMIT_SECONDS = 10.0
CHAOS_ENV = {
    "STALE_HEARTBEAT_SECONDS": "5",
    "PENDING_REQUEUE_SECONDS": "4",
    "SWEEP_INTERVAL_SECONDS": "1",
    "HEARTBEAT_INTERVAL_SECONDS": "0.5",
    # The limiter on (it must fail open with Redis down), with room for the test.
    "RATE_LIMIT_ENABLED": "true",
    "RATE_LIMITS": json.dumps(
        {
            "submit": {"free": "1000/hour"},
            "active_jobs": {"free": 100},
            "api": "100000/minute",
            "auth_ip": "1000/minute",
        }
    ),
}
# What a 503 body must never carry: connection strings, driver errors, tracebacks.
LEAKS = ("redis://", "postgresql", "asyncpg", "Traceback", "Errno", "refused")
WS_NORMAL, WS_TRY_AGAIN_LATER = 1000, 1013


def _options(*, redis_aof: bool = False) -> StackOptions:
    return StackOptions(
        chunk_delay_seconds=CHUNK_DELAY,
        concurrency=2,
        with_beat=True,
        redis_aof=redis_aof,
        extra_env=CHAOS_ENV,
    )


@pytest.fixture(params=[True, False], ids=["aof", "no-persistence"])
def redis_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    if shutil.which("redis-server") is None:  # the machine's Redis is not ours to kill
        _unavailable("redis-server binary not found", "private Redis")
    log_dir = tmp_path_factory.mktemp("chaos_redis")
    with start_live_stack(_options(redis_aof=request.param), log_dir) as stack:
        assert stack.redis_server is not None
        yield stack


@pytest.fixture
def postgres_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    log_dir = tmp_path_factory.mktemp("chaos_postgres")
    with (
        private_postgres(log_dir) as postgres,
        start_live_stack(_options(), log_dir, postgres=postgres) as stack,
    ):
        yield stack


# --- helpers ------------------------------------------------------------------------


@dataclass
class Answers:
    """What the API answered: (what, status, seconds taken, when answered)."""

    rows: list[tuple[str, int, float, float]] = field(default_factory=list)

    async def call(
        self, http: httpx.AsyncClient, what: str, method: str, url: str, **kw: Any
    ) -> httpx.Response:
        started = time.monotonic()
        response = await http.request(method, url, **kw)
        now = time.monotonic()
        self.rows.append((what, response.status_code, now - started, now))
        return response

    def slowest(self, what: str | None = None) -> float:
        return max((s for w, _, s, _ in self.rows if what in {None, w}), default=0.0)

    def count(self, status: int) -> int:
        return sum(1 for _, code, _, _ in self.rows if code == status)


def assert_unavailable(response: httpx.Response) -> None:
    """503, ``Retry-After`` (whole seconds ≥ 1), the error envelope, no internals."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()
    assert body["error"] == "ServiceUnavailable", body
    assert body["message"], body
    for leak in LEAKS:
        assert leak.lower() not in response.text.lower(), response.text


async def submit_jobs(http: httpx.AsyncClient, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        response = await http.post("/v1/backtest", json=JOB)
        assert response.status_code == 200, response.text
        ids.append(response.json()["task_id"])
    return ids


async def wait_running(
    stack: LiveStack, http: httpx.AsyncClient, ids: list[str], running: int
) -> None:
    """Until ``running`` jobs run (and have made progress) and the rest are queued."""
    deadline = time.monotonic() + 60
    statuses: list[tuple[str, float]] = []
    while time.monotonic() < deadline:
        statuses = []
        for task_id in ids:
            body = (await http.get(f"/v1/backtest/{task_id}")).json()
            statuses.append((body["status"], body["progress"]))
        if sum(1 for s, p in statuses if s == "running" and p >= 5) >= running:
            assert all(s in {"queued", "pending", "running"} for s, _ in statuses), (
                statuses
            )
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"jobs never got going: {statuses}\n{stack.diagnostics()}")


async def submit_after_recovery(
    stack: LiveStack, http: httpx.AsyncClient, timeout: float
) -> tuple[str, float, int]:
    """Submit until accepted: (task id, seconds, 503s before that). Anything but a
    200 or a proper 503 fails."""
    started = time.monotonic()
    refused = 0
    while time.monotonic() - started < timeout:
        response = await http.post("/v1/backtest", json=JOB)
        if response.status_code == 200:
            return response.json()["task_id"], time.monotonic() - started, refused
        assert_unavailable(response)
        refused += 1
        await asyncio.sleep(0.2)
    pytest.fail(
        f"no submission accepted {timeout} s after recovery\n" + stack.diagnostics()
    )


async def watch(
    stack: LiveStack, user: LiveUser, task_id: str
) -> asyncio.Task[Watched]:
    """A progress socket on ``task_id`` in the background, read until it closes;
    returns once the socket is subscribed (its first frame arrived)."""
    subscribed = asyncio.Event()
    task = asyncio.create_task(
        watch_progress(
            stack.ws_url, task_id, token=user.token, timeout=90, first_frame=subscribed
        )
    )
    await asyncio.wait_for(subscribed.wait(), timeout=30)
    return task


async def connect_during_outage(
    stack: LiveStack, user: LiveUser, task_id: str
) -> Watched:
    """A socket opened while a server is down: 1013 at once, or (when the relay can do
    without the server) the job's state; the client leaves after the first message."""
    watched = await watch_progress(
        stack.ws_url, task_id, token=user.token, until=lambda _: True, timeout=15
    )
    assert watched.close_code == WS_TRY_AGAIN_LATER or watched.messages, watched
    return watched


async def assert_socket_settled(
    stack: LiveStack, user: LiveUser, watched: Watched, task_id: str
) -> str:
    """A socket that was open across the outage ended cleanly; after a 1013 a
    reconnect gets the final state. Returns how it ended."""
    assert watched.close_code in {WS_NORMAL, WS_TRY_AGAIN_LATER}, (
        watched.close_code,
        watched.close_reason,
        watched.statuses[-3:],
    )
    if watched.close_code == WS_NORMAL:
        assert watched.statuses[-1] == "completed", watched.statuses[-3:]
        return "1000 after the terminal message"
    again = await watch_progress(stack.ws_url, task_id, token=user.token, timeout=30)
    assert again.close_code == WS_NORMAL, again
    assert again.statuses == ["completed"], again.statuses
    return "1013, then a reconnect got the final state"


async def assert_all_settled(
    stack: LiveStack, http: httpx.AsyncClient, accepted: list[str], *, timeout: float
) -> dict[str, dict[str, Any]]:
    """Every accepted job terminal; completed ⇒ metrics and exactly one result set;
    no results for any other job; no job of the stack left pending or running."""
    bodies: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    for task_id in accepted:
        left = max(deadline - time.monotonic(), 1.0)
        bodies[task_id] = await stack.wait_status(http, task_id, TERMINAL, timeout=left)
    for task_id, body in bodies.items():
        if body["status"] == "completed":
            assert body["metrics"], body
            trades = stack.count("trades", task_id)
            assert trades == body["metrics"]["total_trades"] > 0, (task_id, trades)
            assert stack.count("backtest_series", task_id) == 1, task_id
    stuck = stack.query(
        "SELECT id, status FROM jobs WHERE status IN ('pending', 'running')"
    )
    assert stuck == [], stuck
    orphans = stack.query(
        "SELECT b.id, b.status FROM jobs b WHERE b.status <> 'completed' AND ("
        " EXISTS (SELECT 1 FROM trades t WHERE t.backtest_id = b.id) OR"
        " EXISTS (SELECT 1 FROM backtest_series s WHERE s.backtest_id = b.id))"
    )
    assert orphans == [], orphans
    incomplete = stack.query(
        "SELECT b.id FROM jobs b WHERE b.status = 'completed' AND ("
        " b.metrics IS NULL OR"
        " (SELECT count(*) FROM backtest_series s WHERE s.backtest_id = b.id) <> 1)"
    )
    assert incomplete == [], incomplete
    return bodies


def queued_messages(stack: LiveStack) -> int:
    """Messages in the broker: the queue plus the delivered-but-unacked ones."""
    client = redis.Redis.from_url(stack.redis_url)
    try:
        pipe = client.pipeline()
        pipe.llen(QUEUE)
        pipe.hlen("unacked")  # kombu's Redis transport: delivered, not yet acked
        queued, unacked = pipe.execute()
        return int(queued) + int(unacked)
    finally:
        client.close()


def assert_processes_alive(stack: LiveStack) -> None:
    if stack.beat is not None and not stack.beat.alive():
        pytest.fail("beat died\n" + stack.diagnostics())
    stack.assert_alive()


# --- Redis ----------------------------------------------------------------------------


async def test_redis_restart_with_jobs_queued_and_running(
    redis_stack: LiveStack,
) -> None:
    stack = redis_stack
    user = stack.make_user()
    outage = Answers()
    async with stack.client(user) as http:
        accepted = await submit_jobs(http, JOBS)
        await wait_running(stack, http, accepted, running=2)
        watcher = await watch(stack, user, accepted[0])
        # jobs with a broker message (the rest wait in the fair queue, in the DB)
        sent = [t for t in accepted if stack.job_row(t)["status"] != "queued"]

        stack.kill_redis()
        killed_at = time.monotonic()
        during = await connect_during_outage(stack, user, accepted[1])
        while time.monotonic() - killed_at < OUTAGE_SECONDS:
            response = await outage.call(
                http, "submit", "POST", "/v1/backtest", json=JOB
            )
            assert_unavailable(response)
            for task_id in accepted:  # reads need PostgreSQL only
                response = await outage.call(
                    http, "read", "GET", f"/v1/backtest/{task_id}"
                )
                assert response.status_code == 200, response.text
            response = await outage.call(http, "read", "GET", "/v1/backtest/history")
            assert response.status_code == 200, response.text
            await asyncio.sleep(0.2)
        stack.restart_redis()
        restarted_at = time.monotonic()
        kept = queued_messages(stack)
        if stack.options.redis_aof:  # the 2 running (unacked) + those sent behind
            assert kept >= len(sent), (kept, sent)
        else:  # really lost: only the database knows about the queued jobs
            assert kept == 0, kept

        new_id, accepted_after, refused = await submit_after_recovery(
            stack, http, timeout=20
        )
        accepted.append(new_id)
        bodies = await assert_all_settled(stack, http, accepted, timeout=90)
        settled_after = time.monotonic() - restarted_at
        socket_end = await assert_socket_settled(
            stack, user, await watcher, accepted[0]
        )

    attempts = [stack.job_row(task_id)["attempts"] for task_id in accepted]
    print(
        f"\nredis {'AOF' if stack.options.redis_aof else 'without persistence'}: "
        f"{outage.count(503)} submissions 503 (slowest {outage.slowest('submit'):.2f}"
        f" s), {outage.count(200)} reads 200 (slowest {outage.slowest('read'):.2f} s);"
        f" socket opened during the outage: close {during.close_code}; socket open "
        f"across it: {socket_end}; first submission accepted {accepted_after:.2f} s "
        f"after the restart ({refused} 503s before); {kept} messages kept; "
        f"{len(accepted)} accepted jobs "
        f"terminal {settled_after:.1f} s after the restart: "
        f"{sorted(b['status'] for b in bodies.values())}, attempts {attempts}"
    )
    assert all(b["status"] == "completed" for b in bodies.values()), bodies
    # Running jobs only need the database: the outage cost them progress messages,
    # not a restart (each job claimed exactly once).
    assert attempts == [1] * len(accepted), attempts
    assert outage.slowest() < 8, outage.rows  # fails fast, never hangs
    assert_processes_alive(stack)


# --- PostgreSQL -----------------------------------------------------------------------


class Load:
    """Concurrent clients reading job status and history for as long as the block
    runs; every answer must be a 200 or a proper 503."""

    def __init__(self, http: httpx.AsyncClient, task_ids: list[str], clients: int):
        self.http, self.clients = http, clients
        self.urls = [f"/v1/backtest/{t}" for t in task_ids] + ["/v1/backtest/history"]
        self.answers = Answers()
        self.tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Load:
        self.tasks = [asyncio.create_task(self._client(i)) for i in range(self.clients)]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self.tasks:
            task.cancel()
        results = await asyncio.gather(*self.tasks, return_exceptions=True)
        for result in results:  # a client's failed assertion fails the test
            if isinstance(result, Exception):
                raise result

    async def _client(self, index: int) -> None:
        for i in itertools.count(index):
            response = await self.answers.call(
                self.http, "load", "GET", self.urls[i % len(self.urls)]
            )
            if response.status_code != 200:
                assert_unavailable(response)
            await asyncio.sleep(0.05)

    def last_503(self) -> float:
        return max((t for _, code, _, t in self.answers.rows if code == 503), default=0)


async def test_postgres_restart_under_load(postgres_stack: LiveStack) -> None:
    stack = postgres_stack
    assert stack.postgres is not None
    user = stack.make_user()
    outage = Answers()
    async with stack.client(user) as http:
        accepted = await submit_jobs(http, JOBS)
        await wait_running(stack, http, accepted, running=2)
        async with Load(http, accepted, clients=3) as load:
            watcher = await watch(stack, user, accepted[0])

            stack.postgres.stop()
            stopped_at = time.monotonic()
            during = await connect_during_outage(stack, user, accepted[1])
            assert during.close_code == WS_TRY_AGAIN_LATER, during  # needs the database
            while time.monotonic() - stopped_at < OUTAGE_SECONDS:
                response = await outage.call(
                    http, "submit", "POST", "/v1/backtest", json=JOB
                )
                assert_unavailable(response)
                response = await outage.call(
                    http, "read", "GET", f"/v1/backtest/{accepted[0]}"
                )
                assert_unavailable(response)
                await asyncio.sleep(0.2)
            await asyncio.to_thread(stack.postgres.start)
            restarted_at = time.monotonic()

            first_ok = await wait_recovered(stack, http, accepted[0], restarted_at)
            new_id, accepted_after, refused = await submit_after_recovery(
                stack, http, timeout=RECOVERY_LIMIT_SECONDS
            )
            accepted.append(new_id)
            await asyncio.sleep(1)  # the load goes on after the recovery
        answers = load.answers
        bodies = await assert_all_settled(stack, http, accepted, timeout=90)
        settled_after = time.monotonic() - restarted_at
        socket_end = await assert_socket_settled(
            stack, user, await watcher, accepted[0]
        )

    # Recovered = the last 503 the API gave (under load) after PostgreSQL was back.
    recovery = max(first_ok, load.last_503() - restarted_at)
    attempts = [stack.job_row(task_id)["attempts"] for task_id in accepted]
    print(
        f"\npostgres: {outage.count(503)} submissions/reads 503 during the outage "
        f"(slowest {outage.slowest():.2f} s); load: {answers.count(200)} x 200, "
        f"{answers.count(503)} x 503, slowest {answers.slowest():.2f} s; recovered "
        f"{recovery:.2f} s after the restart (first read {first_ok:.2f} s), first "
        f"submission {accepted_after:.2f} s later ({refused} 503s before); socket "
        f"opened during the outage: close {during.close_code}; socket open across it:"
        f" {socket_end}; {len(accepted)} accepted jobs terminal {settled_after:.1f} s "
        f"after the restart: {sorted(b['status'] for b in bodies.values())}, "
        f"attempts {attempts}"
    )
    assert answers.count(503) > 0  # the load did see the outage
    assert recovery <= RECOVERY_LIMIT_SECONDS
    assert all(b["status"] == "completed" for b in bodies.values()), bodies
    assert outage.slowest() < 8 and answers.slowest() < 8  # fails fast, never hangs
    assert_processes_alive(stack)


async def wait_recovered(
    stack: LiveStack, http: httpx.AsyncClient, task_id: str, since: float
) -> float:
    """Seconds from ``since`` until a read answers 200 again (503s in between are
    checked; anything else fails)."""
    while time.monotonic() - since < RECOVERY_LIMIT_SECONDS + 5:
        response = await http.get(f"/v1/backtest/{task_id}")
        if response.status_code == 200:
            return time.monotonic() - since
        assert_unavailable(response)
        await asyncio.sleep(0.1)
    pytest.fail(f"API not recovered after PostgreSQL restart\n{stack.diagnostics()}")
