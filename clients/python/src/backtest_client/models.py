"""Typed views of the service's JSON bodies.

Field names are the API's own, so ``models.Trade`` reads like ``TradeOut`` in the
server's OpenAPI document (``__schema__`` names the component each model mirrors; a
test compares them). Fields a newer server adds are ignored when parsing, so an old
client keeps working; the drift test is what notices them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

Status = Literal["queued", "pending", "running", "completed", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

M = TypeVar("M", bound="Model")


def _parse_datetime(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _convert(tp: Any, value: Any) -> Any:  # noqa: PLR0911 - one case per type
    if value is None:
        return None
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        inner = [a for a in get_args(tp) if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if tp is dt.datetime:
        return _parse_datetime(value)
    if tp is dt.date:
        return dt.date.fromisoformat(value)
    if isinstance(tp, type) and issubclass(tp, Model):
        return tp.from_json(value)
    if origin is list:
        (item,) = get_args(tp)
        return [_convert(item, v) for v in value]
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


class Model:
    """Base of the response models: ``from_json`` and ``to_json``."""

    __schema__: ClassVar[str]

    @classmethod
    def from_json(cls: type[M], data: dict[str, Any]) -> M:
        hints = _hints(cls)
        kwargs = {
            f.name: _convert(hints[f.name], data[f.name])
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.name in data
        }
        return cls(**kwargs)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (dates as ISO strings), the API's field names."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            out[f.name] = _jsonable(getattr(self, f.name))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, Model):
        return value.to_json()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


@dataclasses.dataclass(frozen=True)
class User(Model):
    __schema__ = "UserRead"
    id: str
    username: str
    tier: str
    is_admin: bool
    email: str | None = None
    notify_email: bool = False


@dataclasses.dataclass(frozen=True)
class Token(Model):
    __schema__ = "TokenResponse"
    access_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - a token type, not a secret


@dataclasses.dataclass(frozen=True)
class StrategyParameter(Model):
    __schema__ = "StrategyParameter"
    name: str
    type: str
    default: float
    min: float | None = None
    max: float | None = None
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Strategy(Model):
    __schema__ = "StrategyInfo"
    id: int
    name: str
    description: str
    parameters: list[StrategyParameter]


@dataclasses.dataclass(frozen=True)
class BacktestRequest(Model):
    """The body of ``POST /v1/backtest``; ``None`` fields are left out so the
    server's defaults apply."""

    __schema__ = "BacktestRequest"
    start_date: dt.date
    end_date: dt.date
    name: str | None = None
    strategy_id: int | None = None
    strategy_params: dict[str, float] | None = None
    filter_criteria: dict[str, Any] | None = None
    symbols: list[str] | None = None
    initial_capital: float | None = None
    rebalancing: Literal["daily", "weekly", "monthly", "quarterly", "never"] | None = (
        None
    )
    # Investor portfolios (README "Portfolios"): fixed weights, a drift band,
    # recurring flows ({"amount", "frequency", "start_date", "end_date"}).
    allocation: dict[str, float] | None = None
    rebalance_band: float | None = None
    cash_flows: dict[str, Any] | None = None
    reinvest_dividends: bool | None = None
    commission: float | None = None
    slippage: float | None = None
    execution: Literal["next_open", "close"] | None = None
    dividends: bool | None = None
    benchmark: str | None = None
    # Up to 3: a symbol or {"name", "allocation", "rebalancing", "rebalance_band"}.
    benchmarks: list[str | dict[str, Any]] | None = None
    dataset: str | None = None
    risk_free_rate: float | None = None
    # "sp500_pit": point-in-time S&P 500 members; server default for whole-universe
    # runs on the bundled data (README "Data and its limits").
    universe: Literal["sp500_pit", "all"] | None = None
    # A signed completion callback (README "Webhooks") and a completion e-mail.
    callback_url: str | None = None
    notify_email: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in super().to_json().items() if v is not None}


