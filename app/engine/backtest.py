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
  fractional shares and no costs, on ``adj_close`` (total return: dividends
  reinvested on the ex-date, the convention ``reinvest_dividends`` gives the
  portfolio; kept with ``reinvest_dividends=false`` too, as before it existed) when
  ``dividends`` is on and on ``close`` otherwise; the run's cash flows buy or sell
  units at the previous close
  (:func:`app.engine.portfolio.symbol_benchmark`). An allocation benchmark is a
  backtest of that allocation with the run's costs, execution, dividends and flows.
  ``benchmarks`` holds up to three; the first also fills the single-benchmark
  fields (``benchmark_equity``, metrics ``alpha``, ``beta``, ...).
* Portfolios (:mod:`app.engine.portfolio`): ``allocation`` (constant weights),
  ``rebalancing="never"`` (applied once), ``rebalance_band``, ``cash_flows`` and
  ``reinvest_dividends`` (see :func:`app.engine.simulator._simulate_portfolio`).
  With flows, return metrics, the drawdown series and monthly returns are
  time-weighted (:func:`app.engine.portfolio.twr_index`); ``final_value`` is the
  money in the account at the end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from app.engine import metrics as metrics_mod
from app.engine import portfolio as pf
from app.engine.config import (
    EXECUTION_CHOICES,
    FLOW_FREQUENCIES,
    MAX_BENCHMARKS,
    MAX_CAPITAL,
    MAX_COMMISSION_RATE,
    MAX_SLIPPAGE_RATE,
    MIN_CAPITAL,
    REBALANCING_CHOICES,
    UNIVERSE_CHOICES,
    WEIGHT_SUM_TOLERANCE,
    AllocationBenchmark,
    BacktestConfig,
)
from app.engine.data import MarketData
from app.engine.errors import CancelledError, InvalidInputError, NumericLimitError
from app.engine.schedule import decision_rows
from app.engine.strategies import Strategy, parse_filter_criteria, resolve_strategy

# The simulator (numba kernels) and the trade ledger are imported where a run needs
# them, not here: an API process imports this module only for ``check_config``, and
# validating a request must not load the compiled kernels (issue 18's lean API).
if TYPE_CHECKING:
    from app.engine.simulator import Fills, Portfolio, Simulation
    from app.engine.trades import Trades

FloatArray = npt.NDArray[np.float64]
BoolMatrix = npt.NDArray[np.bool_]
ProgressCallback = Callable[[float, dt.date, int], None]
CancelCheck = Callable[[], bool]
#: ``on_phase(name)`` as a run enters each step: "factors", "simulation", "ledger",
#: "metrics" (the caller's progress model weighs them, :mod:`app.backtests.cost`).
PhaseCallback = Callable[[str], None]


@dataclass(frozen=True)
class BenchmarkRun:
    """One simulated benchmark: ``equity`` (n_days,) in currency (with the run's
    flows), ``metrics`` the run's statistics relative to it (time-weighted)."""

    name: str
    symbol: str | None
    allocation: dict[str, float] | None
    rebalancing: str | None
    equity: FloatArray
    metrics: dict[str, float | None]


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
    #: external flows per day (zeros without cash_flows)
    flows: FloatArray | None = None
    benchmark_runs: tuple[BenchmarkRun, ...] = ()

    @property
    def depleted_row(self) -> int:
        return self.simulation.depleted_row

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
    _validate_portfolio(config, data)
    return start_row, end_row


def _check_allocation(
    allocation: tuple[tuple[str, float], ...], data: MarketData, field: str
) -> None:
    if not allocation:
        raise InvalidInputError("allocation must name at least one symbol", field=field)
    for symbol, weight in allocation:
        if symbol not in data.column_of:
            raise InvalidInputError(
                f"{symbol} is not a symbol of dataset {data.name!r} "
                "(GET /v1/symbols lists them, ETFs included)",
                field=field,
            )
        if not 0.0 < weight <= 1.0:
            raise InvalidInputError(
                f"the weight of {symbol} must be in (0, 1]", field=field
            )
    if sum(w for _, w in allocation) > 1.0 + WEIGHT_SUM_TOLERANCE:
        raise InvalidInputError("weights must add up to at most 1", field=field)


