"""Property tests of the simulator and the ledger on random markets (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.simulator import Costs, Simulation, simulate
from app.engine.trades import match_fifo

CAPITAL = 50_000.0


@st.composite
def markets(draw: st.DrawFn) -> dict[str, object]:
    n_days = draw(st.integers(3, 40))
    n_sym = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.03, (n_days, n_sym)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n_days, n_sym)))
    # Some symbols list late: NaN before their first day.
    for c in range(n_sym):
        if rng.random() < 0.3:
            first = int(rng.integers(0, n_days))
            close[:first, c] = np.nan
            open_[:first, c] = np.nan
    dividends = np.where(rng.random((n_days, n_sym)) < 0.05, 0.4, 0.0)
    n_dec = draw(st.integers(0, n_days - 1))
    decisions = np.sort(rng.choice(n_days - 1, size=n_dec, replace=False)).astype(
        np.int64
    )
    raw = rng.random((n_dec, n_sym)) * (rng.random((n_dec, n_sym)) < 0.7)
    weights = raw / np.maximum(raw.sum(axis=1, keepdims=True), 1.0)
    weights = np.where(np.isnan(close[decisions]), 0.0, weights)
    return {
        "open_": open_,
        "close": close,
        "dividends": dividends if draw(st.booleans()) else None,
        "decisions": decisions,
        "weights": weights,
        "start_row": 0,
        "end_row": n_days - 1,
        "execution": draw(st.sampled_from(["next_open", "close"])),
        "initial_capital": CAPITAL,
        "costs": Costs(draw(st.floats(0, 0.01)), draw(st.floats(0, 0.01))),
    }


def run(kw: dict[str, object]) -> Simulation:
    return simulate(**kw)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(markets())
def test_simulate_bookkeeping_invariants(kw: dict[str, object]) -> None:
    sim = run(kw)
    mark = sim.mark
    np.testing.assert_allclose(
        sim.equity, sim.cash + (sim.positions * mark).sum(axis=1), rtol=1e-12
    )
    assert sim.cash.min() >= -1e-9 * CAPITAL
    assert sim.positions.min() >= 0
    np.testing.assert_array_equal(sim.positions, np.round(sim.positions))


@settings(max_examples=150, deadline=None)
@given(markets())
def test_trades_pnl_adds_up_to_equity_change(kw: dict[str, object]) -> None:
    sim = run(kw)
    divs = kw["dividends"]
    cum = None if divs is None else np.cumsum(divs, axis=0)  # type: ignore[call-overload]
    t = match_fifo(
        sim.fills,
        n_symbols=sim.mark.shape[1],
        last_mark=sim.mark[-1],
        cum_dividends=cum,
    )
    assert abs(t.pnl.sum() - (sim.equity[-1] - CAPITAL)) <= 1e-7 * CAPITAL
    bought = sim.fills.quantity[sim.fills.quantity > 0].sum()
    assert t.quantity.sum() == bought


@settings(max_examples=100, deadline=None)
@given(markets())
def test_simulate_never_mutates_inputs(kw: dict[str, object]) -> None:
    copies = {k: v.copy() for k, v in kw.items() if isinstance(v, np.ndarray)}
    run(kw)
    for k, v in copies.items():
        np.testing.assert_array_equal(kw[k], v)


@settings(max_examples=100, deadline=None)
@given(markets(), st.data())
def test_simulate_has_no_look_ahead(kw: dict[str, object], data: st.DataObject) -> None:
    close = kw["close"]
    n_days = close.shape[0]  # type: ignore[attr-defined]
    t = data.draw(st.integers(0, n_days - 2))
    base = run(kw)
    changed = dict(kw)
    rng = np.random.default_rng(t)
    for key in ("open_", "close"):
        arr = kw[key].copy()  # type: ignore[attr-defined]
        arr[t + 1 :] *= rng.uniform(0.5, 1.5, arr[t + 1 :].shape)
        changed[key] = arr
    # Decisions after t may differ too: a strategy would see different data there.
    after = kw["decisions"] > t  # type: ignore[operator]
    w = kw["weights"].copy()  # type: ignore[attr-defined]
    w[after] = rng.random(w[after].shape) / max(w.shape[1], 1)
    changed["weights"] = np.where(np.isnan(changed["close"][kw["decisions"]]), 0.0, w)  # type: ignore[index]
    other = run(changed)
    np.testing.assert_array_equal(base.equity[: t + 1], other.equity[: t + 1])
    early = base.fills.row <= t
    np.testing.assert_array_equal(
        base.fills.quantity[early], other.fills.quantity[other.fills.row <= t]
    )


@settings(max_examples=100, deadline=None)
@given(markets())
def test_simulate_costs_never_raise_equity_on_flat_prices(
    kw: dict[str, object],
) -> None:
    # With moving prices, costs CAN raise final equity: fewer shares bought of a stock
    # that then falls lose less. On flat prices every cost is a pure loss.
    flat = np.where(np.isnan(kw["close"]), np.nan, 40.0)  # type: ignore[call-overload]
    kw = {**kw, "open_": flat, "close": flat, "dividends": None}
    sim = run(kw)
    assert np.all(np.diff(sim.equity) <= 1e-9)
    assert sim.equity[-1] <= CAPITAL + 1e-9
    free = run({**kw, "costs": Costs(0.0, 0.0)})
    np.testing.assert_allclose(free.equity, CAPITAL)


@settings(max_examples=50, deadline=None)
@given(markets())
def test_simulate_without_decisions_is_flat(kw: dict[str, object]) -> None:
    n_sym = kw["close"].shape[1]  # type: ignore[attr-defined]
    kw = {
        **kw,
        "decisions": np.zeros(0, dtype=np.int64),
        "weights": np.zeros((0, n_sym)),
    }
    sim = run(kw)
    np.testing.assert_array_equal(sim.equity, CAPITAL)
