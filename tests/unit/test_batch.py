"""run_sweep: every row's metrics equal run_backtest's; factor reuse; progress; cancel.

The reference is :func:`run_backtest` of the same config, computed independently
(its own strategy evaluation, the bit-exact simulator, the full trade ledger).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from app.data.store import load_dataset
from app.engine import batch, synthetic
from app.engine.backtest import run_backtest
from app.engine.batch import apply_overrides, run_sweep
from app.engine.config import BacktestConfig, CashFlowPlan
from app.engine.data import MarketData
from app.engine.errors import CancelledError, InvalidInputError
from app.engine.metrics import daily_returns
from app.engine.portfolio import twr_returns

REL = 1e-9


def assert_rows_match(
    base: BacktestConfig,
    combos: list[Mapping[str, Any]],
    data: MarketData,
) -> None:
    result = run_sweep(base, combos, data)
    assert len(result.rows) == len(combos)
    for overrides, row in zip(combos, result.rows, strict=True):
        expected = run_backtest(apply_overrides(base, overrides), data)
        assert row.metrics.keys() == expected.metrics.keys()
        for key, want in expected.metrics.items():
            got = row.metrics[key]
            if want is None or got is None:
                assert got is want, (overrides, key, got, want)
            else:
                assert math.isclose(got, want, rel_tol=REL, abs_tol=1e-12), (
                    overrides,
                    key,
                    got,
                    want,
                )
        np.testing.assert_allclose(row.equity, expected.equity, rtol=1e-12)
        flows = expected.flows
        want_returns = (
            twr_returns(expected.equity, flows)
            if flows is not None and flows.any()
            else daily_returns(expected.equity)
        )
        np.testing.assert_allclose(row.returns, want_returns, rtol=1e-9, atol=1e-13)
        np.testing.assert_array_equal(row.dates, expected.dates)


@pytest.fixture(scope="module")
def synth() -> MarketData:
    return synthetic.generate(
        40, 900, seed=7, dividend_yield=0.03, late_listing_fraction=0.3
    ).precompute()


@pytest.fixture(scope="module")
def synth_base(synth: MarketData) -> BacktestConfig:
    days = synth.dates.astype("datetime64[D]")
    # reinvest_dividends=False: the plain compiled loop (jit.run_events); the
    # portfolio kernel's rows are checked in test_reinvestment_flows_and_band_match
    return BacktestConfig(
        start_date=days[300].item(),
        end_date=days[-1].item(),
        strategy_id=2,
        reinvest_dividends=False,
    )


def test_momentum_grid_matches_run_backtest(
    synth: MarketData, synth_base: BacktestConfig
) -> None:
    combos: list[Mapping[str, Any]] = [
        {"lookback": lb, "skip": sk, "top_n": n, "rebalancing": reb}
        for lb in (63, 126)
        for sk in (0, 21)
        for n in (3, 10)
        for reb in ("weekly", "monthly")
    ]
    combos += [
        {"top_n": 5, "execution": "close", "commission_rate": 0.0},
        {"top_n": 5, "slippage_rate": 0.01, "dividends": False, "rebalancing": "daily"},
    ]
    assert_rows_match(synth_base, combos, synth)


def test_other_strategies_and_a_screen_match(
    synth: MarketData, synth_base: BacktestConfig
) -> None:
    combos: list[Mapping[str, Any]] = [
        {"strategy_id": 1, "strategy_params": {}},
        {"strategy_id": 3, "strategy_params": {"window": 50}},
        {"strategy_id": 4, "strategy_params": {"top_n": 8, "window": 21}},
        {"strategy_id": 5, "strategy_params": {"top_n": 8, "window": 5}},
        {"strategy_id": 6, "strategy_params": {"window": 30}, "rebalancing": "weekly"},
        {"strategy_id": 7, "strategy_params": {}},
    ]
    assert_rows_match(synth_base, combos, synth)
    screen = {
        "filters": [
            {"factor": "close", "op": ">", "other": {"factor": "sma", "window": 50}}
        ],
        "rank_by": {"factor": "return", "window": 63},
        "top_n": 10,
        "weighting": "equal",
    }
    base = BacktestConfig(
        start_date=synth_base.start_date,
        end_date=synth_base.end_date,
        filter_criteria=screen,
        reinvest_dividends=False,
    )
    screen_combos: list[Mapping[str, Any]] = [
        {"top_n": 5},
        {"top_n": 10, "rebalancing": "weekly"},
        {"weighting": "inverse_volatility", "volatility_window": 21},
        {"rank_by": {"factor": "volatility", "window": 21}, "ascending": True},
    ]
    assert_rows_match(base, screen_combos, synth)


def test_bundled_slice_matches_run_backtest() -> None:
    data = load_dataset()
    base = BacktestConfig(
        start_date=dt.date(2018, 1, 2),
        end_date=dt.date(2020, 12, 31),
        strategy_id=2,
        benchmark="SPY",
        symbols=tuple(sorted(data.stocks)[:80]),
        reinvest_dividends=False,
    )
    combos: list[Mapping[str, Any]] = [
        {"lookback": 126, "top_n": 10, "rebalancing": "monthly"},
        {"lookback": 126, "top_n": 20, "rebalancing": "weekly"},
        {"lookback": 252, "skip": 0, "top_n": 10},
        {"strategy_id": 6, "strategy_params": {"window": 63}},
    ]
    assert_rows_match(base, combos, data)


def test_reinvestment_flows_and_band_match_without_falling_back(
    synth: MarketData, synth_base: BacktestConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reinvested dividends (the default), flows in and out and a drift band run in
    the compiled portfolio loop, never through run_backtest, and still match it."""
    base = dataclasses.replace(synth_base, reinvest_dividends=True)
    combos: list[Mapping[str, Any]] = [
        {"top_n": 5},
        {"top_n": 10, "rebalancing": "weekly", "execution": "close"},
        {"top_n": 5, "rebalance_band": 0.02, "rebalancing": "quarterly"},
        {"top_n": 8, "cash_flows": CashFlowPlan(amount=2000.0)},
        {"top_n": 8, "cash_flows": CashFlowPlan(amount=-3000.0, frequency="quarterly")},
        {"top_n": 3, "cash_flows": CashFlowPlan(amount=-60_000.0), "benchmark": None},
        {"top_n": 5, "rebalance_band": 0.05, "execution": "close", "benchmark": None},
    ]

    def no_single_runs(*args: object, **kwargs: object) -> None:
        raise AssertionError("the sweep fell back to run_backtest")

    with monkeypatch.context() as patch:
        patch.setattr(batch, "run_backtest", no_single_runs)
        rows = run_sweep(base, combos, synth).rows
    assert rows[5].metrics["portfolio_depleted"] is True
    assert rows[2].metrics["rebalance_count"] > 0
    assert_rows_match(base, combos, synth)