def _validate_portfolio(config: BacktestConfig, data: MarketData) -> None:  # noqa: PLR0912
    """The portfolio fields: allocation, band, flows, benchmarks."""
    if config.allocation is not None:
        if config.strategy_id is not None or config.filter_criteria is not None:
            raise InvalidInputError(
                "give either allocation or a strategy (strategy_id, "
                "filter_criteria), not both",
                field="allocation",
            )
        if config.symbols is not None:
            raise InvalidInputError(
                "give either allocation or symbols, not both", field="symbols"
            )
        _check_allocation(config.allocation, data, "allocation")
    band = config.rebalance_band
    if band is not None and not 0.0 < band <= 1.0:
        raise InvalidInputError(
            "rebalance_band must be in (0, 1]", field="rebalance_band"
        )
    flows = config.cash_flows
    if flows is not None:
        if flows.frequency not in FLOW_FREQUENCIES:
            raise InvalidInputError(
                f"frequency must be one of {', '.join(FLOW_FREQUENCIES)}",
                field="cash_flows.frequency",
            )
        if not (flows.amount != 0.0 and abs(flows.amount) <= MAX_CAPITAL):
            raise InvalidInputError(
                f"amount must be non-zero and at most {MAX_CAPITAL:,.0f} in size",
                field="cash_flows.amount",
            )
    if len(config.benchmarks) > MAX_BENCHMARKS:
        raise InvalidInputError(
            f"at most {MAX_BENCHMARKS} benchmarks", field="benchmarks"
        )
    for i, entry in enumerate(config.benchmarks):
        if isinstance(entry, str):
            if entry not in data.column_of:
                raise InvalidInputError(
                    f"{entry} is not a symbol of dataset {data.name!r}",
                    field=f"benchmarks[{i}]",
                )
        else:
            _check_allocation(entry.allocation, data, f"benchmarks[{i}].allocation")
            if entry.rebalancing not in REBALANCING_CHOICES:
                raise InvalidInputError(
                    f"rebalancing must be one of {', '.join(REBALANCING_CHOICES)}",
                    field=f"benchmarks[{i}].rebalancing",
                )


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
    if config.allocation is not None:
        return tuple(symbol for symbol, _ in config.allocation)
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
    _strategy(config)
    _universe(config, data)
    _membership(config, data, membership)
    for entry in _benchmark_entries(config):
        if isinstance(entry, str):
            _symbol_series(config, data, entry, start_row, end_row, "benchmarks")


def _strategy(config: BacktestConfig) -> Strategy:
    """The configured strategy: the allocation's constant weights, or a predefined
    strategy or screen; ``rebalancing="never"`` applies the first weights only."""
    never = config.rebalancing == "never"
    if config.allocation is not None:
        return pf.AllocationStrategy(
            weights=tuple(w for _, w in config.allocation), rebalances=not never
        )
    strategy = resolve_strategy(
        config.strategy_id, config.strategy_params, config.filter_criteria
    )
    if never and strategy.rebalances:
        return _Once(strategy)
    return strategy


@dataclass(frozen=True)
class _Once:
    """A strategy whose weights are applied once (``rebalancing="never"``)."""

    inner: Strategy
    rebalances: bool = False

    @property
    def warmup_rows(self) -> int:
        return self.inner.warmup_rows

    def target_weights(
        self,
        data: MarketData,
        rows: npt.NDArray[np.int64],
        eligible: BoolMatrix | None = None,
    ) -> FloatArray:
        return self.inner.target_weights(data, rows, eligible)


def _benchmark_entries(config: BacktestConfig) -> tuple[str | AllocationBenchmark, ...]:
    """``benchmarks``, or the one-symbol ``benchmark`` shorthand."""
    if config.benchmarks:
        return config.benchmarks
    return (config.benchmark,) if config.benchmark else ()


def run_backtest(
    config: BacktestConfig,
    data: MarketData,
    *,
    membership: BoolMatrix | None = None,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    on_phase: PhaseCallback | None = None,
) -> BacktestResult:
    """Run ``config`` on ``data``.

    ``membership``: ``(n_days, n_symbols)`` bool aligned to ``data``, True where a
    symbol was an index member on a session; required by ``universe="sp500_pit"``,
    ignored by ``"all"`` (see :func:`app.engine.universe.membership_mask`).
    ``on_progress(fraction, current_date, fills_so_far)`` is called between chunks of
    the simulation (about 50 times per run at most); ``should_cancel()`` is checked at
    the same points, and also between the setup steps (after preparing the window,
    after the strategy's factors and target weights, before the metrics); a True
    answer raises :class:`CancelledError`. ``on_phase(name)`` is called as each step
    starts (:data:`PhaseCallback`); the simulation's fractions belong to "simulation".
    """
    start_row, end_row = validate_config(config, data)
    strategy = _strategy(config)
    universe = _universe(config, data)
    members = _membership(config, data, membership)
    lo = max(0, start_row - strategy.warmup_rows - 1)
    data.precompute()  # once per dataset object; windows then slice the cached arrays
    window = data.window(lo, end_row + 1).subset(universe)
    _checkpoint(should_cancel, "data")
    _enter(on_phase, "factors")
    sim = _simulate(
        config,
        data,
        window,
        strategy,
        offset=lo,
        members=members,
        on_progress=on_progress,
        should_cancel=should_cancel,
        on_phase=on_phase,
    )
    _checkpoint(should_cancel, "metrics")
    _enter(on_phase, "ledger")
    return _assemble(
        config, data, window, sim, start_row=start_row, end_row=end_row,
        on_phase=on_phase,
    )  # fmt: skip


