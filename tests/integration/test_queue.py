"""The job queue (issue 18): accept, then schedule fairly.

Over the per-tier concurrency cap a submission is accepted and waits as ``queued``;
the dispatcher (``app.jobs.scheduler``) starts it when the user has room, in fair
order across users. Both run modes: embedded (SQLite + in-process worker with 2
threads) and distributed (PostgreSQL + Redis + a Celery worker with 2 processes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.db.models import User
from tests.integration.conftest import UserFactory, start_live_stack
from tests.integration.limits_support import (
    VALID_BODY,
    app_on_session,
    client_for,
    limit_settings,
)
from tests.integration.stack import EmbeddedServer, LiveApi, LiveStack, StackOptions

pytestmark = pytest.mark.integration

Headers = Callable[[User], dict[str, str]]
# A run of a few seconds with the test engine's chunk delay: long enough to watch
# the queue, short enough for a handful per test.
JOB: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 10},
    "start_date": "2016-01-01",
    "end_date": "2019-12-31",
}
RULES = {
    "auth_ip": "10000/minute",
    "api": "100000/minute",  # the tests poll statuses often
    "submit": {"free": "1000/hour", "pro": "1000/hour"},
    "active_jobs": {"free": 2, "pro": 10},
    "waiting_jobs": {"free": 4, "pro": 200},
}
LIMITS_ENV = {"RATE_LIMIT_ENABLED": "true", "RATE_LIMITS": json.dumps(RULES)}


# --- without a worker (the API's side of the queue) ------------------------------


async def test_cancel_queued_job_frees_its_place(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(
        test_settings, rules={"active_jobs": {"free": 1}, "waiting_jobs": {"free": 1}}
    )
    user = await user_factory()
    headers = auth_headers(user)
    async with client_for(app_on_session(settings, session)) as client:
        first, second, third = [
            await client.post("/v1/backtest", json=VALID_BODY, headers=headers)
            for _ in range(3)
        ]
        assert [first.status_code, second.status_code, third.status_code] == [
            200,
            200,
            429,
        ]
        queued_id = second.json()["task_id"]
        assert second.json()["status"] == "queued"

        cancelled = await client.delete(f"/v1/backtest/{queued_id}", headers=headers)
        status = (await client.get(f"/v1/backtest/{queued_id}", headers=headers)).json()
        listed = await client.get("/v1/backtest/history?status=queued", headers=headers)
        again = await client.post("/v1/backtest", json=VALID_BODY, headers=headers)

    assert cancelled.status_code == 200
    assert "cancelled before it started" in cancelled.json()["message"]
    assert status["status"] == "cancelled"
    assert status["queue_position"] is None and status["eta_seconds"] is None
    assert listed.status_code == 200 and listed.json() == []
    # Its place in the waiting backstop is free again.
    assert again.status_code == 200 and again.json()["status"] == "queued"


# --- embedded mode ----------------------------------------------------------------


@pytest.fixture(scope="module")
def queue_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    root = tmp_path_factory.mktemp("queue_embedded")
    server = EmbeddedServer(
        var_dir=root / "var", log_dir=root, chunk_delay=0.06, extra_env=LIMITS_ENV
    )
    try:
        yield server.start()
    finally:
        server.stop()


def _embedded_set_tier(server: EmbeddedServer, user_id: str, tier: str) -> None:
    with sqlite3.connect(server.var_dir / "backtest.db") as conn:
        conn.execute(
            "UPDATE users SET tier = ? WHERE id = ?", (tier, uuid.UUID(user_id).hex)
        )


async def _statuses(http: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    return [(await http.get(f"/v1/backtest/{i}")).json() for i in ids]


async def _wait_until(
    http: httpx.AsyncClient,
    ids: list[str],
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    timeout: float = 60.0,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        bodies = await _statuses(http, ids)
        if done(bodies):
            return bodies
        if time.monotonic() > deadline:
            pytest.fail(f"queue state not reached: {[b['status'] for b in bodies]}")
        await asyncio.sleep(0.05)


def _count(bodies: list[dict[str, Any]], status: str) -> int:
    return sum(b["status"] == status for b in bodies)


def _all_terminal(bodies: list[dict[str, Any]]) -> bool:
    return all(b["status"] in {"completed", "failed", "cancelled"} for b in bodies)


async def test_embedded_free_user_five_at_once_two_run_three_wait(
    queue_server: EmbeddedServer,
) -> None:
    user = queue_server.make_user()
    async with queue_server.client(user) as http:
        created = await asyncio.gather(
            *(http.post("/v1/backtest", json=JOB) for _ in range(5))
        )
        assert [r.status_code for r in created] == [200] * 5, created[-1].text
        ids = [r.json()["task_id"] for r in created]
        # Settled: 2 running, 3 queued at positions 1..3. (Read one by one, so a
        # snapshot taken while the second job was still pending shows positions
        # one higher; the next one has settled.)
        bodies = await _wait_until(
            http,
            ids,
            lambda b: (
                _count(b, "running") == 2
                and _count(b, "queued") == 3
                and sorted(x["queue_position"] or 0 for x in b) == [0, 0, 1, 2, 3]
            ),
        )
        queued = [b for b in bodies if b["status"] == "queued"]
        assert all(b["eta_seconds"] > 0 for b in queued)
        assert all(b["queue_position"] is None for b in bodies if b not in queued)

        # The cap is sampled from the history list: one query, so one consistent
        # snapshot (five GETs one after another can see a job that finished and
        # the one that replaced it both running).
        peak, deadline = 0, time.monotonic() + 180
        while True:
            listed = (await http.get("/v1/backtest/history?limit=100")).json()
            mine = [b for b in listed if b["task_id"] in ids]
            peak = max(peak, _count(mine, "running") + _count(mine, "pending"))
            if len(mine) == len(ids) and _all_terminal(mine):
                break
            assert time.monotonic() < deadline, [b["status"] for b in mine]
            await asyncio.sleep(0.05)
        final = await _statuses(http, ids)
    assert [b["status"] for b in final] == ["completed"] * 5
    assert peak <= 2  # never more than the free tier's 2 at once (sampled)


async def test_embedded_waiting_cap_retry_after_succeeds(
    queue_server: EmbeddedServer,
) -> None:
    user = queue_server.make_user()
    async with queue_server.client(user) as http:
        # 2 run + 4 wait (the backstop here): submitting on, one is refused...
        created: list[httpx.Response] = []
        refused: httpx.Response | None = None
        for _ in range(12):
            response = await http.post("/v1/backtest", json=JOB)
            if response.status_code != 200:
                refused = response
                break
            created.append(response)
        assert refused is not None and refused.status_code == 429, refused
        # 4 waiting, plus at least the one job already sent to the worker (the
        # second slot may not have claimed its job yet on a busy machine)
        assert len(created) >= 1 + 4
        for header in (
            "Retry-After",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "RateLimit-Policy",
            "RateLimit",
        ):
            assert header in refused.headers, header
        assert refused.headers["X-RateLimit-Limit"] == "4"
        assert "waiting jobs" in refused.json()["message"]
        # ...and accepted once Retry-After has passed (a queued job has started).
        await asyncio.sleep(int(refused.headers["Retry-After"]))
        retried = await http.post("/v1/backtest", json=JOB)
        assert retried.status_code == 200, retried.text
        ids = [r.json()["task_id"] for r in [*created, retried]]
        final = await _wait_until(http, ids, _all_terminal, timeout=240)
    assert _count(final, "completed") == len(ids)


async def _fairness(
    server: LiveApi, set_tier: Callable[[str], None], *, a_jobs: int = 10
) -> None:
    """User A (pro: room for 10 at once) floods the 2 worker slots with ``a_jobs``;
    user B then submits one. B's job starts before every A job still queued when
    B's was accepted: it waits for at most the one dispatched job and the runs in
    progress, not for A's backlog. (10 A jobs: B's submission can take seconds on a
    busy machine, and A must still have a backlog when it is accepted.)"""
    a, b = server.make_user(), server.make_user()
    set_tier(a.id)
    async with server.client(a) as http_a, server.client(b) as http_b:
        a_created = [await http_a.post("/v1/backtest", json=JOB) for _ in range(a_jobs)]
        assert {r.status_code for r in a_created} == {200}
        a_ids = [r.json()["task_id"] for r in a_created]
        await _wait_until(http_a, a_ids, lambda s: _count(s, "running") == 2)
        b_created = await http_b.post("/v1/backtest", json=JOB)
        assert b_created.status_code == 200, b_created.text
        b_id = b_created.json()["task_id"]
        behind = [
            s["task_id"]
            for s in await _statuses(http_a, a_ids)
            if s["status"] == "queued"
        ]
        assert len(behind) >= 2  # A still has a backlog B could be stuck behind
        a_final = await _wait_until(http_a, a_ids, _all_terminal, timeout=300)
        b_final = (await _statuses(http_b, [b_id]))[0]
    assert b_final["status"] == "completed"
    started = {
        s["task_id"]: dt.datetime.fromisoformat(s["started_at"]) for s in a_final
    }
    b_started = dt.datetime.fromisoformat(b_final["started_at"])
    assert all(b_started < started[i] for i in behind), (b_started, started)


async def test_embedded_fairness_single_job_overtakes_a_backlog(
    queue_server: EmbeddedServer,
) -> None:
    await _fairness(
        queue_server, lambda uid: _embedded_set_tier(queue_server, uid, "pro")
    )


@pytest.fixture(scope="module")
def storm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """Its own server: the storm's 60 jobs must not queue ahead of the other tests'.
    A short busy timeout, so submissions that each waited for SQLite's write lock
    themselves (as before they were queued in-process) would time out here."""
    root = tmp_path_factory.mktemp("queue_storm")
    env = {**LIMITS_ENV, "SQLITE_BUSY_TIMEOUT_MS": "1000"}
    server = EmbeddedServer(
        var_dir=root / "var", log_dir=root, chunk_delay=0.0, extra_env=env
    )
    try:
        yield server.start()
    finally:
        server.stop()


async def test_embedded_sixty_simultaneous_submissions_all_accepted(
    storm_server: EmbeddedServer,
) -> None:
    """Embedded mode queues its submissions in-process (app.jobs.service): 60 at
    once from 3 pro users, within their quota, are all 200 (none 503 for a busy
    SQLite write lock), and every job then runs to the end."""
    users = [storm_server.make_user() for _ in range(3)]
    for user in users:
        _embedded_set_tier(storm_server, user.id, "pro")
    short = {**JOB, "start_date": "2019-01-01", "end_date": "2019-03-31"}
    clients = [storm_server.client(user) for user in users]
    try:
        answers = await asyncio.gather(
            *(
                http.post("/v1/backtest", json=short)
                for http in clients
                for _ in range(20)
            )
        )
        codes = [r.status_code for r in answers]
        assert codes == [200] * 60, [r.text for r in answers if r.status_code != 200]
        for i, http in enumerate(clients):
            ids = [r.json()["task_id"] for r in answers[i * 20 : (i + 1) * 20]]
            final = await _wait_until(http, ids, _all_terminal, timeout=300)
            assert _count(final, "completed") == 20
    finally:
        for http in clients:
            await http.aclose()


# --- distributed mode -------------------------------------------------------------


@pytest.fixture(scope="module")
def queue_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    options = StackOptions(
        chunk_delay_seconds=0.06, concurrency=2, extra_env=LIMITS_ENV
    )
    with start_live_stack(options, tmp_path_factory.mktemp("queue_stack")) as stack:
        yield stack


async def test_distributed_fairness_single_job_overtakes_a_backlog(
    queue_stack: LiveStack,
) -> None:
    def set_tier(user_id: str) -> None:
        with psycopg.connect(queue_stack.sync_database_url, autocommit=True) as conn:
            conn.execute("UPDATE users SET tier = 'pro' WHERE id = %s", (user_id,))

    await _fairness(queue_stack, set_tier)
