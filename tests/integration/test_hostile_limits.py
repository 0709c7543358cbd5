"""Limits under abuse, on live servers in both modes: a failed submission costs
nothing, the active-jobs cap holds under a burst of parallel submits, the failed-login
limit holds under a burst of parallel wrong passwords, and the owner of an attacked
account still logs in.

Each mode gets one API process with the limits on and no worker reading its queue
(jobs stay pending, so the active-jobs cap is exact and deterministic):
the embedded server with ``EMBEDDED_WORKER_CONCURRENCY=0``; in the distributed mode
an extra API process on the live stack's database whose broker is another Redis
database than the stack worker's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.integration.stack import (
    EmbeddedServer,
    LiveApi,
    LiveStack,
    ManagedProcess,
)

pytestmark = pytest.mark.integration

SUBMIT_LIMIT = 3
LIMITS = {"submit": {"free": f"{SUBMIT_LIMIT}/hour"}, "active_jobs": {"free": 2}}
BODY: dict[str, Any] = {
    "start_date": "2015-01-01",
    "end_date": "2015-03-31",
    "strategy_id": 2,
}
EXPLODE = "explode-on-insert"  # a job name the database refuses (trigger below)


class LimitedApi(LiveApi):
    """One API process with the limits on; ``execute`` runs SQL on its database."""

    def __init__(self, base_url: str, database: str, *, sqlite: bool) -> None:
        self.base_url = base_url
        self.database = database
        self.sqlite = sqlite
        self.process: ManagedProcess | None = None

    def execute(self, statement: str) -> None:
        if self.sqlite:
            with contextlib.closing(sqlite3.connect(self.database)) as conn:
                conn.execute(statement)
                conn.commit()
            return
        with psycopg.connect(self.database, autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def processes(self) -> list[ManagedProcess]:
        return [self.process] if self.process else []


def _limit_env() -> dict[str, str]:
    return {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMITS": json.dumps(LIMITS),
        "RATE_LIMIT_KEY_PREFIX": f"hostile-{uuid.uuid4().hex[:8]}",
    }


@contextlib.contextmanager
def _embedded(tmp: Any) -> Iterator[LimitedApi]:
    server = EmbeddedServer(var_dir=tmp / "var", log_dir=tmp, chunk_delay=0.0)
    server.env.update({**_limit_env(), "EMBEDDED_WORKER_CONCURRENCY": "0"})
    server.start()
    try:
        api = LimitedApi(server.base_url, str(tmp / "var" / "backtest.db"), sqlite=True)
        api.process = server.api
        api.execute(
            "CREATE TRIGGER IF NOT EXISTS explode BEFORE INSERT ON jobs "
            f"WHEN NEW.name = '{EXPLODE}' BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
        yield api
    finally:
        server.stop()


@contextlib.contextmanager
def _distributed(stack: LiveStack) -> Iterator[LimitedApi]:
    broker = stack.redis_url.rsplit("/", 1)[0] + "/11"  # no worker reads it
    redis.Redis.from_url(broker).flushdb()
    process = stack.start_api("api-limited", REDIS_URL=broker, **_limit_env())
    try:
        api = LimitedApi(process.base_url, stack.sync_database_url, sqlite=False)
        api.process = process
        api.execute(
            "CREATE OR REPLACE FUNCTION explode() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'boom'; END $$"
        )
        api.execute(
            "CREATE OR REPLACE TRIGGER explode BEFORE INSERT ON jobs FOR EACH ROW "
            f"WHEN (NEW.name = '{EXPLODE}') EXECUTE FUNCTION explode()"
        )
        yield api
    finally:
        process.stop()


@pytest.fixture(params=["embedded", "distributed"], scope="module")
def limited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LimitedApi]:
    if request.param == "embedded":
        with _embedded(tmp_path_factory.mktemp("limited")) as api:
            yield api
    else:
        with _distributed(request.getfixturevalue("live_stack")) as api:
            yield api


async def _total(http: httpx.AsyncClient) -> int:
    response = await http.get("/v1/backtest/history")
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


# --- a failed request costs nothing -----------------------------------------------


async def test_failed_submissions_cost_no_quota_and_leave_no_row(
    limited: LimitedApi,
) -> None:
    user = limited.make_user()
    async with limited.client(user) as http:
        for _ in range(SUBMIT_LIMIT + 1):  # database errors after admission
            failed = await http.post("/v1/backtest", json={**BODY, "name": EXPLODE})
            assert failed.status_code == 500, failed.text
            assert failed.json()["error"] == "InternalError"
        for _ in range(SUBMIT_LIMIT + 1):  # invalid requests
            invalid = await http.post("/v1/backtest", json={**BODY, "name": "a\0b"})
            assert invalid.status_code == 400, invalid.text
        assert await _total(http) == 0
        accepted = []
        for _ in range(SUBMIT_LIMIT):  # the whole quota is still there
            ok = await http.post("/v1/backtest", json=BODY)
            assert ok.status_code == 200, ok.text
            accepted.append(ok.json()["task_id"])
            # Cancelled: frees the active-jobs slot, not the hourly quota.
            cancel = await http.delete(f"/v1/backtest/{accepted[-1]}")
            assert cancel.status_code == 200, cancel.text
        refused = await http.post("/v1/backtest", json=BODY)
        assert await _total(http) == SUBMIT_LIMIT
    assert refused.status_code == 429, refused.text
    assert "Submission limit" in refused.json()["message"]


async def test_broker_outage_costs_no_quota_and_leaves_no_row(
    limited: LimitedApi, request: pytest.FixtureRequest
) -> None:
    """Distributed mode: an API process whose Redis (broker and limiter) is down
    answers 503 and keeps nothing; the user's quota is intact on a healthy one."""
    if limited.sqlite:
        pytest.skip("the embedded broker lives in the API process")
    live_stack: LiveStack = request.getfixturevalue("live_stack")
    closed = "redis://127.0.0.1:1/0"  # nothing listens there
    broken = live_stack.start_api("api-no-redis", REDIS_URL=closed, **_limit_env())
    user = limited.make_user()
    try:
        async with httpx.AsyncClient(
            base_url=broken.base_url, headers=user.headers, timeout=60
        ) as http:
            for _ in range(2):  # each refused, each taking nothing
                response = await http.post("/v1/backtest", json=BODY)
                assert response.status_code == 503, response.text
    finally:
        broken.stop()
    async with limited.client(user) as http:
        assert await _total(http) == 0
        for _ in range(SUBMIT_LIMIT):
            ok = await http.post("/v1/backtest", json=BODY)
            assert ok.status_code == 200, ok.text
            await http.delete(f"/v1/backtest/{ok.json()['task_id']}")


# --- the active-jobs cap under a burst ---------------------------------------------


async def test_fifty_parallel_submits_never_exceed_the_active_cap(
    limited: LimitedApi,
) -> None:
    user = limited.make_user()
    async with limited.client(user) as http:
        responses = await asyncio.gather(
            *(http.post("/v1/backtest", json=BODY) for _ in range(50))
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}, [r.text for r in responses]
        active = await http.get("/v1/backtest/history", params={"status": "pending"})
    assert statuses.count(200) == LIMITS["active_jobs"]["free"]  # type: ignore[index]
    assert int(active.headers["X-Total-Count"]) == statuses.count(200)