@dataclasses.dataclass(frozen=True)
class BacktestCreated(Model):
    __schema__ = "BacktestCreated"
    task_id: str
    status: Status
    created_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class BacktestStatus(Model):
    __schema__ = "BacktestStatus"
    task_id: str
    status: Status
    progress: float
    config: dict[str, Any]
    created_at: dt.datetime
    name: str | None = None
    current_date: dt.date | None = None
    trades_executed: int = 0  # older name of fills_executed
    fills_executed: int = 0
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    error: str | None = None
    # Why it failed: "timeout", "worker_lost", "internal" or "job".
    error_code: str | None = None
    metrics: dict[str, bool | float | int | None] | None = None
    # While queued: estimated position (1 = next) and wait before it starts.
    queue_position: int | None = None
    eta_seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class ProgressUpdate(Model):
    """One frame of the progress WebSocket (or a poll shaped like one)."""

    __schema__ = "ProgressMessage"
    status: Status
    progress: float
    current_date: dt.date | None = None
    eta_seconds: float | None = None
    trades_executed: int = 0
    message: str | None = None
    queue_position: int | None = None  # while queued
    phase: str | None = None  # while running: the step (e.g. "simulation", "saving")


@dataclasses.dataclass(frozen=True)
class Trade(Model):
    __schema__ = "TradeOut"
    symbol: str
    entry_date: dt.date
    entry_price: float
    quantity: float
    exit_date: dt.date | None = None
    exit_price: float | None = None
    pnl: float | None = None
    pnl_percent: float | None = None
    is_open: bool = False


@dataclasses.dataclass(frozen=True)
class EquityPoint(Model):
    __schema__ = "EquityPoint"
    date: dt.date
    equity: float
    benchmark: float | None = None


@dataclasses.dataclass(frozen=True)
class DrawdownPoint(Model):
    __schema__ = "DrawdownPoint"
    date: dt.date
    drawdown: float


@dataclasses.dataclass(frozen=True)
class BenchmarkSeries(Model):
    """One benchmark's curve (aligned to ``equity_curve``) and relative metrics."""

    __schema__ = "BenchmarkSeries"
    name: str
    equity: list[float | None]
    metrics: dict[str, float | None]
    symbol: str | None = None
    allocation: dict[str, float] | None = None
    rebalancing: str | None = None


@dataclasses.dataclass(frozen=True)
class CashFlowPoint(Model):
    __schema__ = "CashFlowPoint"
    date: dt.date
    amount: float


@dataclasses.dataclass(frozen=True)
class ChartData(Model):
    __schema__ = "ChartData"
    equity_curve: list[EquityPoint]
    drawdown_series: list[DrawdownPoint]
    monthly_returns: dict[str, float]
    benchmark_symbol: str | None = None
    benchmarks: list[BenchmarkSeries] = dataclasses.field(default_factory=list)
    flows: list[CashFlowPoint] = dataclasses.field(default_factory=list)
    depleted_on: dt.date | None = None


@dataclasses.dataclass(frozen=True)
class HistoryItem(Model):
    __schema__ = "HistoryItem"
    task_id: str
    status: Status
    created_at: dt.datetime
    name: str | None = None
    completed_at: dt.datetime | None = None
    total_return: float | None = None
    sharpe_ratio: float | None = None


@dataclasses.dataclass(frozen=True)
class CancelResult(Model):
    __schema__ = "CancelResponse"
    task_id: str
    status: Status
    message: str


# Every model that mirrors a schema of the service (the drift test walks this).
SCHEMA_MODELS: tuple[type[Model], ...] = (
    User,
    Token,
    StrategyParameter,
    Strategy,
    BacktestRequest,
    BacktestCreated,
    BacktestStatus,
    ProgressUpdate,
    BenchmarkSeries,
    CashFlowPoint,
    Trade,
    EquityPoint,
    DrawdownPoint,
    ChartData,
    HistoryItem,
    CancelResult,
)

# Event types a webhook endpoint may subscribe to (``events`` of POST /v1/webhooks):
# a job kind's end, and a scheduled run refused (quota exhausted, template no longer
# valid). Kept equal to the service's list by tests/client/test_contract.py.
WEBHOOK_EVENTS: tuple[str, ...] = (
    "backtest.completed",
    "backtest.failed",
    "sweep.completed",
    "sweep.failed",
    "schedule.refused",
)
