"""Parameter sweeps: many backtests of one base config on one dataset, sharing work.

``run_sweep(base, combos, data)`` runs ``base`` with each combination of overrides
and returns, per combination, what a sweep row needs: the metrics dict (the same keys
and values as :func:`~app.engine.backtest.run_backtest` of that config) and the daily
equity curve and returns. What is shared across combinations:

* the data window and column subset (one per distinct warm-up/date range/universe),
  its derived arrays (valuation closes, dividends and their cumulative sum) and the
  benchmark curve;
* every factor/score matrix, computed **once per distinct factor** (e.g.
  ``MomentumScore(lookback=126, skip=21)``, ``Factor("sma", 200)``) on every row from
  the first decision onwards, then indexed by each combination's decision rows. So
  combinations that differ only in ``top_n``, weighting, costs, execution or
  rebalancing frequency reuse it (:attr:`SweepResult.factor_hits` counts the reuses);
* no trade ledger: only the closed trades' P&L and returns the metrics need.

Agreement with :func:`run_backtest`: each combination's whole event loop runs in one
compiled call (:func:`app.engine.jit.run_events`, or with reinvestment, flows or a
band :func:`app.engine.jit_portfolio.run_portfolio`, the kernel single runs call in
slices; allocations, "never" and several benchmarks run :func:`run_backtest` itself)
with the simulator's rules and per-symbol arithmetic, but sequential dot products
instead of BLAS and the running cash instead of a cumulative sum of fills, so equity
agrees with ``run_backtest`` to float rounding (~1e-15 relative), not bit for bit; a
whole-share count could differ only where a quantity falls within that rounding of
an integer. Momentum and ``close`` scores are element-wise and identical; the
rolling factors (``sma``, ``volatility``, ...) are prefix sums over the rows asked
for, so evaluating them on all rows changes their last bits and a selection could
differ only at an exact tie. The tests check every metric to 1e-9 relative against
``run_backtest``.

Overrides (one mapping per combination) name :class:`BacktestConfig` fields
(``rebalancing``, ``execution``, ``commission_rate``, ``slippage_rate``,
``strategy_id``, ``strategy_params`` (merged over the base's), ...), or directly a
parameter of the base's predefined strategy (``top_n``, ``lookback``, ...), or, for a
screen, a ``filter_criteria`` key (``top_n``, ``weighting``, ``rank_by``, ...,
replacing the base's value).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine import jit, jit_portfolio
from app.engine import metrics as metrics_mod
from app.engine import portfolio as pf
from app.engine.backtest import (
    _benchmark,
    _portfolio,
    _symbol_series,
    _universe,
    portfolio_metrics,
    run_backtest,
    validate_config,
)
from app.engine.config import BacktestConfig
from app.engine.data import FloatMatrix, IntArray, MarketData
from app.engine.errors import CancelledError, InvalidInputError
from app.engine.schedule import decision_rows
from app.engine.simulator import Costs, Fills, Portfolio, portfolio_inputs
from app.engine.strategies import (
    Factor,
    Pipeline,
    SelectTopN,
    SelectWhere,
    Strategy,
    WeighInverseVolatility,
    get_strategy_def,
    resolve_strategy,
)
from app.engine.strategies.base import (
    COMPARISONS,
    BoolMatrix,
    Score,
    check_rows,
    tradable,
    weigh_equal,
)
from app.engine.strategies.screen import FilterCriteria
from app.engine.trades import closed_trade_stats

FloatArray = npt.NDArray[np.float64]
SweepProgress = Callable[[float, int], None]  # (fraction done, combinations done)
CancelCheck = Callable[[], bool]

_FIXED_FIELDS = frozenset({"dataset"})
_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(BacktestConfig))


@dataclass(frozen=True)
class SweepRow:
    """One combination's outcome. ``equity`` has shape ``(n_days,)``, ``returns``
    ``(n_days - 1,)`` (simple daily returns; with cash flows the time-weighted ones,
    :func:`app.engine.portfolio.twr_returns`, which leave the flows out), over
    :attr:`dates`."""

    overrides: Mapping[str, Any]
    config: BacktestConfig
    dates: npt.NDArray[np.datetime64]
    metrics: dict[str, Any]
    equity: FloatArray
    returns: FloatArray


@dataclass
class SweepResult:
    rows: list[SweepRow]
    #: distinct factor matrices computed, and lookups served from them
    factor_computations: int = 0
    factor_hits: int = 0
    #: top-n rankings (stable argsorts) computed, and reuses
    ranking_computations: int = 0
    ranking_hits: int = 0


def apply_overrides(
    base: BacktestConfig, overrides: Mapping[str, Any]
) -> BacktestConfig:
    """``base`` with ``overrides`` applied (see the module docstring)."""
    changes: dict[str, Any] = {}
    params = dict(base.strategy_params)
    criteria = None if base.filter_criteria is None else dict(base.filter_criteria)
    strategy_id = overrides.get("strategy_id", base.strategy_id)
    param_names: set[str] = set()
    if criteria is None and "filter_criteria" not in overrides:
        param_names = {p.name for p in get_strategy_def(strategy_id or 1).params}
    for key, value in overrides.items():
        if key in _FIXED_FIELDS:
            raise InvalidInputError(
                f"{key} is fixed for a whole sweep", field=f"overrides.{key}"
            )
        if key == "strategy_params":
            params.update(value)
        elif key in _CONFIG_FIELDS:
            changes[key] = value
        elif key in param_names:
            params[key] = value
        elif criteria is not None and key in FilterCriteria.model_fields:
            criteria[key] = value
        else:
            allowed = sorted((_CONFIG_FIELDS - _FIXED_FIELDS) | param_names)
            if criteria is not None:
                allowed += sorted(FilterCriteria.model_fields)
            raise InvalidInputError(
                f"unknown override {key!r}; allowed: {', '.join(allowed)}",
                field=f"overrides.{key}",
            )
    if "filter_criteria" not in changes and criteria is not None:
        changes["filter_criteria"] = criteria
    if "strategy_params" not in changes and criteria is None:
        changes["strategy_params"] = params
    return dataclasses.replace(base, **changes)


# ------------------------------------------------------------------ shared state
@dataclass
class _Window:
    """A data window and what every run on it shares."""

    data: MarketData
    s0: int  # local row of the first simulated day (= the first decision row)
    delist: IntArray
    cum_dividends: FloatMatrix | None = None
    _dividends: tuple[IntArray, IntArray, FloatArray] | None = None

    def dividends(self) -> tuple[IntArray, IntArray, FloatArray]:
        """The run's dividends (rows from ``s0``) as the portfolio kernel takes
        them (:func:`jit_portfolio.sparse_rows`), computed once per window."""
        if self._dividends is None:
            self._dividends = jit_portfolio.sparse_rows(
                self.data.dividends_per_share[self.s0 :]
            )
        return self._dividends

    def ex_days(self) -> npt.NDArray[np.bool_]:
        """The run's days (from ``s0``) with a dividend."""
        ptr = self.dividends()[0]
        return ptr[1:] > ptr[:-1]


