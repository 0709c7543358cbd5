"""The backtest API contract: request and response bodies of /v1/backtest."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from app.api.schemas import Schema
from app.data.membership import has_membership
from app.engine.config import (
    MAX_BENCHMARKS,
    MAX_CAPITAL,
    MAX_COMMISSION_RATE,
    MAX_RISK_FREE_RATE,
    MAX_SLIPPAGE_RATE,
    MAX_SPAN_YEARS,
    MAX_SYMBOLS,
    MIN_CAPITAL,
    WEIGHT_SUM_TOLERANCE,
    AllocationBenchmark,
    BacktestConfig,
    CashFlowPlan,
    Universe,
)


def _iso_datetime_only(value: object) -> object:
    """Pydantic reads bare numbers as Unix timestamps; the documented format is ISO
    8601 (``2024-01-31`` or ``2024-01-31T12:00:00Z``), so numbers are refused."""
    numeric = isinstance(value, str) and (
        value.strip().lstrip("+-").replace(".", "", 1).isdigit()
    )
    if isinstance(value, int | float) or numeric:
        raise ValueError("expected an ISO 8601 date or date-time, e.g. 2024-01-31")
    return value


def _as_utc(value: dt.datetime) -> dt.datetime:
    """A date-time without a zone is UTC (the documented format has none); one whose
    UTC instant falls outside years 1..9999 is refused (400, not an overflow)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise ValueError("date-time out of range (years 1 to 9999, UTC)") from exc


IsoDateTime = Annotated[
    dt.datetime, BeforeValidator(_iso_datetime_only), AfterValidator(_as_utc)
]

Status = Literal[
    "queued", "pending", "running", "completed", "failed", "cancelled"
]  # fmt: skip
ErrorCode = Literal["timeout", "worker_lost", "internal", "job"]
ACTIVE_STATUSES: frozenset[str] = frozenset({"queued", "pending", "running"})


_REQUEST_EXAMPLE: JsonDict = {
    "name": "Momentum top 20, 2015-2019",
    "strategy_id": 2,
    "strategy_params": {"top_n": 20},
    "start_date": "2015-01-01",
    "end_date": "2019-12-31",
    "initial_capital": 100000,
    "rebalancing": "monthly",
    "commission": 0.001,
    "slippage": 0.0005,
    "execution": "next_open",
    "dividends": True,
    "benchmark": "SPY",
    "universe": "sp500_pit",
}


Rebalancing = Literal["daily", "weekly", "monthly", "quarterly", "never"]
FlowFrequency = Literal["monthly", "quarterly", "yearly"]


def _check_allocation(value: dict[str, float] | None) -> dict[str, float] | None:
    """Symbols upper-cased; weights in (0, 1]; their sum at most 1 (the rest is
    cash)."""
    if value is None:
        return None
    if not value:
        raise ValueError("allocation must name at least one symbol")
    out: dict[str, float] = {}
    for raw, weight in value.items():
        symbol = raw.strip().upper()
        if not symbol or len(symbol) > 16:
            raise ValueError("allocation symbols must be 1 to 16 characters")
        if symbol in out:
            raise ValueError(f"allocation names {symbol} twice")
        if not 0.0 < weight <= 1.0:
            raise ValueError(f"allocation weight of {symbol} must be in (0, 1]")
        out[symbol] = float(weight)
    if sum(out.values()) > 1.0 + WEIGHT_SUM_TOLERANCE:
        raise ValueError(
            f"allocation weights add up to {sum(out.values()):.6g}; at most 1 "
            "(the rest stays cash)"
        )
    return out


Allocation = Annotated[dict[str, float], AfterValidator(_check_allocation)]


class CashFlows(Schema):
    """A recurring contribution (``amount`` > 0) or withdrawal (< 0), applied on the
    first session of each period after the run's first session, within
    ``start_date``..``end_date`` when given; each is followed by a rebalance to the
    target weights that day (README "Portfolios")."""

    model_config = ConfigDict(extra="forbid")

    amount: float = Field(
        ge=-MAX_CAPITAL,
        le=MAX_CAPITAL,
        description="Per period: positive = contribution, negative = withdrawal.",
    )
    frequency: FlowFrequency = "monthly"
    start_date: dt.date | None = Field(
        default=None, description="First day a flow may fall on (default: the start)."
    )
    end_date: dt.date | None = Field(
        default=None, description="Last day a flow may fall on (default: the end)."
    )

    @field_validator("amount")
    @classmethod
    def _non_zero(cls, value: float) -> float:
        if value == 0.0:
            raise ValueError("amount must not be 0 (omit cash_flows instead)")
        return value

    @field_validator("end_date")
    @classmethod
    def _ordered(cls, end: dt.date | None, info: ValidationInfo) -> dt.date | None:
        start = info.data.get("start_date")
        if end is not None and start is not None and end < start:
            raise ValueError("cash_flows.end_date must not be before its start_date")
        return end


