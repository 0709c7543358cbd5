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
import random
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis

from tests.integration.conftest import DEFAULT_PASSWORD
from tests.integration.stack import (
    STARTUP_TIMEOUT,
    EmbeddedServer,
    LiveApi,
    LiveStack,
    ManagedProcess,
    free_port,
    wait_http_ok,
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


def serve_args(port: int) -> list[str]:
    """The launcher the scripts and the Dockerfile use (``app.ops.serve``), on the
    test app: uvicorn believes forwarded headers only from TRUSTED_PROXIES."""
    return [
        sys.executable, "-m", "app.ops.serve",
        "tests.integration.slow_app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


def _start(name: str, env: dict[str, str], log_dir: Any) -> ManagedProcess:
    port = free_port()
    process = ManagedProcess.start(name, serve_args(port), env=env, log_dir=log_dir)
    process.base_url = f"http://127.0.0.1:{port}"
    wait_http_ok(process, f"{process.base_url}/health", STARTUP_TIMEOUT)
    return process


def _limit_env() -> dict[str, str]:
    return {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMITS": json.dumps(LIMITS),
        "RATE_LIMIT_KEY_PREFIX": f"hostile-{uuid.uuid4().hex[:8]}",
    }


@contextlib.contextmanager
def _embedded(tmp: Any) -> Iterator[LimitedApi]:
    server = EmbeddedServer(var_dir=tmp / "var", log_dir=tmp, chunk_delay=0.0)
    env = {**server.env, **_limit_env(), "EMBEDDED_WORKER_CONCURRENCY": "0"}
    process = _start("embedded-limited", env, tmp)
    try:
        api = LimitedApi(
            process.base_url, str(tmp / "var" / "backtest.db"), sqlite=True
        )
        api.process = process
        api.execute(
            "CREATE TRIGGER IF NOT EXISTS explode BEFORE INSERT ON jobs "
            f"WHEN NEW.name = '{EXPLODE}' BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
        yield api
    finally:
        process.stop()


@contextlib.contextmanager
def _distributed(stack: LiveStack) -> Iterator[LimitedApi]:
    broker = stack.redis_url.rsplit("/", 1)[0] + "/11"  # no worker reads it
    redis.Redis.from_url(broker).flushdb()
    env = {**stack.env, "REDIS_URL": broker, **_limit_env()}
    process = _start("api-limited", env, stack.log_dir)
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
    """Over the concurrency cap jobs wait (queued); only the hourly limit refuses,
    and every refusal carries the rate-limit headers."""
    user = limited.make_user()
    async with limited.client(user) as http:
        responses = await asyncio.gather(
            *(http.post("/v1/backtest", json=BODY) for _ in range(50))
        )
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {200, 429}, [r.text for r in responses]
        counts = {
            status: int(
                (
                    await http.get("/v1/backtest/history", params={"status": status})
                ).headers["X-Total-Count"]
            )
            for status in ("queued", "pending", "running")
        }
    assert statuses.count(200) == SUBMIT_LIMIT
    assert counts["pending"] + counts["running"] <= LIMITS["active_jobs"]["free"]  # type: ignore[index]
    assert sum(counts.values()) <= statuses.count(200)
    for refused in (r for r in responses if r.status_code == 429):
        assert "Retry-After" in refused.headers
        assert refused.headers["X-RateLimit-Limit"] == str(SUBMIT_LIMIT)


# --- logins under attack -----------------------------------------------------------
# Distinct clients are distinct source addresses on the loopback (Linux routes all of
# 127/8 locally): real TCP peers, no forwarded header involved.


def _addresses(count: int) -> list[str]:
    block = random.randrange(1, 250)
    return [f"127.{block}.{i // 250}.{i % 250 + 1}" for i in range(count)]


def _from(api: LiveApi, address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=api.base_url, transport=transport, timeout=60)


async def _login(api: LiveApi, address: str, username: str, password: str) -> int:
    async with _from(api, address) as http:
        response = await http.post(
            "/v1/auth/login", json={"username": username, "password": password}
        )
    assert response.status_code in (200, 401, 429), response.text
    return response.status_code


async def test_fifty_parallel_wrong_passwords_get_at_most_the_limit_through(
    limited: LimitedApi,
) -> None:
    victim = limited.make_user()
    [attacker, owner] = _addresses(2)
    statuses = await asyncio.gather(
        *(_login(limited, attacker, victim.username, "wrong-pass") for _ in range(50))
    )
    assert statuses.count(401) <= 5
    assert statuses.count(401) + statuses.count(429) == 50
    # The owner, on another address, is not locked out by the stranger.
    assert await _login(limited, owner, victim.username, DEFAULT_PASSWORD) == 200


async def test_owner_logs_in_during_a_distributed_attack(limited: LimitedApi) -> None:
    """Sixty addresses guess at once (the per-account window, 50, fills: the account
    is under attack); the owner logs in in the middle of it and after it, while an
    attacking address that failed is refused from then on."""
    victim = limited.make_user()
    *attackers, owner = _addresses(61)
    guesses = [
        _login(limited, address, victim.username.upper(), "wrong-pass")
        for address in attackers
    ]
    owner_during = _login(limited, owner, victim.username, DEFAULT_PASSWORD)
    results = await asyncio.gather(*guesses[:30], owner_during, *guesses[30:])
    assert results[30] == 200
    assert set(results[:30] + results[31:]) <= {401, 429}
    # An address that failed during the attack is refused, even the right password.
    failed = attackers[results.index(401) - (1 if results.index(401) > 30 else 0)]
    assert await _login(limited, failed, victim.username, DEFAULT_PASSWORD) == 429
    assert await _login(limited, owner, victim.username, DEFAULT_PASSWORD) == 200


async def test_forged_forwarded_for_from_loopback_is_not_believed(
    limited: LimitedApi,
) -> None:
    """uvicorn (launched as the scripts do) with TRUSTED_PROXIES empty: 14 logins
    from one address, each claiming another X-Forwarded-For, share that address's
    auth limit (10 per minute)."""
    [address] = _addresses(1)
    statuses = []
    async with _from(limited, address) as http:
        for i in range(14):
            response = await http.post(
                "/v1/auth/login",
                json={"username": f"nobody{i}", "password": "wrong-pass"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
            )
            statuses.append(response.status_code)
    assert statuses.count(429) == 4, statuses