@dataclass
class _FactorCache:
    """Score matrices on rows ``s0..`` of a window, keyed by (window key, score)."""

    matrices: dict[tuple[Any, ...], FloatMatrix] = field(default_factory=dict)
    orders: dict[tuple[Any, ...], IntArray] = field(default_factory=dict)
    #: (stable ranking, eligible mask) of a top-n selection from the tradable symbols
    rankings: dict[tuple[Any, ...], tuple[IntArray, BoolMatrix]] = field(
        default_factory=dict
    )
    computations: int = 0
    hits: int = 0
    ranking_computations: int = 0
    ranking_hits: int = 0

    def values(
        self, key: tuple[Any, ...], score: Score, window: _Window, rows: IntArray
    ) -> FloatMatrix:
        if rows.size == 0 or int(rows[0]) < window.s0:
            return score(window.data, rows)  # not coverable by the cache: direct
        full_key = (*key, score)
        matrix = self.matrices.get(full_key)
        if matrix is None:
            all_rows = np.arange(window.s0, window.data.n_days, dtype=np.int64)
            matrix = score(window.data, all_rows)
            self.matrices[full_key] = matrix
            self.computations += 1
        else:
            self.hits += 1
        return matrix[rows - window.s0]


@dataclass(frozen=True)
class _Cached:
    """A score read from the sweep's factor cache."""

    score: Score
    cache: _FactorCache
    key: tuple[Any, ...]
    window: _Window

    def __call__(self, data: MarketData, rows: IntArray) -> FloatMatrix:
        return self.cache.values(self.key, self.score, self.window, rows)


