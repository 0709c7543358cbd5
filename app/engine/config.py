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

Rebalancing = Literal["daily", "weekly", "monthly", "quarterly"]
Execution = Literal["next_open", "close"]
Universe = Literal["sp500_pit", "all"]

REBALANCING_CHOICES: tuple[str, ...] = ("daily", "weekly", "monthly", "quarterly")
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
    }


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
    symbols: tuple[str, ...] | None = None
    strategy_id: int | None = None
    strategy_params: Mapping[str, Any] = field(default_factory=dict)
    filter_criteria: Mapping[str, Any] | None = None
    risk_free_rate: float = 0.0  # annual; used by Sharpe/Sortino/alpha
    dataset: str | None = None  # an imported dataset's name; None = the bundled one
    universe: Universe = "all"