class BenchmarkPortfolio(Schema):
    """A benchmark that is an allocation, simulated like a backtest of it (same
    costs, execution, whole shares, dividend convention)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60, description="Its label.")
    allocation: Allocation = Field(description="Symbol -> weight, as `allocation`.")
    rebalancing: Rebalancing = "monthly"
    rebalance_band: float | None = Field(default=None, gt=0.0, le=1.0)


def _entry_kind(value: object) -> str:
    return "symbol" if isinstance(value, str) else "portfolio"


# Discriminated, so that a bad allocation benchmark gets one error
# (body.benchmarks.<i>.portfolio.<field>), not one per union member.
BenchmarkEntry = Annotated[
    Annotated[str, Tag("symbol")] | Annotated[BenchmarkPortfolio, Tag("portfolio")],
    Discriminator(_entry_kind),
    Field(description="A symbol (`SPY`) or an allocation benchmark."),
]


def _add_years(day: dt.date, years: int) -> dt.date:
    """``day`` moved ``years`` years on; Feb 29 becomes Feb 28 in a common year."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


class BacktestRequest(Schema):
    """What to backtest. Unknown fields are rejected (400)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [_REQUEST_EXAMPLE]}
    )

    name: str | None = Field(default=None, max_length=200, description="Your label.")
    strategy_id: int | None = Field(
        default=None, description="A predefined strategy (GET /v1/strategies)."
    )
    strategy_params: dict[str, float | int] | None = Field(
        default=None, description="Overrides of the strategy's parameter defaults."
    )
    filter_criteria: dict[str, Any] | None = Field(
        default=None,
        description="A custom screen: filters, rank_by, top_n, weighting (README).",
    )
    allocation: Allocation | None = Field(
        default=None,
        description="Fixed target weights, symbol -> weight in (0, 1], summing to "
        "at most 1 (the rest stays cash); any symbol of the dataset, ETFs included. "
        "Not with strategy_id, filter_criteria or symbols.",
    )
    symbols: list[str] | None = Field(
        default=None,
        max_length=MAX_SYMBOLS,
        description="The universe; default: every stock of the dataset.",
    )
    start_date: dt.date
    end_date: dt.date
    initial_capital: float = Field(default=100_000.0, ge=MIN_CAPITAL, le=MAX_CAPITAL)
    rebalancing: Rebalancing = Field(
        default="monthly",
        description="Calendar rebalancing; never = buy and hold (flows and the band "
        "still rebalance).",
    )
    rebalance_band: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="Also rebalance every holding to target when any holding's "
        "weight is more than this (absolute) away from its target; checked at every "
        "close, combined with the calendar (whichever comes first).",
    )
    cash_flows: CashFlows | None = Field(
        default=None, description="Recurring contributions or withdrawals."
    )
    commission: float = Field(
        default=0.001, ge=0.0, le=MAX_COMMISSION_RATE, description="Rate of notional."
    )
    slippage: float = Field(
        default=0.0005,
        ge=0.0,
        le=MAX_SLIPPAGE_RATE,
        description="Rate added to buy prices and subtracted from sell prices.",
    )
    execution: Literal["next_open", "close"] = Field(
        default="next_open",
        description="next_open: decide at day t's close, fill at t+1's open; "
        "close: fill at day t's close.",
    )
    dividends: StrictBool = Field(
        default=True, description="Credit cash dividends (total return)."
    )
    reinvest_dividends: StrictBool = Field(
        default=True,
        description="Reinvest each dividend in the holding that paid it at the next "
        "fill (whole shares, same costs); false: keep it as cash until the next "
        "rebalance. No effect without dividends.",
    )
    benchmark: str | None = Field(
        default=None,
        description="A benchmark symbol (GET /v1/symbols: benchmarks); shorthand for "
        "benchmarks: [symbol].",
    )
    benchmarks: list[BenchmarkEntry] | None = Field(
        default=None,
        max_length=MAX_BENCHMARKS,
        description=f"Up to {MAX_BENCHMARKS} benchmarks: symbols or allocations.",
    )
    dataset: str | None = Field(
        default=None, description="An imported dataset's name; default: bundled."
    )
    risk_free_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=MAX_RISK_FREE_RATE,
        description="Annual, for Sharpe/Sortino/alpha.",
    )
    universe: Universe | None = Field(
        default=None,
        description="sp500_pit: at each rebalance only stocks that were S&P 500 "
        "members that day can be held (point in time; the bundled dataset only); "
        "all: every stock of the dataset, i.e. today's members back-filled "
        "(survivorship bias). Default: sp500_pit for a whole-universe run on the "
        "bundled data, all with an explicit symbol list (symbols or "
        "filter_criteria.universe) or an imported dataset. sp500_pit with a symbol "
        "list holds each listed stock only while it was a member.",
    )
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="POSTed once the backtest completes or fails, signed like a "
        "webhook with your default (oldest) webhook endpoint's secret (README).",
    )
    notify_email: StrictBool | None = Field(
        default=None,
        description="E-mail me when it completes or fails (default: the account's "
        "notify_email setting). Needs an address on the account and SMTP on the "
        "server (400 otherwise).",
    )

    @field_validator("symbols")
    @classmethod
    def _normalise_symbols(
        cls, value: list[str] | None, info: ValidationInfo
    ) -> list[str] | None:
        if value is None:
            return None
        cleaned = [s.strip().upper() for s in value]
        if any(not s or len(s) > 16 for s in cleaned):
            raise ValueError(
                "symbols must be non-empty strings of at most 16 characters"
            )
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("symbols contains duplicates")
        if info.data.get("allocation") is not None:
            raise ValueError(
                "give either allocation or symbols: the allocation names its symbols"
            )
        if not cleaned:
            raise ValueError(
                "symbols must not be empty; omit it for the whole universe"
            )
        return cleaned

    @field_validator("benchmark")
    @classmethod
    def _normalise_benchmark(cls, value: str | None) -> str | None:
        return value.strip().upper() if value else None

    @field_validator("allocation")
    @classmethod
    def _allocation_alone(
        cls, value: dict[str, float] | None, info: ValidationInfo
    ) -> dict[str, float] | None:
        if value is None:
            return None
        for other in ("strategy_id", "filter_criteria"):
            if info.data.get(other) is not None:
                raise ValueError(f"give either allocation or {other}, not both")
        return value

    @field_validator("cash_flows")
    @classmethod
    def _flows_inside(
        cls, value: CashFlows | None, info: ValidationInfo
    ) -> CashFlows | None:
        start, end = info.data.get("start_date"), info.data.get("end_date")
        if value is None or start is None or end is None:
            return value
        for day in (value.start_date, value.end_date):
            if day is not None and not start <= day <= end:
                raise ValueError(
                    "cash_flows dates must lie inside the backtest's "
                    "start_date..end_date"
                )
        return value

    @field_validator("benchmarks")
    @classmethod
    def _normalise_benchmarks(
        cls, value: list[str | BenchmarkPortfolio] | None, info: ValidationInfo
    ) -> list[str | BenchmarkPortfolio] | None:
        if value is None:
            return None
        if info.data.get("benchmark"):
            raise ValueError(
                "give either benchmark (one symbol) or benchmarks, not both"
            )
        out: list[str | BenchmarkPortfolio] = []
        for entry in value:
            if isinstance(entry, str):
                symbol = entry.strip().upper()
                if not symbol or len(symbol) > 16:
                    raise ValueError("benchmark symbols must be 1 to 16 characters")
                out.append(symbol)
            else:
                out.append(entry)
        labels = [e if isinstance(e, str) else e.name for e in out]
        if len(set(labels)) != len(labels):
            raise ValueError("benchmarks must have distinct symbols and names")
        return out

    # Cross-field rules are field validators so that errors name the field to fix
    # (body.end_date, body.filter_criteria) rather than the whole body. Each runs
    # after the fields declared before it, which ``info.data`` then holds.
    @field_validator("end_date")
    @classmethod
    def _check_dates(cls, end: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start_date")
        if start is not None and start >= end:
            raise ValueError("end_date must be after start_date")
        if end > dt.date.today():
            raise ValueError("end_date must not be in the future")
        if start is not None and end > _add_years(start, MAX_SPAN_YEARS):
            raise ValueError(f"the date range must not exceed {MAX_SPAN_YEARS} years")
        return end

    @field_validator("filter_criteria")
    @classmethod
    def _one_strategy_source(
        cls, value: dict[str, Any] | None, info: ValidationInfo
    ) -> dict[str, Any] | None:
        if value is not None and info.data.get("strategy_id") is not None:
            raise ValueError("give either strategy_id or filter_criteria, not both")
        return value

    @model_validator(mode="after")
    def _resolve_universe(self) -> BacktestRequest:
        """Fill in the default universe, so the stored config says what ran."""
        if self.universe is None:
            self.universe = default_universe(self)
        return self

    def to_config(self) -> BacktestConfig:
        return BacktestConfig(
            start_date=self.start_date,
            end_date=self.end_date,
            initial_capital=self.initial_capital,
            rebalancing=self.rebalancing,
            rebalance_band=self.rebalance_band,
            commission_rate=self.commission,
            slippage_rate=self.slippage,
            execution=self.execution,
            dividends=self.dividends,
            reinvest_dividends=self.reinvest_dividends and self.dividends,
            benchmark=self.benchmark,
            benchmarks=self.benchmark_configs(),
            allocation=tuple(self.allocation.items()) if self.allocation else None,
            cash_flows=None
            if self.cash_flows is None
            else CashFlowPlan(
                amount=self.cash_flows.amount,
                frequency=self.cash_flows.frequency,
                start_date=self.cash_flows.start_date,
                end_date=self.cash_flows.end_date,
            ),
            symbols=tuple(self.symbols) if self.symbols else None,
            strategy_id=self.strategy_id,
            strategy_params=dict(self.strategy_params or {}),
            filter_criteria=self.filter_criteria,
            risk_free_rate=self.risk_free_rate,
            dataset=self.dataset,
            universe=self.universe or default_universe(self),
        )

    def benchmark_configs(self) -> tuple[str | AllocationBenchmark, ...]:
        """The ``benchmarks`` list in the engine's types (empty without it: the
        engine then uses the ``benchmark`` shorthand). The first benchmark also
        fills the single-benchmark fields: metrics alpha/beta/...,
        equity_curve[].benchmark."""
        if self.benchmarks is None:
            return ()
        return tuple(
            e
            if isinstance(e, str)
            else AllocationBenchmark(
                name=e.name,
                allocation=tuple(e.allocation.items()),
                rebalancing=e.rebalancing,
                rebalance_band=e.rebalance_band,
            )
            for e in self.benchmarks
        )


def default_universe(request: BacktestRequest) -> Universe:
    """``sp500_pit`` for a whole-universe run on the bundled data (the honest
    default); ``all`` when the request names its symbols (the list is the user's
    choice, kept as given) or uses an imported dataset (no membership data)."""
    screen_list = (request.filter_criteria or {}).get("universe")
    named = request.symbols or request.allocation or screen_list
    if named or not has_membership(request.dataset):
        return "all"
    return "sp500_pit"


class BacktestCreated(BaseModel):
    task_id: uuid.UUID
    status: Status
    created_at: dt.datetime


class DataCoverage(BaseModel):
    """How much of the S&P 500 the dataset had prices for over the backtest's
    period: the survivorship-bias disclosure of a result (README "Data and its
    limits"). It describes the dataset, whichever universe ran: members without
    prices could never be held. `survivorship_bias`: `low` from 95 % of the index's
    member-days covered, `moderate` from 80 %, `high` below; `unknown` (with
    `reason`) for an imported dataset, which has no membership data."""

    universe: Universe
    index: str | None = Field(description="The index measured against.")
    start_date: dt.date | None = Field(description="First session of the period.")
    end_date: dt.date | None = Field(description="Last session of the period.")
    share: float | None = Field(
        description="Covered share of the index's member-days (0-1)."
    )
    member_days: int | None = Field(
        description="Index member-days in the period (one per member per session)."
    )
    covered_member_days: int | None = Field(
        description="Member-days on which the member has a close in the dataset."
    )
    members: int | None = Field(description="Distinct index members in the period.")
    members_without_prices: int | None = Field(
        description="Members with no close on any of their member-days."
    )
    survivorship_bias: Literal["high", "moderate", "low", "unknown"]
    reason: str | None = None


class BacktestStatus(BaseModel):
    """A job's state; `metrics` appears once it has completed. Every metric is a
    number except `metrics.data_coverage` (a DataCoverage object) and
    `metrics.portfolio_depleted` (true when a withdrawal emptied the portfolio).
    Portfolio metrics: `rebalance_count`, `money_weighted_return` (XIRR, actual/365),
    `total_contributions`, `total_withdrawals`, `final_value`; with cash flows the
    return metrics are time-weighted (README "Portfolios")."""

    task_id: uuid.UUID
    name: str | None = None
    status: Status
    progress: float = Field(ge=0, le=100)
    current_date: dt.date | None = None
    trades_executed: int = Field(
        default=0, description="Fills so far; older name of fills_executed."
    )
    fills_executed: int = Field(
        default=0, description="Fills (executed buys and sells) so far."
    )
    config: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    error: str | None = None
    error_code: ErrorCode | None = Field(
        default=None,
        description="The category of a failure: `timeout` (its time limit), "
        "`worker_lost` (it stopped its worker too often: a dead letter), `internal` "
        "(a bug, logged) or `job` (the request cannot succeed, e.g. no data).",
    )
    metrics: dict[str, bool | float | int | DataCoverage | None] | None = None
    queue_position: int | None = Field(
        default=None,
        ge=1,
        description="While `queued`: about how many jobs start before this one, "
        "plus one (1 = next); null otherwise. An estimate (README, Scheduling).",
    )
    eta_seconds: float | None = Field(
        default=None,
        ge=0,
        description="While `queued`: the estimated wait before it starts "
        "(position × mean run time / running jobs); null otherwise.",
    )


class TradeOut(BaseModel):
    """A lot: a FIFO round trip (the shares of one buy fill until sold); open lots
    have no exit and are marked to market."""

    symbol: str
    entry_date: dt.date
    entry_price: float
    exit_date: dt.date | None = None
    exit_price: float | None = None
    quantity: float
    pnl: float | None = None
    pnl_percent: float | None = None
    is_open: bool = False


class EquityPoint(BaseModel):
    date: dt.date
    equity: float
    benchmark: float | None = None


class DrawdownPoint(BaseModel):
    date: dt.date
    drawdown: float


class BenchmarkSeries(BaseModel):
    """One benchmark: its curve (one value per `equity_curve` point, same dates) and
    the run's statistics relative to it. `symbol` for a one-symbol benchmark,
    `allocation`/`rebalancing` for an allocation one. `metrics`: total_return, cagr,
    alpha, beta, correlation, tracking_error, information_ratio, up_capture,
    down_capture (None where undefined)."""

    name: str
    symbol: str | None = None
    allocation: dict[str, float] | None = None
    rebalancing: str | None = None
    equity: list[float | None]
    metrics: dict[str, float | None]


class CashFlowPoint(BaseModel):
    """An external flow applied on `date`: > 0 contribution, < 0 withdrawal (the
    amount actually withdrawn: less than asked when the portfolio ran out)."""

    date: dt.date
    amount: float


class ChartData(BaseModel):
    """`equity_curve[].benchmark` and `benchmark_symbol` describe the first
    benchmark (kept for older clients); `benchmarks` has every one."""

    equity_curve: list[EquityPoint]
    drawdown_series: list[DrawdownPoint]
    monthly_returns: dict[str, float]
    benchmark_symbol: str | None = None
    benchmarks: list[BenchmarkSeries] = Field(default_factory=list)
    flows: list[CashFlowPoint] = Field(default_factory=list)
    depleted_on: dt.date | None = Field(
        default=None, description="The day a withdrawal emptied the portfolio."
    )


class HistoryItem(BaseModel):
    task_id: uuid.UUID
    name: str | None = None
    status: Status
    created_at: dt.datetime
    completed_at: dt.datetime | None = None
    total_return: float | None = None
    sharpe_ratio: float | None = None


class CancelResponse(BaseModel):
    task_id: uuid.UUID
    status: Status
    message: str
