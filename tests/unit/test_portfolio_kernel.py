"""The compiled portfolio loop (:func:`app.engine.jit_portfolio.run_portfolio`)
against the former Python event loop (kept here as the reference:
tests/unit/portfolio_reference.py), on randomised runs: flows in and out (including
a withdrawal that empties the portfolio), reinvestment on and off, a band on and
off, both execution modes, delistings, NaN gaps and changing targets. The kernel
sums sequentially where the old loop called BLAS, so prices and cash agree to float
rounding: fills (row, column, quantity) must be identical, prices and commissions
equal to 1e-12 relative, equity to 1e-10."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import numpy as np
import pytest

from app.data.store import load_dataset
from app.engine import jit_portfolio, simulator, synthetic
from app.engine.backtest import run_backtest
from app.engine.config import BacktestConfig, CashFlowPlan
from app.engine.data import forward_fill
from app.engine.errors import CancelledError
from app.engine.simulator import Costs, Portfolio, Simulation, simulate
from tests.unit.portfolio_reference import simulate_portfolio_reference


def _reference(**kw: Any) -> Simulation:
    """What :func:`simulate` did with a portfolio before the kernel: the same
    preparation, then the Python heap loop."""
    close, start_row, end_row = kw["close"], kw["start_row"], kw["end_row"]
    first = max(start_row - 1, 0)
    marks = np.nan_to_num(forward_fill(close[: end_row + 1])[first:], nan=0.0)
    delist = np.where(
        (kw["delist_rows"] >= start_row) & (kw["delist_rows"] <= end_row),
        kw["delist_rows"],
        -1,
    )
    gone_after = np.where(delist >= 0, delist, np.iinfo(np.int64).max)
    return simulate_portfolio_reference(
        open_=kw["open_"], close=close, dividends=kw["dividends"],
        decisions=kw["decisions"], weights=kw["weights"], start_row=start_row,
        end_row=end_row, execution=kw["execution"],
        initial_capital=kw["initial_capital"], costs=kw["costs"], delist=delist,
        gone_after=gone_after, marks=marks, first=first,
        portfolio=kw["portfolio"], should_cancel=None, on_progress=None,
    )  # fmt: skip


def _random_case(seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n_sym = int(rng.integers(2, 12))
    n_days = int(rng.integers(150, 600))
    data = synthetic.generate(
        n_sym, n_days, seed=seed, dividend_yield=0.04,
        late_listing_fraction=0.3 if rng.random() < 0.5 else 0.0,
    )  # fmt: skip
    open_, close = data.open.copy(), data.close.copy()
    # NaN gaps (a symbol without a price cannot trade that day)
    gaps = rng.random(close.shape) < 0.01
    open_[gaps] = np.nan
    close[rng.random(close.shape) < 0.005] = np.nan
    # delistings: data stops early, cashed out at the last close
    delist = np.full(n_sym, -1, dtype=np.int64)
    for c in rng.choice(n_sym, size=int(rng.integers(0, 3)), replace=False):
        last = int(rng.integers(n_days // 3, n_days - 2))
        open_[last + 1 :, c] = np.nan
        close[last + 1 :, c] = np.nan
        close[last, c] = data.close[last, c]
        delist[c] = last
    start_row = int(rng.integers(0, 30))
    end_row = n_days - 1
    step = int(rng.choice([1, 5, 21, 63, 10_000]))
    decisions = np.arange(start_row, end_row + 1, step, dtype=np.int64)
    raw = rng.random((len(decisions), n_sym)) * (rng.random((1, n_sym)) < 0.8)
    if rng.random() < 0.5:  # the same targets every time (an allocation)
        raw[:] = raw[0]
    weights = raw / max(raw.sum(axis=1).max(), 1e-9) * rng.uniform(0.8, 1.0)
    weights[np.isnan(close[decisions])] = 0.0
    flow_rows = None
    amount = 0.0
    if rng.random() < 0.7:
        every = int(rng.choice([5, 21, 63]))
        flow_rows = np.arange(start_row + 1, end_row + 1, every, dtype=np.int64)
        amount = float(rng.choice([1.0, -1.0]) * rng.uniform(100.0, 5_000.0))
        if rng.random() < 0.2:
            amount = -float(rng.uniform(30_000.0, 200_000.0))  # empties it
    band = float(rng.uniform(0.01, 0.1)) if rng.random() < 0.5 else None
    reinvest = bool(rng.random() < 0.7)
    dividends = data.dividends_per_share if rng.random() < 0.85 else None
    if dividends is not None:
        dividends = dividends.copy()
        dividends[rng.random(dividends.shape) < 0.002] = np.nan
    return {
        "open_": open_,
        "close": close,
        "dividends": dividends,
        "decisions": decisions,
        "weights": weights,
        "start_row": start_row,
        "end_row": end_row,
        "execution": "next_open" if rng.random() < 0.6 else "close",
        "initial_capital": float(rng.uniform(20_000.0, 1_000_000.0)),
        "costs": Costs(float(rng.uniform(0, 0.002)), float(rng.uniform(0, 0.002))),
        "delist_rows": delist,
        "portfolio": Portfolio(
            flow_rows=flow_rows, flow_amount=amount, reinvest=reinvest, band=band
        ),
    }


def _assert_same(new: Simulation, old: Simulation) -> None:
    a, b = new.fills, old.fills
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.row, b.row)
    np.testing.assert_array_equal(a.col, b.col)
    np.testing.assert_array_equal(a.quantity, b.quantity)
    np.testing.assert_allclose(a.price, b.price, rtol=1e-12, atol=0)
    np.testing.assert_allclose(a.commission, b.commission, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(new.positions, old.positions)
    scale = np.abs(old.equity).max()
    np.testing.assert_allclose(new.equity, old.equity, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(new.cash, old.cash, rtol=1e-10, atol=1e-10 * scale)
    assert old.flows is not None
    if new.flows is not None:  # None: no portfolio options, the plain loop ran
        np.testing.assert_allclose(new.flows, old.flows, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(
        new.dividend_income, old.dividend_income, rtol=1e-10, atol=1e-12 * scale
    )
    assert new.rebalance_count == old.rebalance_count
    assert new.depleted_row == old.depleted_row


@pytest.mark.parametrize("seed", range(60))
def test_kernel_equals_the_python_loop_on_random_runs(seed: int) -> None:
    case = _random_case(seed)
    new = simulate(**case)
    old = _reference(**case)
    _assert_same(new, old)


def test_random_runs_cover_every_feature() -> None:
    """The cases above do exercise what they claim (else the equality is hollow)."""
    seen = set()
    for seed in range(60):
        case = _random_case(seed)
        sim = simulate(**case)
        p = case["portfolio"]
        seen.add(("execution", case["execution"]))
        seen.add(("band", p.band is not None and sim.rebalance_count > 0))
        seen.add(("depleted", sim.depleted_row >= 0))
        seen.add(("delisted", bool((case["delist_rows"] >= 0).any())))
        reinvested = (sim.fills.quantity > 0) & ~np.isin(
            sim.fills.row, case["decisions"] - case["start_row"] + 1
        )
        seen.add(("reinvest", p.reinvest and bool(reinvested.any())))
        seen.add(("withdrawal", p.flow_amount < 0))
    for key in ("band", "depleted", "delisted", "reinvest", "withdrawal"):
        assert (key, True) in seen, key
    assert ("execution", "close") in seen
    assert ("execution", "next_open") in seen


@pytest.fixture(scope="module")
def bundled() -> Any:
    return load_dataset()


@pytest.mark.parametrize(
    ("execution", "band", "amount", "reinvest"),
    [
        ("next_open", None, 1000.0, True),
        ("close", 0.03, -500.0, True),
        ("next_open", 0.02, 0.0, True),
        ("next_open", 0.05, 2000.0, False),
        ("close", None, -5000.0, True),
    ],
)
def test_kernel_equals_the_python_loop_on_bundled_data(
    bundled: Any,
    monkeypatch: pytest.MonkeyPatch,
    execution: str,
    band: float | None,
    amount: float,
    reinvest: bool,
) -> None:
    """Whole backtests (a momentum strategy and a 60/40 allocation) on the bundled
    data, through the kernel and through the reference loop."""
    flows = None if amount == 0.0 else CashFlowPlan(amount=amount, frequency="monthly")
    base = BacktestConfig(
        start_date=dt.date(2012, 1, 3),
        end_date=dt.date(2016, 12, 30),
        execution=execution,  # type: ignore[arg-type]
        rebalance_band=band,
        cash_flows=flows,
        reinvest_dividends=reinvest,
        commission_rate=0.0005,
        slippage_rate=0.0005,
    )
    configs = [
        dataclasses.replace(base, allocation=(("SPY", 0.6), ("AGG", 0.4))),
        dataclasses.replace(base, strategy_id=2, rebalancing="monthly"),
    ]
    for config in configs:
        new = run_backtest(config, bundled)
        with monkeypatch.context() as patch:
            patch.setattr(
                simulator, "_simulate_portfolio", simulate_portfolio_reference
            )
            old = run_backtest(config, bundled)
        _assert_same(new.simulation, old.simulation)
        for key, value in old.metrics.items():
            if isinstance(value, float):
                assert new.metrics[key] == pytest.approx(value, rel=1e-9, abs=1e-12)
            else:
                assert new.metrics[key] == value


def test_progress_and_cancel_between_slices(bundled: Any) -> None:
    """The kernel runs in slices of days: progress rises between them and a cancel
    request stops the run at the next slice."""
    config = BacktestConfig(
        start_date=dt.date(2010, 1, 4),
        end_date=dt.date(2019, 12, 31),
        allocation=(("SPY", 0.6), ("AGG", 0.4)),
        cash_flows=CashFlowPlan(amount=100.0),
    )
    seen: list[float] = []
    run_backtest(config, bundled, on_progress=lambda f, day, n: seen.append(f))
    assert 10 <= len(seen) <= 60
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    calls = 0

    def cancel() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3  # past the setup checkpoints, inside the simulation

    progress: list[float] = []
    with pytest.raises(CancelledError, match="backtest cancelled"):
        run_backtest(
            config,
            bundled,
            on_progress=lambda f, day, n: progress.append(f),
            should_cancel=cancel,
        )
    assert progress and progress[-1] < 1.0


@pytest.mark.parametrize("seed", range(3))
def test_selected_dividend_rows_equal_the_window_scan(seed: int) -> None:
    """A run's dividends picked from the dataset's list (rows of the run, universe
    columns in any order) are what scanning the run's own matrix gives."""
    rng = np.random.default_rng(seed)
    x = rng.random((200, 30)) * (rng.random((200, 30)) < 0.1)
    entries = jit_portfolio.sparse_rows(x)
    cols = rng.permutation(30)[:17]  # a universe, not in dataset order
    colmap = np.full(30, -1, dtype=np.int64)
    colmap[cols] = np.arange(len(cols))
    r0, r1 = int(rng.integers(0, 50)), int(rng.integers(100, 200))
    got = jit_portfolio.select_rows(*entries, r0, r1, colmap)
    want = jit_portfolio.sparse_rows(np.ascontiguousarray(x[r0 : r1 + 1][:, cols]))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
