"""BacktestRequest: every rule of the submit body, and how a violation reaches the
client (400 in the one envelope, ``details`` naming each bad field).

No I/O: the schema directly, and ``POST /v1/backtest`` through the ASGI app with the
user and session dependencies replaced (body validation happens before the route
runs, so nothing behind it is touched)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.accounts.deps import get_current_user
from app.api.deps import get_session
from app.backtests.schemas import MAX_SYMBOLS, BacktestRequest
from app.core.config import Settings
from app.db.models import User
from app.main import create_app

VALID: dict[str, Any] = {"start_date": "2015-01-01", "end_date": "2019-12-31"}
TOMORROW = dt.date.today() + dt.timedelta(days=1)


def _request(**changes: Any) -> BacktestRequest:
    return BacktestRequest.model_validate({**VALID, **changes})


def _errors(**changes: Any) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        _request(**changes)
    return [dict(e) for e in info.value.errors()]


def _messages(**changes: Any) -> str:
    return " | ".join(str(e["msg"]) for e in _errors(**changes))


def _locs(**changes: Any) -> set[tuple[Any, ...]]:
    return {tuple(e["loc"]) for e in _errors(**changes)}


# --- dates ----------------------------------------------------------------------


def test_request_minimal_body_uses_documented_defaults() -> None:
    request = _request()

    assert request.initial_capital == 100_000.0
    assert (request.rebalancing, request.execution) == ("monthly", "next_open")
    assert (request.commission, request.slippage) == (0.001, 0.0005)
    assert request.dividends is True
    assert request.symbols is None and request.benchmark is None


@pytest.mark.parametrize(
    ("start", "end"), [("2020-01-01", "2020-01-01"), ("2020-06-01", "2020-01-01")]
)
def test_request_start_not_before_end_is_rejected(start: str, end: str) -> None:
    assert "end_date must be after start_date" in _messages(
        start_date=start, end_date=end
    )
    assert _locs(start_date=start, end_date=end) == {("end_date",)}


def test_request_end_in_future_is_rejected() -> None:
    message = _messages(start_date="2020-01-01", end_date=TOMORROW.isoformat())

    assert "end_date must not be in the future" in message


def test_request_end_today_is_accepted() -> None:
    today = dt.date.today()

    assert (
        _request(start_date="2020-01-01", end_date=today.isoformat()).end_date == today
    )


def test_request_span_of_exactly_ten_years_is_accepted() -> None:
    request = _request(start_date="2010-01-01", end_date="2020-01-01")

    assert request.end_date == dt.date(2020, 1, 1)


def test_request_span_over_ten_years_is_rejected() -> None:
    message = _messages(start_date="2010-01-01", end_date="2020-01-02")

    assert "must not exceed 10 years" in message


def test_request_start_on_leap_day_is_accepted() -> None:
    request = _request(start_date="2016-02-29", end_date="2019-01-02")

    assert request.start_date == dt.date(2016, 2, 29)


def test_request_leap_day_span_limit_is_ten_years_to_feb_28() -> None:
    assert _request(start_date="2012-02-29", end_date="2022-02-28").end_date
    assert _locs(start_date="2012-02-29", end_date="2022-03-01") == {("end_date",)}


@pytest.mark.parametrize("value", ["2020-13-01", "yesterday", 20200101.5, None])
def test_request_malformed_dates_are_rejected(value: Any) -> None:
    assert ("start_date",) in _locs(start_date=value)


# --- numbers --------------------------------------------------------------------


@pytest.mark.parametrize("capital", [1_000, 10_000_000])
def test_request_capital_bounds_are_inclusive(capital: float) -> None:
    assert _request(initial_capital=capital).initial_capital == capital


@pytest.mark.parametrize("capital", [999.99, 10_000_000.01, 0, -5, "lots"])
def test_request_capital_out_of_bounds_is_rejected(capital: Any) -> None:
    assert ("initial_capital",) in _locs(initial_capital=capital)


@pytest.mark.parametrize(
    ("field", "maximum"), [("commission", 0.1), ("slippage", 0.05)]
)
def test_request_cost_rate_bounds_are_inclusive(field: str, maximum: float) -> None:
    assert getattr(_request(**{field: 0}), field) == 0
    assert getattr(_request(**{field: maximum}), field) == maximum


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("commission", -0.0001),
        ("commission", 0.1001),
        ("slippage", -0.0001),
        ("slippage", 0.0501),
        ("risk_free_rate", -0.01),
        ("risk_free_rate", 0.21),
    ],
)
def test_request_rates_out_of_bounds_are_rejected(field: str, value: float) -> None:
    assert (field,) in _locs(**{field: value})


def test_request_costs_map_to_engine_rate_names() -> None:
    config = _request(commission=0.002, slippage=0.001).to_config()

    assert (config.commission_rate, config.slippage_rate) == (0.002, 0.001)


# --- enums and unknown fields ---------------------------------------------------


@pytest.mark.parametrize("value", ["daily", "weekly", "monthly", "quarterly"])
def test_request_rebalancing_values_are_accepted(value: str) -> None:
    assert _request(rebalancing=value).rebalancing == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rebalancing", "yearly"),
        ("rebalancing", "Monthly"),
        ("execution", "open"),
        ("execution", ""),
    ],
)
def test_request_unknown_enum_value_is_rejected(field: str, value: str) -> None:
    assert (field,) in _locs(**{field: value})


@pytest.mark.parametrize("value", ["next_open", "close"])
def test_request_execution_values_are_accepted(value: str) -> None:
    assert _request(execution=value).execution == value


def test_request_unknown_field_is_rejected() -> None:
    errors = _errors(leverage=2)

    assert [(e["loc"], e["type"]) for e in errors] == [
        (("leverage",), "extra_forbidden")
    ]


def test_request_name_longer_than_200_is_rejected() -> None:
    assert ("name",) in _locs(name="n" * 201)


def test_request_strategy_params_must_be_numbers() -> None:
    assert any(
        loc[:2] == ("strategy_params", "top_n")
        for loc in _locs(strategy_id=2, strategy_params={"top_n": "twenty"})
    )


# --- symbols, benchmark, strategy choice ----------------------------------------


def test_request_symbols_are_stripped_and_upper_cased() -> None:
    request = _request(symbols=[" aapl", "Msft ", "brk.b"])

    assert request.symbols == ["AAPL", "MSFT", "BRK.B"]
    assert request.to_config().symbols == ("AAPL", "MSFT", "BRK.B")


@pytest.mark.parametrize("symbols", [["AAPL", "aapl"], ["MSFT", " msft "]])
def test_request_duplicate_symbols_after_normalising_are_rejected(
    symbols: list[str],
) -> None:
    assert "symbols contains duplicates" in _messages(symbols=symbols)


@pytest.mark.parametrize(
    "symbols",
    [[], [""], ["   "], ["X" * 17], [f"S{i}" for i in range(MAX_SYMBOLS + 1)]],
)
def test_request_bad_symbol_lists_are_rejected(symbols: list[str]) -> None:
    assert ("symbols",) in _locs(symbols=symbols)


def test_request_benchmark_is_normalised() -> None:
    assert _request(benchmark=" spy ").benchmark == "SPY"


def test_request_strategy_id_with_filter_criteria_is_rejected() -> None:
    message = _messages(strategy_id=2, filter_criteria={"rank_by": "momentum_252"})

    assert "either strategy_id or filter_criteria" in message


def test_request_strategy_id_alone_and_filter_alone_are_accepted() -> None:
    assert _request(strategy_id=2).strategy_id == 2
    assert _request(filter_criteria={"top_n": 5}).filter_criteria == {"top_n": 5}


# --- the error envelope through the app -----------------------------------------


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

    async def no_session() -> AsyncIterator[None]:
        yield None

    app.dependency_overrides[get_current_user] = lambda: user
    app.dependency_overrides[get_session] = no_session
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://unit") as c:
        yield c


async def test_submit_invalid_body_is_400_listing_each_bad_field(
    api: httpx.AsyncClient,
) -> None:
    body = {
        **VALID,
        "initial_capital": 10,
        "commission": 0.5,
        "rebalancing": "hourly",
        "surprise": True,
    }

    response = await api.post("/v1/backtest", json=body)

    assert response.status_code == 400
    payload = response.json()
    assert payload["error"] == "ValidationError"
    assert payload["message"] == "Request validation failed"
    fields = sorted(d["field"] for d in payload["details"])
    assert fields == [
        "body.commission",
        "body.initial_capital",
        "body.rebalancing",
        "body.surprise",
    ]
    assert all(d["message"] for d in payload["details"])


async def test_submit_missing_dates_names_both_fields(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/backtest", json={"strategy_id": 1})

    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["details"]}
    assert fields == {"body.start_date", "body.end_date"}


async def test_submit_cross_field_rule_is_400_on_the_field(
    api: httpx.AsyncClient,
) -> None:
    body = {"start_date": "2020-06-01", "end_date": "2020-01-01"}

    response = await api.post("/v1/backtest", json=body)

    assert response.status_code == 400
    [detail] = response.json()["details"]
    # Cross-field rules are reported on the field to fix.
    assert detail["field"] == "body.end_date"
    assert detail["message"].startswith("Value error, end_date must be after")


async def test_submit_malformed_json_is_400_bad_request(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post(
        "/v1/backtest",
        content=b'{"start_date": ',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest"
