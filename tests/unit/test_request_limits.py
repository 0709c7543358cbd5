"""GET /v1/symbols publishes the bounds of a POST /v1/backtest body (``limits``), and
they are the bounds the request schema enforces: a value at each published limit is
accepted, one just past it is refused on that field. The web app reads them from
there instead of copying them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.accounts.deps import get_current_user
from app.backtests.schemas import BacktestRequest
from app.core.config import Settings
from app.db.models import User
from app.engine.config import request_limits
from app.main import create_app

START = dt.date(2010, 3, 1)
VALID: dict[str, Any] = {"start_date": START.isoformat(), "end_date": "2012-12-31"}


def _bad_fields(**changes: Any) -> set[str]:
    try:
        BacktestRequest.model_validate({**VALID, **changes})
    except ValidationError as exc:
        return {str(e["loc"][0]) for e in exc.errors()}
    return set()


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        environment="test",
        jwt_secret="x" * 48,
        embedded_worker_concurrency=0,
        log_level="WARNING",
    )
    app = create_app(settings)
    user = User(id=uuid.uuid4(), username="unit", password_hash="-", tier="free")
    app.dependency_overrides[get_current_user] = lambda: user
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://unit") as c:
        yield c


async def test_symbols_endpoint_publishes_the_request_limits(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/v1/symbols")
    assert response.status_code == 200
    assert response.json()["limits"] == request_limits()


@pytest.mark.parametrize(
    ("field", "limit_key"),
    [
        ("commission", "max_commission"),
        ("slippage", "max_slippage"),
        ("risk_free_rate", "max_risk_free_rate"),
        ("initial_capital", "max_capital"),
    ],
)
def test_each_published_maximum_is_the_enforced_one(field: str, limit_key: str) -> None:
    limit = request_limits()[limit_key]
    assert _bad_fields(**{field: limit}) == set()
    assert _bad_fields(**{field: limit * 1.001}) == {field}


def test_the_published_minimum_capital_is_the_enforced_one() -> None:
    limit = request_limits()["min_capital"]
    assert _bad_fields(initial_capital=limit) == set()
    assert _bad_fields(initial_capital=limit - 1) == {"initial_capital"}


def test_the_published_span_is_the_enforced_one() -> None:
    years = int(request_limits()["max_span_years"])
    longest = START.replace(year=START.year + years)
    assert _bad_fields(end_date=longest.isoformat()) == set()
    too_long = longest + dt.timedelta(days=1)
    assert _bad_fields(end_date=too_long.isoformat()) == {"end_date"}


def test_the_published_symbol_count_is_the_enforced_one() -> None:
    n = int(request_limits()["max_symbols"])
    assert _bad_fields(symbols=[f"S{i}" for i in range(n)]) == set()
    assert _bad_fields(symbols=[f"S{i}" for i in range(n + 1)]) == {"symbols"}
