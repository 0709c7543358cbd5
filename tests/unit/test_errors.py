"""Every error comes out in the one envelope (create_app on a temp SQLite file)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from app.core.config import Settings
from app.core.errors import NotFound, RateLimited, ServiceUnavailable
from app.main import create_app, lifespan


class Body(BaseModel):
    start_date: dt.date
    symbols: list[str]


def _add_test_routes(app: FastAPI) -> None:
    @app.post("/_test/body")
    async def body(payload: Body) -> dict[str, str]:
        return {"ok": "yes"}

    @app.get("/_test/not-found")
    async def not_found() -> None:
        raise NotFound("Backtest not found", task_id="abc")

    @app.get("/_test/limited")
    async def limited() -> None:
        raise RateLimited(retry_after=7)

    @app.get("/_test/unavailable")
    async def unavailable() -> None:
        raise ServiceUnavailable("Queue down", retry_after=3)

    @app.get("/_test/boom")
    async def boom() -> None:
        raise RuntimeError("secret-internal-detail")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        _env_file=None,
        environment="test",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'test.db'}",
        log_json=False,
        auto_migrate=False,
        embedded_worker_concurrency=0,
    )
    app = create_app(settings)
    _add_test_routes(app)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c


async def test_validation_error_is_400_with_field_details(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/_test/body", json={"start_date": "not-a-date", "symbols": ["A", 3]}
    )

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "ValidationError"
    fields = {d["field"] for d in body["details"]}
    assert fields == {"body.start_date", "body.symbols[1]"}
    assert all(d["message"] for d in body["details"])


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/_test/body",
        content=b'{"start_date": ',
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest"


async def test_unknown_route_is_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/nope")

    assert response.status_code == 404
    assert response.json() == {"error": "NotFound", "message": "Not Found"}


async def test_wrong_method_is_405_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health")

    assert response.status_code == 405
    assert response.json()["error"] == "MethodNotAllowed"
    assert "GET" in response.headers["allow"]


async def test_app_error_carries_task_id(client: httpx.AsyncClient) -> None:
    response = await client.get("/_test/not-found")

    assert response.status_code == 404
    assert response.json() == {
        "error": "NotFound",
        "message": "Backtest not found",
        "task_id": "abc",
    }


async def test_rate_limited_sets_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.get("/_test/limited")

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json()["error"] == "RateLimited"


async def test_service_unavailable_sets_retry_after(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/_test/unavailable")

    assert response.status_code == 503
    assert response.headers["retry-after"] == "3"


async def test_missing_token_is_401_with_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/auth/me")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": "Unauthorized", "message": "Not authenticated"}


async def test_unexpected_error_is_generic_500_and_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = await client.get("/_test/boom")

    assert response.status_code == 500
    assert response.json() == {
        "error": "InternalError",
        "message": "Internal server error",
    }
    assert "secret-internal-detail" not in response.text
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")

    assert response.json() == {"status": "ok"}


async def test_ready_reports_unmigrated_database_as_503(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/ready")

    assert response.status_code == 503
    details = response.json()["details"]
    assert details["database"]["ok"] is True
    assert details["migrations"]["ok"] is False


async def test_openapi_documents_error_envelope(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()

    login = schema["paths"]["/v1/auth/login"]["post"]
    assert login["summary"]
    assert "ErrorResponse" in str(login["responses"]["401"])
    assert "ErrorResponse" in str(login["responses"]["400"])
    # FastAPI's automatic 422 is gone; a 422 a route documents uses our envelope.
    for op in _operations(schema):
        if "422" in op["responses"]:
            assert "ErrorResponse" in str(op["responses"]["422"])
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def _operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in schema["paths"].values() for op in path.values()]
