"""One backtest end to end: validate, select, simulate, match trades, measure.

``run_backtest(config, data)`` is the engine's single entry point; the CLI and the
Celery task both call it. Conventions specific to this layer:

* Warm-up: strategies may read history **before** ``start_date`` (a 12-month momentum
  signal needs a year of prices on its first day), never anything after the decision
  day. The equity curve starts at ``initial_capital`` on the first session on or after
  ``start_date`` and ends on the last session on or before ``end_date``.
* Universe: ``filter_criteria.universe``, else ``symbols``, else every stock of the
  dataset (ETFs are benchmarks unless named explicitly). Giving both is an error.
  With ``universe="sp500_pit"`` a symbol is eligible at a decision row only if the
  membership mask (``membership``, ``(n_days, n_symbols)`` aligned to ``data``) says
  it was an index member that day; holdings that leave the index get weight 0 and
  are sold at the next rebalance (buy-and-hold never rebalances, so it keeps them).
* Benchmark: buy-and-hold of the benchmark symbol with the same initial capital,
  fractional shares and no costs, on ``adj_close`` (total return) when ``dividends`` is
  on and on ``close`` otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine import jit
from app.engine import metrics as metrics_mod
from app.engine.config import (
    EXECUTION_CHOICES,
    MAX_CAPITAL,
    MAX_COMMISSION_RATE,
    MAX_SLIPPAGE_RATE,
    MIN_CAPITAL,
    REBALANCING_CHOICES,
    UNIVERSE_CHOICES,
    BacktestConfig,
)
from app.engine.data import MarketData
from app.engine.errors import CancelledError, InvalidInputError, NumericLimitError
from app.engine.schedule import decision_rows
from app.engine.simulator import Costs, Fills, Simulation, simulate
from app.engine.strategies import Strategy, parse_filter_criteria, resolve_strategy
from app.engine.trades import Trades, match_fifo

FloatArray = npt.NDArray[np.float64]
BoolMatrix = npt.NDArray[np.bool_]
ProgressCallback = Callable[[float, dt.date, int], None]
CancelCheck = Callable[[], bool]


@dataclass(frozen=True)
class BacktestResult:
    """Everything a backtest produced. Daily arrays have shape ``(n_days,)``."""

    config: BacktestConfig
    dates: npt.NDArray[np.datetime64]
    symbols: tuple[str, ...]
    equity: FloatArray
    cash: FloatArray
    benchmark_equity: FloatArray | None
    drawdown: FloatArray
    simulation: Simulation
    trades: Trades
    metrics: dict[str, Any]
    monthly_returns: dict[str, float]

    @property
    def fills(self) -> Fills:
        return self.simulation.fills

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1])

    def trade_records(self) -> list[dict[str, Any]]:
        """Trades as plain dicts (``datetime.date`` dates, None for open trades' exit
        fields)."""
        t, days = self.trades, self.dates.astype("datetime64[D]").tolist()
        return [
            {
                "symbol": self.symbols[t.col[i]],
                "entry_date": days[t.entry_row[i]],
                "entry_price": float(t.entry_price[i]),
                "exit_date": None if t.is_open[i] else days[t.exit_row[i]],
                "exit_price": None if t.is_open[i] else float(t.exit_price[i]),
                "quantity": float(t.quantity[i]),
                "pnl": float(t.pnl[i]),
                "pnl_percent": float(t.pnl_percent[i]),
                "is_open": bool(t.is_open[i]),
            }
            for i in range(len(t))
        ]


def validate_config(config: BacktestConfig, data: MarketData) -> tuple[int, int]:
    """Check every field against the dataset; return (start_row, end_row) inclusive."""
    if config.start_date >= config.end_date:
        raise InvalidInputError(
            "start_date must be before end_date", field="start_date"
        )
    if not MIN_CAPITAL <= config.initial_capital <= MAX_CAPITAL:
        raise InvalidInputError(
            f"initial_capital must be between {MIN_CAPITAL:,.0f} "
            f"and {MAX_CAPITAL:,.0f}",
            field="initial_capital",
        )
    _check_rate(config.commission_rate, MAX_COMMISSION_RATE, "commission_rate")
    _check_rate(config.slippage_rate, MAX_SLIPPAGE_RATE, "slippage_rate")
    for name, value, allowed in (
        ("rebalancing", config.rebalancing, REBALANCING_CHOICES),
        ("execution", config.execution, EXECUTION_CHOICES),
        ("universe", config.universe, UNIVERSE_CHOICES),
    ):
        if value not in allowed:
            raise InvalidInputError(
                f"{name} must be one of {', '.join(allowed)}", field=name
            )
    first, last = data.dates[0], data.dates[-1]
    start_row = data.row_of(np.datetime64(config.start_date, "D"))
    end_row = data.row_of(np.datetime64(config.end_date, "D"), side="right") - 1
    if start_row >= data.n_days or end_row < 0 or start_row >= end_row:
        raise InvalidInputError(
            f"dataset {data.name!r} covers {first} to {last}; choose a range inside it "
            "with at least two trading days",
            field="start_date",
        )
    if config.benchmark is not None and config.benchmark not in data.benchmarks:
        raise InvalidInputError(
            f"benchmark must be one of: {', '.join(data.benchmarks)}", field="benchmark"
        )
    return start_row, end_row


def _check_rate(value: float, maximum: float, name: str) -> None:
    if not 0.0 <= value <= maximum:
        raise InvalidInputError(f"{name} must be between 0 and {maximum}", field=name)


def _universe(config: BacktestConfig, data: MarketData) -> tuple[str, ...]:
    screen_universe = None
    if config.filter_criteria is not None:
        screen_universe = parse_filter_criteria(config.filter_criteria).universe
    if screen_universe and config.symbols:
        raise InvalidInputError(
            "give the universe either as symbols or as filter_criteria.universe, "
            "not both",
            field="symbols",
        )
    chosen = tuple(screen_universe or config.symbols or data.stocks)
    if not chosen:
        raise InvalidInputError(
            "the universe is empty; name at least one symbol", field="symbols"
        )
    if len(set(chosen)) != len(chosen):
        raise InvalidInputError("symbols contains duplicates", field="symbols")
    data.columns(chosen)  # raises listing unknown symbols
    return chosen


def _membership(
    config: BacktestConfig, data: MarketData, membership: BoolMatrix | None
) -> BoolMatrix | None:
    """The membership mask the run trades through (None for ``universe="all"``)."""
    if config.universe == "all":
        return None
    if membership is None:
        raise InvalidInputError(
            f"universe {config.universe!r} needs index membership data, which is not "
            f"available for dataset {data.name!r}; use universe 'all'",
            field="universe",
        )
    if membership.shape != (data.n_days, data.n_symbols):
        raise InvalidInputError(
            f"membership has shape {membership.shape}, expected "
            f"{(data.n_days, data.n_symbols)} (one row per session, one column per "
            "symbol of the dataset)",
            field="universe",
        )
    return membership


def check_config(
    config: BacktestConfig, data: MarketData, *, membership: BoolMatrix | None = None
) -> None:
    """Every check :func:`run_backtest` makes before simulating, without simulating:
    lets a service reject a bad request at once instead of failing a job later."""
    start_row, end_row = validate_config(config, data)
    resolve_strategy(config.strategy_id, config.strategy_params, config.filter_criteria)
    _universe(config, data)
    _membership(config, data, membership)
    _benchmark(config, data, start_row, end_row)


def run_backtest(
    config: BacktestConfig,
    data: MarketData,
    *,
    membership: BoolMatrix | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> BacktestResult:
    """Run ``config`` on ``data``.

    ``membership``: ``(n_days, n_symbols)`` bool aligned to ``data``, True where a
    symbol was an index member on a session; required by ``universe="sp500_pit"``,
    ignored by ``"all"`` (see :func:`app.engine.universe.membership_mask`).
    ``on_progress(fraction, current_date, fills_so_far)`` is called between chunks of
    the simulation (about 50 times per run at most); ``should_cancel()`` is checked at
    the same points, and also between the setup steps (after preparing the window,
    after the strategy's factors and target weights, before the metrics); a True
    answer raises :class:`CancelledError`.
    """
    start_row, end_row = validate_config(config, data)
    strategy = resolve_strategy(
        config.strategy_id, config.strategy_params, config.filter_criteria
    )
    universe = _universe(config, data)
    members = _membership(config, data, membership)
    lo = max(0, start_row - strategy.warmup_rows - 1)
    data.precompute()  # once per dataset object; windows then slice the cached arrays
    window = data.window(lo, end_row + 1).subset(universe)
    _checkpoint(should_cancel, "data")
    sim = _simulate(
        config,
        data,
        window,
        strategy,
        offset=lo,
        members=members,
        on_progress=on_progress,
        should_cancel=should_cancel,
    )
    _checkpoint(should_cancel, "metrics")
    return _assemble(config, data, window, sim, start_row=start_row, end_row=end_row)


def _checkpoint(should_cancel: CancelCheck | None, phase: str) -> None:
    """A cancel check between setup steps (each well under a second), so a cancel
    takes effect in every phase of a run, not only during the simulation."""
    if should_cancel is not None and should_cancel():
        raise CancelledError(f"backtest cancelled before the {phase} step")


def _simulate(
    config: BacktestConfig,
    data: MarketData,
    window: MarketData,
    strategy: Strategy,
    *,
    offset: int,
    members: BoolMatrix | None,
    on_progress: ProgressCallback | None,
    should_cancel: CancelCheck | None,
) -> Simulation:
    """Simulate on ``window`` (rows ``offset..`` of ``data``, universe columns);
    ``members`` is the membership mask of all of ``data`` (None: no restriction)."""
    s0 = data.row_of(np.datetime64(config.start_date, "D")) - offset
    s1 = window.n_days - 1
    decisions = decision_rows(
        window.dates,
        start_row=s0,
        end_row=s1,
        rebalancing=config.rebalancing,
        rebalances=strategy.rebalances,
    )
    cols = data.columns(window.symbols)
    # The one place membership enters: the eligible mask of each decision row, which
    # every pipeline intersects with "has a close" before selecting.
    if members is None:
        weights = strategy.target_weights(window, decisions)
    else:
        eligible = members[offset + decisions][:, cols]
        weights = strategy.target_weights(window, decisions, eligible)
    _checkpoint(should_cancel, "simulation")
    # A symbol whose data stops before the dataset's end is cashed out at its last
    # close.
    last = data.last_row[cols]
    delist = np.where(last < data.n_days - 1, last - offset, -1)

    def progress(fraction: float, local_row: int, n_fills: int) -> None:
        if on_progress is not None:
            day = window.dates[s0 + local_row].astype("datetime64[D]").item()
            on_progress(fraction, day, n_fills)

    # Only next_open fills read the open; a lazy column subset then never gathers it.
    open_ = window.open if config.execution == "next_open" else window.close
    try:
        return simulate(
            open_=open_,
            close=window.close,
            dividends=window.dividends_per_share if config.dividends else None,
            decisions=decisions,
            weights=weights,
            start_row=s0,
            end_row=s1,
            execution=config.execution,
            initial_capital=config.initial_capital,
            costs=Costs(config.commission_rate, config.slippage_rate),
            delist_rows=delist,
            valuation_close=window.valuation_close,
            on_progress=progress,
            should_cancel=should_cancel,
        )
    except NumericLimitError as exc:
        if exc.row is None or exc.col is None:
            raise
        day = window.dates[exc.row].astype("datetime64[D]")
        raise NumericLimitError(
            f"{window.symbols[exc.col]} on {day}: {exc.message}",
            row=exc.row,
            col=exc.col,
        ) from exc


def _benchmark(
    config: BacktestConfig, data: MarketData, start_row: int, end_row: int
) -> FloatArray | None:
    if config.benchmark is None:
        return None
    col = data.column_of[config.benchmark]
    series = (data.adj_close if config.dividends else data.close)[
        start_row : end_row + 1, col
    ]
    if np.isnan(series[0]):
        raise InvalidInputError(
            f"benchmark {config.benchmark} has no price on the first day of the range",
            field="benchmark",
        )
    series = np.where(np.isnan(series), np.nan, series)
    filled = np.maximum.accumulate(
        np.where(np.isnan(series), 0, np.arange(len(series)))
    )
    out: FloatArray = config.initial_capital * series[filled] / series[0]
    return out


def _assemble(
    config: BacktestConfig,
    data: MarketData,
    window: MarketData,
    sim: Simulation,
    *,
    start_row: int,
    end_row: int,
) -> BacktestResult:
    dates = data.dates[start_row : end_row + 1]
    s0 = window.n_days - len(dates)
    cum_div = None
    if config.dividends:  # universe columns only: (n_days, n_symbols) of the run
        cum_div = jit.cumsum_rows(window.dividends_per_share[s0:])
    trades = match_fifo(
        sim.fills,
        n_symbols=window.n_symbols,
        last_mark=sim.mark[-1],
        cum_dividends=cum_div,
    )
    bench = _benchmark(config, data, start_row, end_row)
    closed = ~trades.is_open
    notional = float(np.abs(sim.fills.quantity * sim.fills.price).sum())
    metrics = metrics_mod.compute_metrics(
        dates=dates,
        equity=sim.equity,
        invested_value=sim.invested,
        closed_trade_pnl=trades.pnl[closed],
        closed_trade_returns=trades.pnl_percent[closed],
        total_trades=len(trades),
        traded_notional=notional,
        benchmark_equity=bench,
        risk_free_rate=config.risk_free_rate,
    )
    return BacktestResult(
        config=config,
        dates=dates,
        symbols=window.symbols,
        equity=sim.equity,
        cash=sim.cash,
        benchmark_equity=bench,
        drawdown=metrics_mod.drawdown_series(sim.equity),
        simulation=sim,
        trades=trades,
        metrics=metrics,
        monthly_returns=metrics_mod.monthly_returns(dates, sim.equity),
    )
