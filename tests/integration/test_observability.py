"""Request ids, metrics, readiness detail, caching validators and log redaction on the
real app (PostgreSQL; Redis DB 13 for the chart cache)."""

from __future__ import annotations

import io
import logging
import os
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
import redis.asyncio as aredis
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.caching import JsonCache
from app.backtests import repository as trades_repo
from app.core.config import Settings
from app.core.logging import _HANDLER_NAME, configure_logging
from app.core.metrics import render
from app.db.models import Job, User
from app.jobs import repository as backtests_repo
from app.ops import health
from tests.integration.conftest import UserFactory

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("TEST_CACHE_REDIS_URL", "redis://127.0.0.1:6379/13")
SERIES = {
    "dates": ["2020-01-02", "2020-01-03", "2020-01-06"],
    "equity": [100_000.0, 101_000.0, 100_500.0],
    "benchmark": None,
    "drawdown": [0.0, 0.0, -0.00495],
    "monthly_returns": {"2020-01": 0.005},
    "benchmark_symbol": None,
}


@pytest.fixture
def log_stream(test_settings: Settings) -> Iterator[io.StringIO]:
    """Everything the app logs (JSON, INFO and up) while the test runs."""
    settings = test_settings.model_copy(update={"log_json": True, "log_level": "INFO"})
    configure_logging(settings, force=True)
    handler = next(
        h for h in logging.getLogger().handlers if h.get_name() == _HANDLER_NAME
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
        configure_logging(test_settings, force=True)


async def _completed(session: AsyncSession, user: User) -> Job:
    row = await backtests_repo.create(
        session, kind="backtest", user_id=user.id, config={"x": 1}
    )
    assert await backtests_repo.mark_running(session, row.id, claim_token="t")
    assert await backtests_repo.mark_completed(
        session,
        row.id,
        claim_token="t",
        metrics={"total_return": 0.005},
        total_return=0.005,
        sharpe_ratio=None,
    )
    await trades_repo.save_series(session, row.id, SERIES)
    await session.commit()
    await session.refresh(row)
    return row


async def test_request_id_is_echoed_when_safe(client: httpx.AsyncClient) -> None:
    response = await client.get("/health", headers={"X-Request-ID": "req-1.a:b"})

    assert response.headers["X-Request-ID"] == "req-1.a:b"


@pytest.mark.parametrize("bad", ["x" * 129, "has space", "semi;colon", "ü-umlaut"])
async def test_request_id_is_replaced_when_unsafe(
    client: httpx.AsyncClient, bad: str
) -> None:
    response = await client.get("/health", headers={"X-Request-ID": bad.encode()})

    generated = response.headers["X-Request-ID"]
    assert generated != bad
    assert len(generated) == 32


async def test_metrics_label_route_templates_not_ids(
    client: httpx.AsyncClient,
    user_factory: UserFactory,
    auth_headers: Callable[[User], dict[str, str]],
) -> None:
    user = await user_factory()
    missing = uuid.uuid4()
    await client.get(f"/v1/backtest/{missing}", headers=auth_headers(user))

    body = (await client.get("/metrics")).text

    assert (
        'http_requests_total{method="GET",route="/v1/backtest/{task_id}",'
        'status="404"}' in body
    )
    assert str(missing) not in body
    assert "rate_limit_rejections_total" in render().decode()


async def test_completed_status_has_etag_and_answers_304(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Callable[[User], dict[str, str]],
) -> None:
    user = await user_factory()
    row = await _completed(session, user)
    headers = auth_headers(user)

    first = await client.get(f"/v1/backtest/{row.id}", headers=headers)
    second = await client.get(
        f"/v1/backtest/{row.id}",
        headers={**headers, "If-None-Match": first.headers["ETag"]},
    )

    assert first.status_code == 200
    assert "immutable" in first.headers["Cache-Control"]
    assert second.status_code == 304
    assert second.content == b""
    assert second.headers["ETag"] == first.headers["ETag"]


async def test_trades_and_chart_etags_differ_by_variant(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Callable[[User], dict[str, str]],
) -> None:
    user = await user_factory()
    row = await _completed(session, user)
    headers = auth_headers(user)

    trades = await client.get(f"/v1/backtest/{row.id}/trades", headers=headers)
    chart = await client.get(f"/v1/backtest/{row.id}/chart", headers=headers)
    chart_small = await client.get(
        f"/v1/backtest/{row.id}/chart?max_points=100", headers=headers
    )
    cached = await client.get(
        f"/v1/backtest/{row.id}/chart",
        headers={**headers, "If-None-Match": chart.headers["ETag"]},
    )

    assert trades.status_code == chart.status_code == 200
    assert len({trades.headers["ETag"], chart.headers["ETag"]}) == 2
    assert chart_small.headers["ETag"] != chart.headers["ETag"]
    assert cached.status_code == 304


async def test_unfinished_backtest_is_not_cacheable(
    client: httpx.AsyncClient,
    session: AsyncSession,
    user_factory: UserFactory,
    auth_headers: Callable[[User], dict[str, str]],
) -> None:
    user = await user_factory()
    row = await backtests_repo.create(
        session, kind="backtest", user_id=user.id, config={"x": 1}
    )
    await session.commit()

    response = await client.get(f"/v1/backtest/{row.id}", headers=auth_headers(user))

    assert "ETag" not in response.headers
    assert response.headers["Cache-Control"] == "private, no-cache"


async def test_chart_cache_round_trips_through_redis() -> None:
    client = aredis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        await client.ping()
    except Exception as exc:
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis required: {exc}")
        pytest.skip(f"Redis unavailable: {exc}")
    cache = JsonCache(client, ttl_seconds=60, prefix=f"test-{uuid.uuid4().hex}")
    try:
        await cache.set("chart:1", "500", {"a": [1, 2]})

        assert await cache.get("chart:1", "500") == {"a": [1, 2]}
        assert await cache.get("chart:1", "100") is None
    finally:
        await client.aclose()


async def test_chart_cache_outage_is_a_miss() -> None:
    client = aredis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    cache = JsonCache(client, ttl_seconds=60)

    await cache.set("chart:1", "500", {"a": 1})

    assert await cache.get("chart:1", "500") is None
    await client.aclose()


async def test_failed_login_password_is_not_logged(
    client: httpx.AsyncClient, user_factory: UserFactory, log_stream: io.StringIO
) -> None:
    user = await user_factory()
    password = "wrong-" + uuid.uuid4().hex

    response = await client.post(
        "/v1/auth/login", json={"username": user.username, "password": password}
    )

    assert response.status_code == 401
    assert password not in log_stream.getvalue()


async def test_workers_check_pings_once_within_cache_window(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[float] = []

    def ping(timeout: float) -> list[str]:
        calls.append(timeout)
        return ["worker@host"]

    monkeypatch.setattr(health, "_ping_workers", ping)
    app.state.settings = app.state.settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:6379/13"}
    )

    first = await health.check_workers(app)
    second = await health.check_workers(app)

    assert first.ok and second.ok
    assert calls == [app.state.settings.worker_ping_timeout_seconds]


async def test_workers_check_fails_when_no_worker_answers(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "_ping_workers", lambda timeout: [])
    app.state.settings = app.state.settings.model_copy(
        update={"redis_url": "redis://127.0.0.1:6379/13"}
    )

    result = await health.check_workers(app)

    assert not result.ok
    assert result.detail == "no worker answered a ping"


async def test_embedded_workers_check_reports_dead_thread(app: FastAPI) -> None:
    class Dead:
        alive = False

    app.state.embedded_worker = Dead()

    result = await health.check_workers(app)

    assert not result.ok