def _enter(on_phase: PhaseCallback | None, phase: str) -> None:
    if on_phase is not None:
        on_phase(phase)


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
    on_phase: PhaseCallback | None = None,
) -> Simulation:
    """Simulate on ``window`` (rows ``offset..`` of ``data``, universe columns);
    ``members`` is the membership mask of all of ``data`` (None: no restriction)."""
    from app.engine.simulator import Costs, simulate  # noqa: PLC0415 - see imports

    s0 = data.row_of(np.datetime64(config.start_date, "D")) - offset
    s1 = window.n_days - 1
    decisions = decision_rows(
        window.dates,
        start_row=s0,
        end_row=s1,
        rebalancing=config.rebalancing,
        rebalances=strategy.rebalances and config.rebalancing != "never",
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
    _enter(on_phase, "simulation")
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
    portfolio = _portfolio(config, window, s0, s1)
    events = None
    if config.dividends and portfolio.active:
        from app.engine import jit_portfolio  # noqa: PLC0415 - see imports

        # the run's dividends from the dataset's list of them (no matrix scan)
        colmap = np.full(data.n_symbols, -1, dtype=np.int64)
        colmap[cols] = np.arange(len(cols))
        events = jit_portfolio.select_rows(
            *data.dividend_entries, offset + s0, offset + s1, colmap
        )
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
            portfolio=portfolio,
            dividend_events=events,
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


def _portfolio(
    config: BacktestConfig, window: MarketData, s0: int, s1: int
) -> Portfolio:
    from app.engine.simulator import Portfolio  # noqa: PLC0415 - see imports

    plan = config.cash_flows
    rows = None
    if plan is not None:
        rows = pf.flow_rows(window.dates, s0, s1, plan)
    # With daily rebalancing every fill is a rebalance, which spends the dividend
    # cash anyway: reinvesting adds nothing, so the plain event loop runs.
    reinvest = config.dividends and config.reinvest_dividends
    return Portfolio(
        flow_rows=rows,
        flow_amount=0.0 if plan is None else plan.amount,
        reinvest=reinvest and config.rebalancing != "daily",
        band=config.rebalance_band,
    )


def _symbol_series(  # noqa: PLR0917
    config: BacktestConfig,
    data: MarketData,
    symbol: str,
    start_row: int,
    end_row: int,
    field: str,
    flows: FloatArray | None = None,
) -> FloatArray:
    """A one-symbol benchmark's value series (module docstring)."""
    col = data.column_of[symbol]
    price = (data.adj_close if config.dividends else data.close)[
        start_row : end_row + 1, col
    ]
    if np.isnan(price[0]):
        raise InvalidInputError(
            f"benchmark {symbol} has no price on the first day of the range",
            field=field,
        )
    filled = np.maximum.accumulate(np.where(np.isnan(price), 0, np.arange(len(price))))
    price = price[filled]
    if flows is None:
        out: FloatArray = config.initial_capital * price / price[0]
        return out
    return pf.symbol_benchmark(price, config.initial_capital, flows)


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
    on_phase: PhaseCallback | None = None,
) -> BacktestResult:
    from app.engine.trades import match_fifo  # noqa: PLC0415 - see imports

    dates = data.dates[start_row : end_row + 1]
    s0 = window.n_days - len(dates)
    trades = match_fifo(
        sim.fills,
        n_symbols=window.n_symbols,
        last_mark=sim.mark[-1],
        cum_dividends=None,
        # universe columns only, (n_days, n_symbols) of the run; the ledger sums them
        # at the rows it needs instead of building the cumulative matrix (from their
        # nonzero entries when the portfolio loop listed them: the same sums)
        dividends=window.dividends_per_share[s0:]
        if config.dividends and sim.dividend_events is None
        else None,
        dividend_events=sim.dividend_events if config.dividends else None,
    )
    _enter(on_phase, "metrics")
    flows = sim.flows if sim.flows is not None else np.zeros(len(dates))
    has_flows = bool(flows.any())
    runs = _benchmark_runs(config, data, start_row, end_row, sim, flows)
    bench = runs[0].equity if runs else None
    curve, invested, bench_curve = time_weighted_curves(
        sim.equity, sim.invested, flows, bench
    )
    closed = ~trades.is_open
    notional = float(np.abs(sim.fills.quantity * sim.fills.price).sum())
    metrics = metrics_mod.compute_metrics(
        dates=dates,
        equity=curve,
        invested_value=invested,
        closed_trade_pnl=trades.pnl[closed],
        closed_trade_returns=trades.pnl_percent[closed],
        total_trades=len(trades),
        traded_notional=notional,
        benchmark_equity=bench_curve,
        risk_free_rate=config.risk_free_rate,
    )
    if has_flows:
        metrics["final_equity"] = float(sim.equity[-1])
        metrics["turnover"] = metrics_mod.turnover(
            notional, sim.equity, int((dates[-1] - dates[0]) // np.timedelta64(1, "D"))
        )
    metrics.update(
        portfolio_metrics(
            dates,
            config.initial_capital,
            flows,
            sim.equity,
            rebalance_count=sim.rebalance_count,
            depleted=sim.depleted_row >= 0,
        )
    )
    return BacktestResult(
        config=config,
        dates=dates,
        symbols=window.symbols,
        equity=sim.equity,
        cash=sim.cash,
        benchmark_equity=bench,
        drawdown=metrics_mod.drawdown_series(curve),
        simulation=sim,
        trades=trades,
        metrics=metrics,
        monthly_returns=metrics_mod.monthly_returns(dates, curve),
        flows=flows,
        benchmark_runs=runs,
    )


def time_weighted_curves(
    equity: FloatArray,
    invested: FloatArray,
    flows: FloatArray,
    benchmark: FloatArray | None,
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """The curves a run's metrics are computed on: ``(equity, invested,
    benchmark)`` themselves without flows; with flows, their time-weighted versions
    (:func:`app.engine.portfolio.twr_index`; invested keeps its share of the
    equity, 0 once the portfolio is empty), which stay > 0 when a withdrawal
    empties the portfolio."""
    if not flows.any():
        return equity, invested, benchmark
    curve = pf.twr_index(equity, flows)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(equity > 0.0, invested / equity, 0.0)
    bench = None if benchmark is None else pf.twr_index(benchmark, flows)
    return curve, curve * share, bench


def portfolio_metrics(
    dates: npt.NDArray[np.datetime64],
    initial_capital: float,
    flows: FloatArray,
    equity: FloatArray,
    *,
    rebalance_count: int,
    depleted: bool,
) -> dict[str, Any]:
    """The portfolio keys of a run's metrics: ``rebalance_count``,
    ``money_weighted_return`` (XIRR, :func:`app.engine.portfolio.xirr`),
    ``total_contributions``, ``total_withdrawals`` (positive amounts),
    ``final_value`` (money in the account on the last session) and
    ``portfolio_depleted``."""
    final_value = float(equity[-1])
    return {
        "rebalance_count": int(rebalance_count),
        "money_weighted_return": pf.money_weighted_return(
            dates, initial_capital, flows, final_value
        ),
        "total_contributions": float(flows[flows > 0].sum()),
        "total_withdrawals": float(-flows[flows < 0].sum()),
        "final_value": final_value,
        "portfolio_depleted": bool(depleted),
    }


def _benchmark_runs(  # noqa: PLR0917
    config: BacktestConfig,
    data: MarketData,
    start_row: int,
    end_row: int,
    sim: Simulation,
    flows: FloatArray,
) -> tuple[BenchmarkRun, ...]:
    """Every benchmark simulated over the run's rows, with the run's flows, and the
    run's statistics relative to each (time-weighted returns on both sides)."""
    dates = data.dates[start_row : end_row + 1]
    has_flows = bool(flows.any())
    mine = pf.twr_returns(sim.equity, flows)
    runs = []
    for i, entry in enumerate(_benchmark_entries(config)):
        if isinstance(entry, str):
            equity = _symbol_series(
                config, data, entry, start_row, end_row, f"benchmarks[{i}]",
                flows if has_flows else None,
            )  # fmt: skip
            name, symbol, alloc, rebalancing = entry, entry, None, None
        else:
            inner = dataclasses.replace(
                config,
                allocation=entry.allocation,
                rebalancing=entry.rebalancing,
                rebalance_band=entry.rebalance_band,
                strategy_id=None,
                strategy_params={},
                filter_criteria=None,
                symbols=None,
                benchmark=None,
                benchmarks=(),
                universe="all",
            )
            equity = run_backtest(inner, data).equity
            name, symbol = entry.name, None
            alloc, rebalancing = dict(entry.allocation), entry.rebalancing
        theirs = pf.twr_index(equity, flows) if has_flows else equity
        runs.append(
            BenchmarkRun(
                name=name,
                symbol=symbol,
                allocation=alloc,
                rebalancing=rebalancing,
                equity=equity,
                metrics=metrics_mod.relative_metrics(
                    dates, mine, theirs, config.risk_free_rate
                ),
            )
        )
    return tuple(runs)
