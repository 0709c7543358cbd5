"""What a backtest is asked to do: the engine's own, framework-free input type.

The API's ``BacktestRequest`` schema validates the HTTP body and converts it to this;
the CLI builds it from flags. Units are in the names: rates are fractions of traded
notional (0.001 = 10 bp), capital is in the dataset's currency.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Rebalancing = Literal["daily", "weekly", "monthly", "quarterly", "never"]
FlowFrequency = Literal["monthly", "quarterly", "yearly"]
Execution = Literal["next_open", "close"]
Universe = Literal["sp500_pit", "all"]

REBALANCING_CHOICES: tuple[str, ...] = (
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "never",
)
FLOW_FREQUENCIES: tuple[str, ...] = ("monthly", "quarterly", "yearly")
EXECUTION_CHOICES: tuple[str, ...] = ("next_open", "close")
UNIVERSE_CHOICES: tuple[str, ...] = ("sp500_pit", "all")

MIN_CAPITAL = 1_000.0
MAX_CAPITAL = 10_000_000.0
MAX_COMMISSION_RATE = 0.1
MAX_SLIPPAGE_RATE = 0.05
# A backtest spans at most this many years (end <= start + 10 years); the request
# schema enforces it; the one place this number is written.
MAX_SPAN_YEARS = 10
# At most this many symbols in one request's universe.
MAX_SYMBOLS = 1000
# Annual risk-free rate bound (Sharpe/Sortino/alpha).
MAX_RISK_FREE_RATE = 0.2
# At most this many benchmarks per backtest (symbols or allocations).
MAX_BENCHMARKS = 3
# Allocation weights may add up to 1 + this (float residue of e.g. 0.1 + 0.2 + 0.7).
WEIGHT_SUM_TOLERANCE = 1e-9


def request_limits() -> dict[str, float | int]:
    """The bounds of a backtest request (``app.backtests.schemas`` enforces them),
    as GET /v1/symbols publishes them for clients such as the web app."""
    return {
        "max_span_years": MAX_SPAN_YEARS,
        "max_symbols": MAX_SYMBOLS,
        "min_capital": MIN_CAPITAL,
        "max_capital": MAX_CAPITAL,
        "max_commission": MAX_COMMISSION_RATE,
        "max_slippage": MAX_SLIPPAGE_RATE,
        "max_risk_free_rate": MAX_RISK_FREE_RATE,
        "max_benchmarks": MAX_BENCHMARKS,
    }


@dataclass(frozen=True)
class CashFlowPlan:
    """A recurring external flow: ``amount`` per period (> 0 contribution, < 0
    withdrawal) on the first session of each ``frequency`` period after the run's
    first session, restricted to ``start_date``..``end_date`` when given."""

    amount: float
    frequency: FlowFrequency = "monthly"
    start_date: dt.date | None = None
    end_date: dt.date | None = None


@dataclass(frozen=True)
class AllocationBenchmark:
    """A benchmark that is a fixed allocation (symbol, weight pairs), simulated as a
    backtest of that allocation with the run's costs and conventions."""

    name: str
    allocation: tuple[tuple[str, float], ...]
    rebalancing: Rebalancing = "monthly"
    rebalance_band: float | None = None


@dataclass(frozen=True)
class BacktestConfig:
    """A fully specified backtest.

    ``strategy_id`` selects a predefined strategy (``strategy_params`` override its
    defaults); ``filter_criteria`` (the screening language, a plain mapping validated by
    :mod:`app.engine.strategies.screen`) describes a custom one. With neither, the
    equal-weight strategy runs. ``symbols`` is the universe (default: every stock of the
    dataset). ``universe`` ``"sp500_pit"`` further limits each decision to the symbols
    that were S&P 500 members on that day (the caller passes the membership mask to
    :func:`~app.engine.backtest.run_backtest`); ``"all"`` applies no membership.
    """

    start_date: dt.date
    end_date: dt.date
    initial_capital: float = 100_000.0
    rebalancing: Rebalancing = "monthly"
    commission_rate: float = 0.001
    slippage_rate: float = 0.0005
    execution: Execution = "next_open"
    dividends: bool = True
    benchmark: str | None = None
    #: fixed target weights ((symbol, weight), ...): an allocation portfolio
    allocation: tuple[tuple[str, float], ...] | None = None
    rebalance_band: float | None = None
    cash_flows: CashFlowPlan | None = None
    reinvest_dividends: bool = True
    #: the benchmarks to simulate (symbols or allocations); empty: ``benchmark``
    benchmarks: tuple[str | AllocationBenchmark, ...] = ()
    symbols: tuple[str, ...] | None = None
    strategy_id: int | None = None
    strategy_params: Mapping[str, Any] = field(default_factory=dict)
    filter_criteria: Mapping[str, Any] | None = None
    risk_free_rate: float = 0.0  # annual; used by Sharpe/Sortino/alpha
    dataset: str | None = None  # an imported dataset's name; None = the bundled one
    universe: Universe = "all"
