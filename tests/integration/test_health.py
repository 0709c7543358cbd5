"""Liveness and readiness against the migrated PostgreSQL database."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from app.core.config import Settings
from app.jobs import registry
from app.main import create_app, lifespan
from app.ops.health import check_workers

pytestmark = pytest.mark.integration


@pytest.fixture
async def live_client(test_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its real lifespan (own engine), no dependency overrides, and no
    in-process worker (its readiness: ``test_sweeps_flow``'s embedded server)."""
    settings = test_settings.model_copy(update={"embedded_worker_concurrency": 0})
    app = create_app(settings)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_ready_is_ok_when_database_is_migrated(
    live_client: httpx.AsyncClient,
) -> None:
    response = await live_client.get("/ready")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is True
    assert "workers" not in body["checks"]  # no in-process worker here


async def test_health_is_ok(live_client: httpx.AsyncClient) -> None:
    response = await live_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_shutdown_during_the_warm_up_leaves_no_worker_behind(
    test_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lifespan that ends while the in-process worker is still warming up (the
    dataset, the kernels: seconds) stops it before it ever consumes the broker.
    Before, the worker started after the stop request and ran on, a daemon thread
    taking later jobs' messages, and shutdown waited its 30 s timeout.

    The real warm-ups are instant once an earlier test of this process has run them
    (the dataset and the kernels are cached), so one more kind, registered last,
    holds the warm-up until the stop has been requested: the stop then always
    arrives during the warm-up, whatever ran before."""
    entered, release = threading.Event(), threading.Event()

    def held_warm_up(_: Settings) -> None:
        entered.set()
        release.wait(120)

    def never_run(_: registry.RunContext) -> registry.Completion:
        raise AssertionError("no job of this kind is submitted")

    gate = registry.JobKind(
        name="warm_up_gate", label="Gate", run=never_run, warm_up=held_warm_up
    )
    monkeypatch.setitem(registry._KINDS, gate.name, gate)
    app = create_app(test_settings)
    async with lifespan(app):
        worker = app.state.embedded_worker
        assert await anyio.to_thread.run_sync(entered.wait, 120)
        assert worker.alive  # warming up
        # not ready meanwhile: a job submitted now would wait for the warm-up
        check = await check_workers(app)
        assert (check.ok, check.detail) == (False, "embedded worker warming up")

        def release_once_stopping() -> None:
            while not worker._stopping:
                time.sleep(0.01)
            release.set()

        threading.Thread(target=release_once_stopping, daemon=True).start()
    assert not worker.alive
    assert worker._started is False  # the Celery worker never started