@dataclass(frozen=True)
class _CachedTopN:
    """:class:`SelectTopN` with the per-row ranking cached: a stable argsort of the
    same key (ineligible = +inf) keeps exactly what the partition keeps (everything
    better than the n-th key, then ties at it in column order), so combinations that
    differ only in ``n`` sort once."""

    score: _Cached
    n: int
    ascending: bool

    def __call__(
        self, data: MarketData, rows: IntArray, selected: BoolMatrix
    ) -> BoolMatrix:
        values = self.score(data, rows)
        eligible = selected & ~np.isnan(values)
        n = min(self.n, values.shape[1])
        if n == 0 or rows.size == 0:
            return np.zeros_like(eligible)
        cache = self.score.cache
        key = (*self.score.key, self.score.score, self.ascending)
        key += (rows.tobytes(), eligible.tobytes())
        order = cache.orders.get(key)
        if order is None:
            ranked = np.where(eligible, values if self.ascending else -values, np.inf)
            order = np.argsort(ranked, axis=1, kind="stable")
            cache.orders[key] = order
            cache.ranking_computations += 1
        else:
            cache.ranking_hits += 1
        keep = np.zeros_like(eligible)
        np.put_along_axis(keep, order[:, :n], True, axis=1)
        return keep & eligible

    def equal_weights(self, data: MarketData, rows: IntArray) -> FloatMatrix:
        """``Pipeline((self,), weigh_equal).target_weights(data, rows)`` without a
        membership mask, from a ranking shared by every ``n``.

        The tradable mask and the score depend only on the window and ``rows``, so the
        eligible mask and its stable ranking are computed once per (score, rows); a
        combination then takes the first ``n`` columns of each row's ranking that are
        eligible (what ``keep & eligible`` keeps) and gives each ``1 / count``, the
        same expression :func:`weigh_equal` evaluates.
        """
        rows = check_rows(rows, data.n_days)
        if rows.size == 0:
            return np.zeros((0, data.n_symbols))
        cache = self.score.cache
        key = (*self.score.key, self.score.score, self.ascending, rows.tobytes())
        found = cache.rankings.get(key)
        if found is None:
            values = self.score(data, rows)
            eligible = tradable(data, rows) & ~np.isnan(values)
            ranked = np.where(eligible, values if self.ascending else -values, np.inf)
            found = np.argsort(ranked, axis=1, kind="stable"), eligible
            cache.rankings[key] = found
            cache.ranking_computations += 1
        else:
            cache.ranking_hits += 1
        order, eligible = found
        weights = np.zeros(eligible.shape)
        n = min(self.n, eligible.shape[1])
        if n == 0:
            return weights
        # flat positions of each row's first n ranked columns (take/put_along_axis
        # by hand: the same elements, without their index broadcasting)
        top = order[:, :n] + (np.arange(order.shape[0]) * order.shape[1])[:, None]
        chosen = eligible.reshape(-1)[top]
        count = chosen.sum(axis=1, keepdims=True)
        weights.reshape(-1)[top] = np.where(chosen, 1.0 / np.maximum(count, 1), 0.0)
        return weights


@dataclass(frozen=True)
class _CachedWhere:
    """:class:`SelectWhere` with cached sides (same comparison, same NaN rule)."""

    lhs: _Cached
    op: str
    rhs: _Cached | float

    def __call__(
        self, data: MarketData, rows: IntArray, selected: BoolMatrix
    ) -> BoolMatrix:
        left = self.lhs(data, rows)
        right = self.rhs(data, rows) if isinstance(self.rhs, _Cached) else self.rhs
        with np.errstate(invalid="ignore"):
            return np.asarray(COMPARISONS[self.op](left, right), dtype=np.bool_)


