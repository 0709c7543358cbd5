"""Factors and their kernels against pandas' rolling/ewm equivalents."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.data import MarketData
from app.engine.errors import InvalidInputError
from app.engine.strategies import kernels
from app.engine.strategies.factors import FACTOR_NAMES, Factor

TOL = 1e-10  # relative and absolute


def make_market(
    n_days: int = 300, n_symbols: int = 6, *, seed: int = 0, level: float = 50.0
) -> MarketData:
    """Random-walk prices with the gaps real data has: a late listing (column 0), a
    trading halt (column 1), a delisting (column 2); adj_close < close (dividends)."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0003, 0.02, (n_days, n_symbols))
    adj = level * np.exp(np.cumsum(returns, axis=0))
    close = adj * np.linspace(1.2, 1.0, n_days)[:, None]  # back-adjustment factor
    volume = rng.uniform(1e4, 1e6, (n_days, n_symbols))
    gaps = [(0, slice(0, n_days // 5)), (1, slice(n_days // 2, n_days // 2 + 3))]
    gaps.append((2 % n_symbols, slice(n_days - n_days // 6, n_days)))
    for col, rows in gaps:
        for arr in (adj, close, volume):
            arr[rows, col] = np.nan
    return MarketData(
        name="test",
        dates=np.datetime64("2015-01-01") + np.arange(n_days),
        symbols=tuple(f"S{i}" for i in range(n_symbols)),
        open=close.copy(),
        high=close * 1.01,
        low=close * 0.99,
        close=close,
        volume=volume,
        adj_close=adj,
    )


def reference(data: MarketData, name: str, window: int | None) -> np.ndarray:
    """Each factor written the obvious pandas way, over every row."""
    close, adj = pd.DataFrame(data.close), pd.DataFrame(data.adj_close)
    w = window or 0
    ref = {
        "close": lambda: close,
        "return": lambda: adj / adj.shift(w) - 1,
        "sma": lambda: close.rolling(w).mean(),
        "ema": lambda: close.ewm(span=w, adjust=False, min_periods=w).mean(),
        "volatility": lambda: (
            adj.pct_change(fill_method=None).rolling(w).std() * math.sqrt(252)
        ),
        "rsi": lambda: rsi_reference(adj, w),
        "avg_dollar_volume": lambda: (
            (close * pd.DataFrame(data.volume)).rolling(w).mean()
        ),
        "drawdown_from_high": lambda: adj / adj.rolling(w).max() - 1,
    }[name]()
    out = np.array(ref.to_numpy(dtype=float))  # copy: pandas may hand out a view
    out[np.isnan(data.close)] = np.nan
    return out


def rsi_reference(adj: pd.DataFrame, window: int) -> pd.DataFrame:
    change = adj.diff()
    alpha = 1 / window
    gain = change.clip(lower=0).ewm(alpha=alpha, adjust=False, min_periods=window)
    loss = (-change).clip(lower=0).ewm(alpha=alpha, adjust=False, min_periods=window)
    return 100 - 100 / (1 + gain.mean() / loss.mean())


def test_rsi_matches_a_plain_wilder_loop() -> None:
    data = make_market(200, 6, seed=9)
    prices = data.adj_close[:, 4]  # a column without gaps
    window, gain, loss = 14, 0.0, 0.0
    expected = np.full(200, np.nan)
    for t in range(1, 200):
        up, down = max(prices[t] - prices[t - 1], 0), max(prices[t - 1] - prices[t], 0)
        if t == 1:
            gain, loss = up, down  # seeded with the first change
        else:
            gain, loss = gain + (up - gain) / window, loss + (down - loss) / window
        if t >= window:
            expected[t] = 100 - 100 / (1 + gain / loss)
    got = Factor("rsi", window)(data, np.arange(200, dtype=np.int64))[:, 4]
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL)


WINDOWED = [(n, w) for n in FACTOR_NAMES if n != "close" for w in (2, 5, 21)]


@pytest.mark.parametrize(("name", "window"), [("close", None), *WINDOWED])
def test_factor_matches_pandas_at_every_row(name: str, window: int | None) -> None:
    data = make_market()
    rows = np.arange(data.n_days, dtype=np.int64)
    got = Factor(name, window)(data, rows)
    np.testing.assert_allclose(got, reference(data, name, window), rtol=TOL, atol=TOL)


@pytest.mark.parametrize(("name", "window"), [("close", None), *WINDOWED])
def test_factor_matches_pandas_at_sparse_rows(name: str, window: int | None) -> None:
    data = make_market()
    rows = np.array([0, 1, 3, 30, 31, 70, 150, 151, 152, 240, 299], dtype=np.int64)
    got = Factor(name, window)(data, rows)
    np.testing.assert_allclose(
        got, reference(data, name, window)[rows], rtol=TOL, atol=TOL
    )


def test_sma_is_accurate_for_high_prices_and_long_history() -> None:
    data = make_market(2520, 3, level=5000.0, seed=3)
    rows = np.arange(200, 2520, 21, dtype=np.int64)
    got = Factor("sma", 200)(data, rows)
    np.testing.assert_allclose(
        got, reference(data, "sma", 200)[rows], rtol=TOL, atol=TOL
    )


def test_volatility_is_accurate_after_an_extreme_return() -> None:
    data = make_market(600, 2, seed=4)
    adj = data.adj_close.copy()
    adj[100:, 1] *= 10.0  # a +900% day early in the history
    spiked = dataclasses.replace(data, adj_close=adj)
    rows = np.arange(200, 600, 7, dtype=np.int64)
    got = Factor("volatility", 63)(spiked, rows)
    np.testing.assert_allclose(
        got, reference(spiked, "volatility", 63)[rows], rtol=TOL, atol=TOL
    )


def test_factor_values_by_hand() -> None:
    close = np.array([[1.0], [2.0], [3.0], [4.0], [6.0]])
    data = MarketData(
        name="hand",
        dates=np.datetime64("2020-01-01") + np.arange(5),
        symbols=("A",),
        open=close,
        high=close,
        low=close,
        close=close,
        volume=np.full_like(close, 10.0),
        adj_close=close / 2,
    )
    last = np.array([4], dtype=np.int64)
    assert Factor("sma", 3)(data, last)[0, 0] == pytest.approx(13 / 3)
    assert Factor("return", 2)(data, last)[0, 0] == pytest.approx(6 / 3 - 1)
    assert Factor("avg_dollar_volume", 2)(data, last)[0, 0] == pytest.approx(50.0)
    assert Factor("drawdown_from_high", 3)(data, last)[0, 0] == 0.0
    assert Factor("rsi", 2)(data, last)[0, 0] == 100.0  # only gains
    returns = np.array([3 / 2 - 1, 4 / 3 - 1, 6 / 4 - 1])
    expected = np.std(returns, ddof=1) * math.sqrt(252)
    assert Factor("volatility", 3)(data, last)[0, 0] == pytest.approx(expected)
    assert np.isnan(Factor("volatility", 4)(data, np.array([3]))[0, 0])


def test_factor_is_nan_where_not_trading() -> None:
    data = make_market()
    rows = np.arange(data.n_days, dtype=np.int64)
    for name in FACTOR_NAMES:
        got = Factor(name, None if name == "close" else 3)(data, rows)
        assert np.all(np.isnan(got[np.isnan(data.close)])), name


def test_factor_does_not_mutate_inputs() -> None:
    data = make_market()
    before = {k: getattr(data, k).copy() for k in ("close", "adj_close", "volume")}
    rows = np.arange(50, 300, 10, dtype=np.int64)
    rows_before = rows.copy()
    for name in FACTOR_NAMES:
        Factor(name, None if name == "close" else 10)(data, rows)
    for key, arr in before.items():
        np.testing.assert_array_equal(getattr(data, key), arr)
    np.testing.assert_array_equal(rows, rows_before)


@pytest.mark.parametrize(
    ("name", "window", "message"),
    [
        ("foo", 3, "unknown factor 'foo'; allowed: close, return"),
        ("close", 3, "close takes no window"),
        ("sma", None, "between 1 and 756"),
        ("volatility", 1, "between 2 and 756"),
        ("rsi", 757, "between 1 and 756"),
    ],
)
def test_factor_rejects_bad_spec(name: str, window: int | None, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Factor(name, window)


@st.composite
def rows_and_window(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    window = draw(st.integers(1, 40))
    picked = draw(st.sets(st.integers(0, 119), min_size=1, max_size=60))
    return np.array(sorted(picked), dtype=np.int64), window


@settings(max_examples=60, deadline=None)
@given(rows_and_window(), st.integers(0, 2**31))
def test_rolling_kernels_match_pandas(case: tuple[np.ndarray, int], seed: int) -> None:
    rows, window = case
    rng = np.random.default_rng(seed)
    values = rng.normal(100, 5, (120, 3))
    values[rng.random(values.shape) < 0.05] = np.nan
    frame = pd.DataFrame(values).rolling(window)
    np.testing.assert_allclose(
        kernels.rolling_mean_at(values, rows, window),
        frame.mean().to_numpy()[rows],
        rtol=TOL,
        atol=TOL,
    )
    np.testing.assert_allclose(
        kernels.rolling_max_at(values, rows, window), frame.max().to_numpy()[rows]
    )
    if window >= 2:
        np.testing.assert_allclose(
            kernels.rolling_std_at(values, rows, window),
            frame.std().to_numpy()[rows],
            rtol=TOL,
            atol=TOL,
        )