def test_portfolio_config_falls_back_to_run_backtest() -> None:
    """Allocations are the single-run engine's: a sweep row of such a config equals
    run_backtest's exactly."""
    data = load_dataset()
    base = BacktestConfig(
        start_date=dt.date(2018, 1, 2),
        end_date=dt.date(2019, 12, 31),
        allocation=(("SPY", 0.6), ("AGG", 0.4)),
        cash_flows=CashFlowPlan(amount=500.0),
    )
    combos: list[Mapping[str, Any]] = [{"rebalancing": "quarterly"}, {}]
    rows = run_sweep(base, combos, data).rows
    for row, overrides in zip(rows, combos, strict=True):
        single = run_backtest(apply_overrides(base, overrides), data)
        assert row.metrics == single.metrics
        np.testing.assert_array_equal(row.equity, single.equity)
    # every monthly contribution is followed by a rebalance, whatever the calendar
    assert rows[0].metrics["total_contributions"] == 500.0 * 23


def test_factor_matrices_are_computed_once_per_factor(
    synth: MarketData, synth_base: BacktestConfig
) -> None:
    lookbacks, top_ns, rebs = (42, 84, 126), (2, 5, 9, 20), ("weekly", "monthly")
    combos = [
        {"lookback": lb, "top_n": n, "rebalancing": r, "commission_rate": c}
        for lb in lookbacks
        for n in top_ns
        for r in rebs
        for c in (0.0, 0.002)
    ]
    result = run_sweep(synth_base, combos, synth)
    # the rankings are shared: one per (lookback, rebalancing); every other
    # combination (another top_n or commission) reuses one
    n_rankings = len(lookbacks) * len(rebs)
    assert result.ranking_computations == n_rankings
    assert result.ranking_hits == len(combos) - n_rankings
    # a ranking reads the momentum matrix, computed once per lookback (skip is
    # fixed): the other rebalancing's ranking reuses it
    assert result.factor_computations == len(lookbacks)
    assert result.factor_hits == n_rankings - len(lookbacks)


def test_progress_and_cancel(synth: MarketData, synth_base: BacktestConfig) -> None:
    combos = [{"top_n": n} for n in (2, 4, 6, 8)]
    seen: list[tuple[float, int]] = []
    run_sweep(synth_base, combos, synth, on_progress=lambda f, k: seen.append((f, k)))
    assert seen == [(0.25, 1), (0.5, 2), (0.75, 3), (1.0, 4)]

    calls: list[int] = []

    def cancel_after_two() -> bool:
        calls.append(len(seen))
        return len(seen) >= 6  # the first sweep reported 4; stop after 2 more

    with pytest.raises(CancelledError, match="after 2 of 4"):
        run_sweep(
            synth_base,
            combos,
            synth,
            on_progress=lambda f, k: seen.append((f, k)),
            should_cancel=cancel_after_two,
        )
    assert len(seen) == 6
    assert calls  # consulted


def test_invalid_combination_names_its_index(
    synth: MarketData, synth_base: BacktestConfig
) -> None:
    with pytest.raises(InvalidInputError) as err:
        run_sweep(synth_base, [{"top_n": 5}, {"top_n": 0}], synth)
    assert err.value.field == "combos[1].strategy_params.top_n"
    with pytest.raises(InvalidInputError, match="unknown override 'topn'"):
        run_sweep(synth_base, [{"topn": 5}], synth)
    with pytest.raises(InvalidInputError, match="fixed"):
        run_sweep(synth_base, [{"dataset": "other"}], synth)
