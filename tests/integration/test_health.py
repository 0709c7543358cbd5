"""Liveness and readiness against the migrated PostgreSQL database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.config import Settings
from app.main import create_app, lifespan

pytestmark = pytest.mark.integration


@pytest.fixture
async def live_client(test_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its real lifespan (own engine), no dependency overrides."""
    app = create_app(test_settings)
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


async def test_health_is_ok(live_client: httpx.AsyncClient) -> None:
    response = await live_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