@dataclass(frozen=True)
class _CachedInverseVolatility:
    """:class:`WeighInverseVolatility` reading its volatility from the cache."""

    volatility: _Cached

    def __call__(
        self, data: MarketData, rows: IntArray, selected: BoolMatrix
    ) -> FloatMatrix:
        vol = self.volatility(data, rows)
        usable = selected & (vol > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(usable, 1.0 / vol, 0.0)
        total = raw.sum(axis=1, keepdims=True)
        return np.where(total > 0, raw / np.where(total > 0, total, 1.0), 0.0)


def _with_cache(
    strategy: Strategy, cache: _FactorCache, key: tuple[Any, ...], window: _Window
) -> Strategy:
    """``strategy`` with every factor/score it evaluates read through ``cache``.
    Strategies of unknown shape are returned unchanged (computed directly)."""
    if not isinstance(strategy, Pipeline):
        return strategy

    def cached(score: Score) -> _Cached:
        return _Cached(score, cache, key, window)

    select: list[Any] = []
    for step in strategy.select:
        if isinstance(step, SelectTopN):
            select.append(_CachedTopN(cached(step.score), step.n, step.ascending))
        elif isinstance(step, SelectWhere):
            rhs = cached(step.rhs) if isinstance(step.rhs, Factor) else step.rhs
            select.append(_CachedWhere(cached(step.lhs), step.op, rhs))
        else:
            select.append(step)
    weigh: Any = strategy.weigh
    if isinstance(weigh, WeighInverseVolatility):
        weigh = _CachedInverseVolatility(cached(Factor("volatility", weigh.window)))
    return dataclasses.replace(strategy, select=tuple(select), weigh=weigh)


class _Sweep:
    """Caches shared by the combinations of one sweep."""

    def __init__(self, data: MarketData) -> None:
        self.data = data.precompute()
        self.windows: dict[tuple[Any, ...], _Window] = {}
        self.benchmarks: dict[tuple[Any, ...], FloatArray | None] = {}
        self.universes: dict[tuple[Any, ...], tuple[str, ...]] = {}
        self.factors = _FactorCache()
        self.log_buffer = _LogBuffer()

    def window(
        self, config: BacktestConfig, lo: int, end_row: int, universe: tuple[str, ...]
    ) -> tuple[tuple[Any, ...], _Window]:
        key = (lo, end_row, universe)
        found = self.windows.get(key)
        if found is None:
            data = self.data
            sub = data.window(lo, end_row + 1).subset(universe)
            s0 = data.row_of(np.datetime64(config.start_date, "D")) - lo
            last = data.last_row[data.columns(sub.symbols)]
            delist = np.where(last < data.n_days - 1, last - lo, -1)
            found = _Window(sub, s0, delist)
            self.windows[key] = found
        if config.dividends and found.cum_dividends is None:
            found.cum_dividends = jit.cumsum_rows(
                found.data.dividends_per_share[found.s0 :]
            )
        return key, found

    def universe(self, config: BacktestConfig) -> tuple[str, ...]:
        """:func:`_universe` of ``config``, checked once per distinct choice."""
        screen = config.filter_criteria
        key = (
            config.symbols,
            None if screen is None else tuple(screen.get("universe") or ()),
        )
        found = self.universes.get(key)
        if found is None:
            found = self.universes[key] = _universe(config, self.data)
        return found

    def benchmark(
        self, config: BacktestConfig, start_row: int, end_row: int
    ) -> FloatArray | None:
        key = (config.benchmark, config.dividends, start_row, end_row)
        if key not in self.benchmarks:
            self.benchmarks[key] = _benchmark(config, self.data, start_row, end_row)
        return self.benchmarks[key]

    def run(
        self, overrides: Mapping[str, Any], config: BacktestConfig, cancel: CancelCheck
    ) -> SweepRow:
        data = self.data
        if needs_single_run(config):
            # Allocations, "never" and extra benchmarks are the single-run engine's:
            # run it (same universe rule as this batch: no membership mask), so a
            # row still equals run_backtest's.
            result = run_backtest(
                dataclasses.replace(config, universe="all"),
                data,
                should_cancel=cancel,
            )
            return SweepRow(
                overrides=overrides,
                config=config,
                dates=result.dates,
                metrics=result.metrics,
                equity=result.equity,
                returns=_returns(result.equity, result.flows),
            )
        start_row, end_row = validate_config(config, data)
        strategy = resolve_strategy(
            config.strategy_id, config.strategy_params, config.filter_criteria
        )
        universe = self.universe(config)
        lo = max(0, start_row - strategy.warmup_rows - 1)
        key, win = self.window(config, lo, end_row, universe)
        strategy = _with_cache(strategy, self.factors, key, win)
        s1 = win.data.n_days - 1
        decisions = decision_rows(
            win.data.dates,
            start_row=win.s0,
            end_row=s1,
            rebalancing=config.rebalancing,
            rebalances=strategy.rebalances,
        )
        weights = _target_weights(strategy, win.data, decisions)
        portfolio = _portfolio(config, win.data, win.s0, s1)
        if portfolio.active:
            run = _simulate_portfolio(
                config, win, decisions, weights, portfolio, self.log_buffer
            )
        else:
            run = _simulate(config, win, decisions, weights, self.log_buffer)
            n_rebalances = int((np.asarray(decisions) < s1).sum())
            if config.execution == "close":
                n_rebalances = len(decisions)
            run.rebalance_count = max(n_rebalances - 1, 0)
        equity, invested, fills, flows = run.equity, run.invested, run.fills, run.flows
        dates = data.dates[start_row : end_row + 1]
        has_flows = bool(flows.any())
        if has_flows:  # time-weighted curves, as run_backtest's (_assemble)
            bench = None
            if config.benchmark:
                bench = _symbol_series(
                    config, data, config.benchmark, start_row, end_row, "benchmark",
                    flows,
                )  # fmt: skip
            curve = pf.twr_index(equity, flows)
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(equity > 0.0, invested / equity, 0.0)
            invested_curve = curve * share
            bench_curve = None if bench is None else pf.twr_index(bench, flows)
        else:
            curve, invested_curve = equity, invested
            bench_curve = self.benchmark(config, start_row, end_row)
        pnl, returns, n_trades = closed_trade_stats(
            fills,
            n_symbols=win.data.n_symbols,
            last_mark=win.data.valuation_close[-1],
            cum_dividends=win.cum_dividends if config.dividends else None,
        )
        notional = float(np.abs(fills.quantity * fills.price).sum())
        metrics = metrics_mod.compute_metrics(
            dates=dates,
            equity=curve,
            invested_value=invested_curve,
            closed_trade_pnl=pnl,
            closed_trade_returns=returns,
            total_trades=n_trades,
            traded_notional=notional,
            benchmark_equity=bench_curve,
            risk_free_rate=config.risk_free_rate,
        )
        if has_flows:
            metrics["final_equity"] = float(equity[-1])
            metrics["turnover"] = metrics_mod.turnover(
                notional, equity, int((dates[-1] - dates[0]) // np.timedelta64(1, "D"))
            )
        metrics.update(
            portfolio_metrics(
                dates,
                config.initial_capital,
                flows,
                equity,
                rebalance_count=run.rebalance_count,
                depleted=run.depleted_row >= 0,
            )
        )
        return SweepRow(
            overrides=overrides,
            config=config,
            dates=dates,
            metrics=metrics,
            equity=equity,
            returns=_returns(equity, flows),
        )


def _returns(equity: FloatArray, flows: FloatArray | None) -> FloatArray:
    """A row's daily returns (:class:`SweepRow`)."""
    if flows is not None and flows.any():
        return pf.twr_returns(equity, flows)
    return metrics_mod.daily_returns(equity)


def _target_weights(
    strategy: Strategy, data: MarketData, decisions: IntArray
) -> FloatMatrix:
    """``strategy.target_weights(data, decisions)``; an equal-weighted top-n (the
    momentum, low-volatility and reversal strategies) through the shared ranking."""
    if (
        isinstance(strategy, Pipeline)
        and strategy.weigh is weigh_equal
        and len(strategy.select) == 1
        and isinstance(strategy.select[0], _CachedTopN)
    ):
        return strategy.select[0].equal_weights(data, decisions)
    return strategy.target_weights(data, decisions)


def _event_arrays(
    decisions: IntArray, delist: IntArray, *, execution: str, end_row: int
) -> tuple[IntArray, IntArray, IntArray]:
    """:func:`app.engine.simulator._events` as three arrays (fill row, phase,
    index), in the same order (by row, then phase, then index), built without a
    Python loop over the decisions."""
    k = np.arange(len(decisions), dtype=np.int64)
    if execution == "next_open":
        ahead = decisions < end_row
        rows, phase, idx = decisions[ahead] + 1, jit.PHASE_OPEN, k[ahead]
    elif execution == "close":
        rows, phase, idx = decisions, jit.PHASE_CLOSE, k
    else:
        raise InvalidInputError(
            f"unknown execution {execution!r}; allowed: next_open, close",
            field="execution",
        )
    cols = np.flatnonzero(delist >= 0)
    ev_row = np.concatenate((rows, delist[cols])).astype(np.int64)
    ev_phase = np.concatenate(
        (np.full(len(rows), phase), np.full(len(cols), jit.PHASE_DELIST))
    ).astype(np.int64)
    ev_idx = np.concatenate((idx, cols)).astype(np.int64)
    order = np.lexsort((ev_idx, ev_phase, ev_row))
    return ev_row[order], ev_phase[order], ev_idx[order]


class _LogBuffer:
    """One fill-log buffer reused by every combination of a sweep (the fills are
    copied out after each run), grown when a run needs more room."""

    def __init__(self) -> None:
        self.log = np.empty((5, 0))

    def __call__(self, capacity: int) -> FloatMatrix:
        if self.log.shape[1] < capacity:
            self.log = np.empty((5, capacity))
        return self.log


@dataclass
class _Run:
    """One combination's simulation: daily arrays local to the run."""

    equity: FloatArray
    invested: FloatArray
    fills: Fills
    flows: FloatArray
    rebalance_count: int = 0
    depleted_row: int = -1


def _copy_fills(log: FloatMatrix, n: int) -> Fills:
    return Fills(
        row=log[jit.F_ROW, :n].astype(np.int64),
        col=log[jit.F_COL, :n].astype(np.int64),
        quantity=log[jit.F_QTY, :n].copy(),
        price=log[jit.F_PX, :n].copy(),
        commission=log[jit.F_FEE, :n].copy(),
    )


def _params(config: BacktestConfig) -> FloatArray:
    costs = Costs(config.commission_rate, config.slippage_rate)
    return np.array(
        [
            costs.slippage_rate,
            costs.commission_rate,
            costs.sell_factor,
            costs.buy_factor,
        ]
    )


def _simulate_portfolio(  # noqa: PLR0917
    config: BacktestConfig,
    win: _Window,
    decisions: IntArray,
    weights: FloatMatrix,
    portfolio: Portfolio,
    log_buffer: Callable[[int], FloatMatrix],
) -> _Run:
    """The portfolio loop (flows, reinvestment, a band) in one compiled call
    (:func:`jit_portfolio.run_portfolio`, the kernel single runs use in slices)."""
    data = win.data
    start_row, end_row = win.s0, data.n_days - 1
    n_days, n_sym = end_row - start_row + 1, data.n_symbols
    delist = np.where(
        (win.delist >= start_row) & (win.delist <= end_row), win.delist, -1
    )
    gone_after = np.where(delist >= 0, delist, np.iinfo(np.int64).max)
    div_ptr, div_cols, div_vals = (
        win.dividends() if config.dividends else jit_portfolio.no_dividends(n_days)
    )
    cal_idx, n_flows, reinvest_at, delist_ptr, delist_cols = portfolio_inputs(
        decisions=decisions,
        delist=delist,
        flow_rows=portfolio.flow_rows,
        ex_days=win.ex_days() if portfolio.reinvest else None,
        start_row=start_row,
        end_row=end_row,
        execution=config.execution,
    )
    work = np.zeros((jit.N_WORK, n_sym))
    state = np.array([config.initial_capital, 0.0])
    params = _params(config)
    ist = jit_portfolio.new_state()
    pending = np.zeros(n_sym)
    income, external = np.zeros(n_days), np.zeros(n_days)
    equity, invested = np.empty(n_days), np.empty(n_days)
    first = max(start_row - 1, 0)
    is_open = config.execution == "next_open"
    log = log_buffer(max(len(decisions) + 8, 64) * n_sym)
    target = np.ascontiguousarray(weights, dtype=np.float64)  # one argument type
    t = 0
    while t < n_days:
        t = jit_portfolio.run_portfolio(
            work, log, state, params, ist, pending,
            data.open if is_open else data.close, data.close,
            data.valuation_close[first:], div_ptr, div_cols, div_vals, target,
            cal_idx, n_flows,
            float(portfolio.flow_amount), reinvest_at, delist_ptr, delist_cols,
            gone_after, start_row, first, is_open, portfolio.reinvest,
            -1.0 if portfolio.band is None else float(portfolio.band), t, n_days,
            income, external, np.empty((0, n_sym)), equity, invested,
        )  # fmt: skip
        if t < n_days:  # the fill log is full: grow it, keep what is logged
            grown = log_buffer(2 * log.shape[1])
            grown[:, : int(state[jit.N_FILLS])] = log[:, : int(state[jit.N_FILLS])]
            log = grown
    return _Run(
        equity=equity,
        invested=invested,
        fills=_copy_fills(log, int(state[jit.N_FILLS])),
        flows=external,
        rebalance_count=max(int(ist[jit_portfolio.N_REBALANCES]) - 1, 0),
        depleted_row=int(ist[jit_portfolio.DEPLETED]),
    )


def _simulate(
    config: BacktestConfig,
    win: _Window,
    decisions: IntArray,
    weights: FloatMatrix,
    log_buffer: Callable[[int], FloatMatrix],
) -> _Run:
    """The simulator's rules in one compiled call (:func:`jit.run_events`)."""
    data = win.data
    start_row, end_row = win.s0, data.n_days - 1
    delist = np.where(
        (win.delist >= start_row) & (win.delist <= end_row), win.delist, -1
    )
    ev_row, ev_phase, ev_idx = _event_arrays(
        decisions, delist, execution=config.execution, end_row=end_row
    )
    gone_after = np.where(delist >= 0, delist, np.iinfo(np.int64).max)
    n_sym = data.n_symbols
    work = np.zeros((jit.N_WORK, n_sym))
    log = log_buffer(max(len(ev_row), 1) * n_sym)
    state = np.array([config.initial_capital, 0.0])
    params = _params(config)
    n_days = end_row - start_row + 1
    first = max(start_row - 1, 0)
    divs = (
        data.dividends_per_share[start_row:]
        if config.dividends
        else np.zeros((0, n_sym))
    )
    equity, invested = np.empty(n_days), np.empty(n_days)
    jit.run_events(
        work, log, state, params,
        data.open if config.execution == "next_open" else data.close,
        data.close, data.valuation_close[first:], divs, weights,
        ev_row, ev_phase, ev_idx, gone_after, start_row, first, equity, invested,
    )  # fmt: skip
    fills = _copy_fills(log, int(state[jit.N_FILLS]))
    return _Run(equity, invested, fills, np.zeros(n_days))


def needs_single_run(config: BacktestConfig) -> bool:
    """Whether ``config`` needs what only :func:`run_backtest` does (an allocation,
    "never", several benchmarks); flows, reinvestment and a band run here, in the
    compiled portfolio loop."""
    return (
        config.allocation is not None
        or config.rebalancing == "never"
        or bool(config.benchmarks)
    )


def run_sweep(
    base: BacktestConfig,
    combos: Sequence[Mapping[str, Any]],
    data: MarketData,
    *,
    on_progress: SweepProgress | None = None,
    should_cancel: CancelCheck | None = None,
) -> SweepResult:
    """Run ``base`` with each of ``combos`` applied, on ``data``, in order.

    Every combination is validated before any runs (an invalid one raises
    :class:`InvalidInputError` with ``field`` ``combos[i].<field>``).
    ``on_progress(fraction, combos_done)`` is called after each combination;
    ``should_cancel()`` is checked before each combination and inside each
    simulation, and a True answer raises :class:`CancelledError`.
    """
    sweep = _Sweep(data)
    configs = []
    for i, overrides in enumerate(combos):
        try:
            config = apply_overrides(base, overrides)
            validate_config(config, sweep.data)
            resolve_strategy(
                config.strategy_id, config.strategy_params, config.filter_criteria
            )
            sweep.universe(config)
            sweep.benchmark(config, *validate_config(config, sweep.data))
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"combination {i}: {exc.message}",
                field=f"combos[{i}].{exc.field}" if exc.field else f"combos[{i}]",
            ) from exc
        configs.append(config)

    def cancel() -> bool:
        return should_cancel is not None and should_cancel()

    rows: list[SweepRow] = []
    for i, (overrides, config) in enumerate(zip(combos, configs, strict=True)):
        if cancel():
            raise CancelledError(f"sweep cancelled after {i} of {len(combos)}")
        rows.append(sweep.run(overrides, config, cancel))
        if on_progress is not None:
            on_progress((i + 1) / len(combos), i + 1)
    return SweepResult(
        rows=rows,
        factor_computations=sweep.factors.computations,
        factor_hits=sweep.factors.hits,
        ranking_computations=sweep.factors.ranking_computations,
        ranking_hits=sweep.factors.ranking_hits,
    )
