"""Synthetic market data: determinism, consistency, correlation, dividends."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.data import MarketData
from app.engine.errors import InvalidInputError
from app.engine.synthetic import DIVIDEND_INTERVAL_DAYS, generate

MATRICES = ("open", "high", "low", "close", "volume", "adj_close")


def _same(a: MarketData, b: MarketData) -> bool:
    return all(
        np.array_equal(getattr(a, m), getattr(b, m), equal_nan=True) for m in MATRICES
    )


def test_generate_same_seed_identical() -> None:
    first = generate(8, 300, seed=7, dividend_yield=0.02, late_listing_fraction=0.3)
    again = generate(8, 300, seed=7, dividend_yield=0.02, late_listing_fraction=0.3)
    assert _same(first, again)


def test_generate_different_seed_differs() -> None:
    a, b = generate(8, 300, seed=1), generate(8, 300, seed=2)
    assert not np.array_equal(a.close, b.close)
    assert (a.name, b.name) == ("synthetic-1", "synthetic-2")


def test_generate_shape_symbols_and_business_days() -> None:
    data = generate(12, 30, start="2021-01-02")  # a Saturday: rolls to Monday
    assert (data.n_days, data.n_symbols) == (30, 12)
    assert data.symbols[:2] == ("S0000", "S0001")
    assert data.dates[0] == np.datetime64("2021-01-04")
    assert np.is_busday(data.dates).all()
    assert np.all(np.diff(data.dates.astype(np.int64)) >= 1)


def test_generate_bars_consistent() -> None:
    data = generate(20, 500, seed=3, dividend_yield=0.04, late_listing_fraction=0.5)
    ok = ~np.isnan(data.close)
    assert np.all(data.low[ok] <= np.minimum(data.open[ok], data.close[ok]))
    assert np.all(data.high[ok] >= np.maximum(data.open[ok], data.close[ok]))
    assert np.all(data.low[ok] > 0)
    assert np.all(data.volume[ok] > 0)
    assert np.array_equal(np.isnan(data.volume), ~ok)


def test_generate_correlation_roughly_as_requested() -> None:
    data = generate(30, 2000, seed=5, market_correlation=0.6)
    returns = np.diff(np.log(data.close), axis=0)
    corr = np.corrcoef(returns.T)[np.triu_indices(30, 1)]
    assert corr.mean() == pytest.approx(0.6, abs=0.05)


def test_generate_volatility_and_drift_roughly_as_requested() -> None:
    data = generate(50, 2520, seed=11, annual_vol=0.2, annual_drift=0.1)
    returns = np.diff(data.close, axis=0) / data.close[:-1]
    assert returns.std() * np.sqrt(252) == pytest.approx(0.2, rel=0.05)
    assert returns.mean() * 252 == pytest.approx(0.1, abs=0.03)


def test_generate_dividends_recovered_by_market_data() -> None:
    data = generate(10, 400, seed=4, dividend_yield=0.03)
    div = data.dividends_per_share
    prev_close = data.close[:-1]
    paid = div[1:] > 0
    assert np.allclose(div[1:][paid] / prev_close[paid], 0.03 / 4, rtol=1e-9)
    per_symbol = paid.sum(axis=0)
    assert np.all(per_symbol >= 400 // DIVIDEND_INTERVAL_DAYS - 1)
    assert np.allclose(data.adj_close[-1], data.close[-1])


def test_generate_no_dividends_by_default() -> None:
    data = generate(5, 300, seed=4)
    assert np.array_equal(data.adj_close, data.close)
    assert not data.dividends_per_share.any()


def test_generate_late_listings_nan_before_first_day() -> None:
    data = generate(40, 250, seed=9, late_listing_fraction=0.25)
    late = np.flatnonzero(data.first_row > 0)
    assert len(late) == 10
    for j in late:
        first = data.first_row[j]
        assert np.isnan(data.close[:first, j]).all()
        assert not np.isnan(data.close[first:, j]).any()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_symbols": 0}, "n_symbols"),
        ({"n_days": 1}, "n_days"),
        ({"market_correlation": 1.5}, "market_correlation"),
        ({"annual_vol": -0.1}, "annual_vol"),
        ({"dividend_yield": 0.5}, "dividend_yield"),
        ({"late_listing_fraction": 2.0}, "late_listing_fraction"),
        ({"start": "not-a-date"}, "start"),
    ],
)
def test_generate_rejects_bad_arguments(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"n_symbols": 3, "n_days": 10, **kwargs}
    with pytest.raises(InvalidInputError) as info:
        generate(**args)  # type: ignore[arg-type]
    assert info.value.field == field
