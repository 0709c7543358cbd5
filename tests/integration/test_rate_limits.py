"""Per-tier submission limits, the active-jobs cap, the per-user and per-IP limits,
failed-login throttling, abuse limits and the Redis-down behaviour, through the API."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.core.config import Settings
from app.core.security import JWT_ALGORITHM, Tier
from app.db.models import User
from tests.integration.conftest import DEFAULT_PASSWORD, UserFactory
from tests.integration.limits_support import (
    VALID_BODY,
    app_on_session,
    client_for,
    committed_user,
    free_port,
    limit_settings,
    private_redis,
)

Headers = Callable[[User], dict[str, str]]
REPO_ROOT = Path(__file__).resolve().parents[2]


async def _submit_many(
    client: httpx.AsyncClient, headers: dict[str, str], n: int
) -> list[httpx.Response]:
    return [
        await client.post("/v1/backtest", json=VALID_BODY, headers=headers)
        for _ in range(n)
    ]


def _assert_rate_limit_headers(response: httpx.Response, limit: int) -> None:
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert int(response.headers["X-RateLimit-Remaining"]) >= 0
    assert int(response.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert response.headers["RateLimit-Policy"].startswith(f"{limit};w=")
    assert response.headers["RateLimit"].startswith(f"limit={limit}, remaining=")


# --- submissions per tier ----------------------------------------------------------


async def test_submit_free_user_eleventh_in_hour_is_429_with_retry_after(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(test_settings)  # the real hourly rules
    user = await user_factory(tier=Tier.FREE)
    async with client_for(app_on_session(settings, session)) as client:
        accepted = await _submit_many(client, auth_headers(user), 10)
        refused = await client.post(
            "/v1/backtest", json=VALID_BODY, headers=auth_headers(user)
        )

    assert [r.status_code for r in accepted] == [200] * 10
    assert [r.headers["X-RateLimit-Remaining"] for r in accepted] == [
        str(9 - i) for i in range(10)
    ]
    assert refused.status_code == 429
    assert refused.json()["error"] == "RateLimited"
    assert "10 jobs (backtests and sweeps) per hour" in refused.json()["message"]
    retry_after = int(refused.headers["Retry-After"])
    assert 3500 <= retry_after <= 3600
    assert refused.json()["details"] == {"retry_after": retry_after}
    _assert_rate_limit_headers(refused, 10)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Policy"] == "10;w=3600"


async def test_submit_pro_user_hundred_then_429(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(test_settings)
    user = await user_factory(tier=Tier.PRO)
    async with client_for(app_on_session(settings, session)) as client:
        accepted = await _submit_many(client, auth_headers(user), 100)
        refused = await client.post(
            "/v1/backtest", json=VALID_BODY, headers=auth_headers(user)
        )

    assert {r.status_code for r in accepted} == {200}
    assert refused.status_code == 429
    assert refused.headers["RateLimit-Policy"] == "100;w=3600"


async def test_submit_admin_is_never_limited(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(
        test_settings, rules={"submit": {"free": "2/hour"}, "active_jobs": {"free": 1}}
    )
    admin = await user_factory(tier=Tier.FREE, is_admin=True)
    async with client_for(app_on_session(settings, session)) as client:
        responses = await _submit_many(client, auth_headers(admin), 15)

    assert {r.status_code for r in responses} == {200}


async def test_submit_retry_at_retry_after_is_accepted(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(
        test_settings, rules={"submit": {"free": "3 per 2 seconds"}}
    )
    user = await user_factory()
    async with client_for(app_on_session(settings, session)) as client:
        accepted = await _submit_many(client, auth_headers(user), 3)
        refused = await client.post(
            "/v1/backtest", json=VALID_BODY, headers=auth_headers(user)
        )
        retry_after = int(refused.headers["Retry-After"])
        await asyncio.sleep(retry_after)
        retried = await client.post(
            "/v1/backtest", json=VALID_BODY, headers=auth_headers(user)
        )

    assert [r.status_code for r in accepted] == [200] * 3
    assert refused.status_code == 429
    assert 1 <= retry_after <= 2
    assert retried.status_code == 200


async def test_submit_boundary_burst_never_exceeds_limit_in_any_window(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    window, limit = 2.0, 5
    settings = limit_settings(
        test_settings, rules={"submit": {"free": "5 per 2 seconds"}}
    )
    user = await user_factory()
    # A fixed-window limiter would reset at every multiple of the window.
    boundary = math.ceil(time.time() / window + 1) * window
    accepted_at: list[float] = []
    async with client_for(app_on_session(settings, session)) as client:
        for start in (boundary - 0.4, boundary + 0.05):
            await asyncio.sleep(max(start - time.time(), 0))
            for response in await _submit_many(client, auth_headers(user), limit):
                if response.status_code == 200:
                    accepted_at.append(time.time())
                else:
                    assert response.status_code == 429

    assert len(accepted_at) == limit
    for t in accepted_at:
        assert sum(t <= u < t + window for u in accepted_at) <= limit


async def test_submit_invalid_requests_consume_no_quota(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(test_settings, rules={"submit": {"free": "2/hour"}})
    user = await user_factory()
    bad_schema = {**VALID_BODY, "commission": 5}
    bad_symbol = {**VALID_BODY, "symbols": ["NOSUCHSYMBOL"]}
    async with client_for(app_on_session(settings, session)) as client:
        invalid = [
            await client.post("/v1/backtest", json=body, headers=auth_headers(user))
            for body in (bad_schema, bad_symbol, bad_schema, bad_symbol)
        ]
        valid = await _submit_many(client, auth_headers(user), 2)

    assert {r.status_code for r in invalid} == {400}
    assert [r.status_code for r in valid] == [200, 200]


async def test_submit_over_active_cap_is_queued_not_refused(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    """The concurrency cap no longer refuses: jobs over it wait as ``queued``."""
    settings = limit_settings(test_settings, rules={"active_jobs": {"free": 2}})
    user = await user_factory()
    async with client_for(app_on_session(settings, session)) as client:
        responses = await _submit_many(client, auth_headers(user), 4)
        statuses = [
            (await client.get(f"/v1/backtest/{r.json()['task_id']}",
                              headers=auth_headers(user))).json()
            for r in responses
        ]  # fmt: skip

    assert [r.status_code for r in responses] == [200] * 4
    # The cap's 2 are dispatched (pending: no worker here), the other 2 wait.
    assert [r.json()["status"] for r in responses] == ["pending"] * 2 + ["queued"] * 2
    assert [s["status"] for s in statuses] == ["pending"] * 2 + ["queued"] * 2
    # Dispatched jobs are ahead of them; the queue is in submission order (same
    # cost). Exact positions are the embedded test's (a fresh database).
    positions = [s["queue_position"] for s in statuses]
    assert positions[:2] == [None, None]
    assert 3 <= positions[2] < positions[3]
    assert all(s["eta_seconds"] > 0 for s in statuses[2:])


async def test_submit_waiting_cap_is_429_with_rate_limit_headers(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(
        test_settings,
        rules={"active_jobs": {"free": 1}, "waiting_jobs": {"free": 2}},
    )
    user = await user_factory()
    async with client_for(app_on_session(settings, session)) as client:
        responses = await _submit_many(client, auth_headers(user), 4)

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    refused = responses[3]
    body = refused.json()
    assert body["error"] == "RateLimited"
    assert "waiting jobs" in body["message"]
    assert "2 queued" in body["message"]
    _assert_rate_limit_headers(refused, 2)
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    retry = int(refused.headers["Retry-After"])
    assert retry >= 1
    assert refused.headers["RateLimit-Policy"] == f"2;w={retry}"
    assert "limit=2, remaining=0" in refused.headers["RateLimit"]


async def test_submit_forged_tier_claim_admits_nothing_extra(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
) -> None:
    settings = limit_settings(test_settings, rules={"submit": {"free": "2/hour"}})
    user = await user_factory(tier=Tier.FREE)
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": str(user.id),
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "tier": "enterprise",
        "is_admin": True,
    }
    token = jwt.encode(claims, settings.jwt_secret, algorithm=JWT_ALGORITHM)
    headers = {"Authorization": f"Bearer {token}", "X-User-Tier": "enterprise"}
    async with client_for(app_on_session(settings, session)) as client:
        responses = await _submit_many(client, headers, 3)

    assert [r.status_code for r in responses] == [200, 200, 429]


async def test_submit_limit_is_per_user(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(test_settings, rules={"submit": {"free": "1/hour"}})
    first, second = await user_factory(), await user_factory()
    async with client_for(app_on_session(settings, session)) as client:
        a = await _submit_many(client, auth_headers(first), 2)
        b = await _submit_many(client, auth_headers(second), 1)

    assert [r.status_code for r in a + b] == [200, 429, 200]


# --- other requests ----------------------------------------------------------------


async def test_reads_limited_per_user_with_headers_on_success(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(test_settings, rules={"api": "3/minute"})
    user = await user_factory()
    async with client_for(app_on_session(settings, session)) as client:
        responses = [
            await client.get("/v1/backtest/history", headers=auth_headers(user))
            for _ in range(4)
        ]

    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    _assert_rate_limit_headers(responses[0], 3)
    assert responses[0].headers["X-RateLimit-Remaining"] == "2"
    assert 1 <= int(responses[3].headers["Retry-After"]) <= 60


async def test_reads_not_found_still_carry_rate_limit_headers(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(test_settings)
    user = await user_factory()
    async with client_for(app_on_session(settings, session)) as client:
        response = await client.get("/v1/backtest/nope", headers=auth_headers(user))

    assert response.status_code == 404
    _assert_rate_limit_headers(response, 600)


async def test_auth_endpoints_limited_per_ip_forged_forwarded_for_ignored(
    test_settings: Settings, session: AsyncSession
) -> None:
    settings = limit_settings(test_settings, rules={"auth_ip": "3/minute"})
    async with client_for(app_on_session(settings, session)) as client:
        responses = [
            await client.post(
                "/v1/auth/login",
                json={"username": "nobody", "password": "whatever-pass"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            )
            for i in range(4)
        ]

    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    assert responses[3].json()["error"] == "RateLimited"


async def test_auth_endpoints_forwarded_for_trusted_from_configured_proxy(
    test_settings: Settings, session: AsyncSession
) -> None:
    # httpx's ASGI transport connects from 127.0.0.1.
    settings = limit_settings(
        test_settings, rules={"auth_ip": "1/minute"}, trusted_proxies=["127.0.0.0/8"]
    )
    body = {"username": "nobody", "password": "whatever-pass"}
    async with client_for(app_on_session(settings, session)) as client:
        a1 = await client.post(
            "/v1/auth/login", json=body, headers={"X-Forwarded-For": "198.51.100.1"}
        )
        b1 = await client.post(
            "/v1/auth/login", json=body, headers={"X-Forwarded-For": "198.51.100.2"}
        )
        # The client prepends a forged address; the proxy appended the real one.
        a2 = await client.post(
            "/v1/auth/login",
            json=body,
            headers={"X-Forwarded-For": "10.9.9.9, 198.51.100.1"},
        )

    assert [a1.status_code, b1.status_code, a2.status_code] == [401, 401, 429]


async def test_login_failures_for_one_username_slow_down(
    test_settings: Settings, session: AsyncSession, user_factory: UserFactory
) -> None:
    settings = limit_settings(
        test_settings,
        rules={"login_failures": "5 per 15 minutes", "auth_ip": "100/minute"},
    )
    user = await user_factory()
    wrong = {"username": user.username, "password": "wrong-password"}
    right = {"username": user.username, "password": DEFAULT_PASSWORD}
    async with client_for(app_on_session(settings, session)) as client:
        failures = [await client.post("/v1/auth/login", json=wrong) for _ in range(5)]
        blocked = await client.post("/v1/auth/login", json=right)
        other = await client.post(
            "/v1/auth/login", json={"username": "someone_else", "password": "x" * 10}
        )

    assert [r.status_code for r in failures] == [401] * 5
    assert blocked.status_code == 429
    assert "failed logins" in blocked.json()["message"]
    assert 1 <= int(blocked.headers["Retry-After"]) <= 900
    assert other.status_code == 401


async def test_login_success_costs_no_failure_slot(
    test_settings: Settings, session: AsyncSession, user_factory: UserFactory
) -> None:
    settings = limit_settings(
        test_settings,
        rules={"login_failures": "1 per 15 minutes", "auth_ip": "100/minute"},
    )
    user = await user_factory()
    right = {"username": user.username, "password": DEFAULT_PASSWORD}
    async with client_for(app_on_session(settings, session)) as client:
        responses = [await client.post("/v1/auth/login", json=right) for _ in range(3)]

    assert [r.status_code for r in responses] == [200] * 3


# --- abuse limits ------------------------------------------------------------------


async def test_body_over_limit_is_413(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    async with client_for(
        app_on_session(limit_settings(test_settings), session)
    ) as client:
        response = await client.post(
            "/v1/backtest",
            content=big,
            headers={**auth_headers(user), "Content-Type": "application/json"},
        )

    assert response.status_code == 413
    assert response.json()["error"] == "PayloadTooLarge"


async def test_chunked_body_over_limit_is_413(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 65536

    async with client_for(
        app_on_session(limit_settings(test_settings), session)
    ) as client:
        response = await client.post(
            "/v1/backtest",
            content=chunks(),
            headers={**auth_headers(user), "Content-Type": "application/json"},
        )

    assert response.status_code == 413


async def test_too_many_symbols_or_filters_is_400(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    settings = limit_settings(
        test_settings, max_symbols_per_request=2, max_filters_per_request=1
    )
    user = await user_factory()
    symbols = {**VALID_BODY, "symbols": ["AAPL", "MSFT", "SPY"]}
    screen = {
        "start_date": "2015-01-01",
        "end_date": "2019-12-31",
        "filter_criteria": {
            "filters": [
                {"factor": "return", "window": 126, "op": ">", "value": 0},
                {"factor": "close", "op": ">", "value": 1},
            ],
            "top_n": 5,
        },
    }
    async with client_for(app_on_session(settings, session)) as client:
        a = await client.post("/v1/backtest", json=symbols, headers=auth_headers(user))
        b = await client.post("/v1/backtest", json=screen, headers=auth_headers(user))

    assert a.status_code == 400
    assert a.json()["details"][0]["field"] == "body.symbols"
    assert b.status_code == 400
    assert b.json()["details"][0]["field"] == "body.filter_criteria.filters"


async def test_page_limit_above_maximum_is_400(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    async with client_for(
        app_on_session(limit_settings(test_settings), session)
    ) as client:
        response = await client.get(
            "/v1/backtest/history?limit=100000", headers=auth_headers(user)
        )

    assert response.status_code == 400


# --- Redis (distributed mode) -------------------------------------------------------


async def test_redis_down_reads_fail_open_and_submits_counted_in_database(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    with private_redis() as server:
        settings = limit_settings(
            test_settings,
            redis_url=server.url,
            rules={"submit": {"free": "3/hour"}, "api": "100/minute"},
        )
        async with client_for(app_on_session(settings, session)) as client:
            before = await _submit_many(client, auth_headers(user), 2)
            server.stop()
            read = await client.get("/v1/backtest/history", headers=auth_headers(user))
            during = await _submit_many(client, auth_headers(user), 2)

    assert [r.status_code for r in before] == [200, 200]
    assert read.status_code == 200
    assert [r.status_code for r in during] == [200, 429]  # 3 per hour, counted in DB
    assert during[1].json()["error"] == "RateLimited"
    assert 1 <= int(during[1].headers["Retry-After"]) <= 3600


async def test_redis_down_submits_503_when_fallback_is_reject(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    user = await user_factory()
    with private_redis() as server:
        settings = limit_settings(
            test_settings, redis_url=server.url, rate_limit_submit_fallback="reject"
        )
        server.stop()
        async with client_for(app_on_session(settings, session)) as client:
            read = await client.get("/v1/backtest/history", headers=auth_headers(user))
            submit = await client.post(
                "/v1/backtest", json=VALID_BODY, headers=auth_headers(user)
            )

    assert read.status_code == 200
    assert submit.status_code == 503
    assert submit.json()["error"] == "ServiceUnavailable"


async def test_redis_back_after_outage_stays_within_quota(
    test_settings: Settings,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Headers,
) -> None:
    """Submissions admitted through the database fallback still count once Redis is
    back (Redis never saw them)."""
    user = await user_factory()
    with private_redis() as server:
        settings = limit_settings(
            test_settings,
            redis_url=server.url,
            rules={"submit": {"free": "3/hour"}},
            rate_limit_redis_retry_seconds=0,
        )
        async with client_for(app_on_session(settings, session)) as client:
            server.stop()
            during = await _submit_many(client, auth_headers(user), 2)
            server.start()
            after = await _submit_many(client, auth_headers(user), 2)

    assert [r.status_code for r in during + after] == [200, 200, 200, 429]


async def test_submit_fifty_parallel_across_two_processes_accepts_exactly_ten(
    engine: AsyncEngine, database_url: str, test_settings: Settings, tmp_path: Path
) -> None:
    async with committed_user(engine) as user:
        token = jwt.encode(
            {
                "sub": str(user.id),
                "iat": dt.datetime.now(dt.UTC),
                "exp": dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
            },
            test_settings.jwt_secret,
            algorithm=JWT_ALGORITHM,
        )
        with (
            private_redis() as server,
            _api_processes(
                2, database_url, server.url, test_settings.jwt_secret, tmp_path
            ) as bases,
        ):
            async with httpx.AsyncClient(timeout=60) as client:
                responses = await asyncio.gather(
                    *(
                        client.post(
                            f"{bases[i % 2]}/v1/backtest",
                            json=VALID_BODY,
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        for i in range(50)
                    )
                )

    codes = [r.status_code for r in responses]
    others = {r.text for r in responses if r.status_code not in (200, 429)}
    assert codes.count(200) == 10, others
    assert codes.count(429) == 40, others


class _api_processes:  # noqa: N801 - used as a context manager function
    """``n`` uvicorn processes of the app on one database and one Redis."""

    def __init__(
        self, n: int, database_url: str, redis_url: str, secret: str, log_dir: Path
    ) -> None:
        self.ports = [free_port() for _ in range(n)]
        self.env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "JWT_SECRET": secret,
            "AUTO_MIGRATE": "false",
            "LOG_LEVEL": "WARNING",
            "METRICS_ENABLED": "false",
            "RATE_LIMITS": '{"active_jobs": {"free": 1000}}',
            # 25 concurrent requests per process would open up to 30 connections
            # each; with the session's other stacks that can exhaust PostgreSQL's
            # 100 (then 503s, rightly). The limits under test do not need them.
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "5",
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> list[str]:
        for port in self.ports:
            log = (self.log_dir / f"api-{port}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "uvicorn", "app.main:create_app",
                     "--factory", "--host", "127.0.0.1", "--port", str(port)],
                    cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        bases = [f"http://127.0.0.1:{port}" for port in self.ports]
        # a start-up wait, not a speed check: generous for a loaded 2-core machine
        deadline = time.monotonic() + 180
        for base in bases:
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.__exit__()
                    pytest.fail(f"API process at {base} did not start")
                time.sleep(0.2)
        return bases

    def __exit__(self, *_: object) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
