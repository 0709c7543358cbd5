"""The compiled kernels: numpy-exact sums, and the clean error past 2**53 shares."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from app.engine import jit
from app.engine.backtest import run_backtest
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.engine.errors import EngineError, NumericLimitError
from app.engine.simulator import Fills
from app.engine.trades import match_fifo


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 15, 16, 17, 127, 128, 129, 500, 4099])
def test_pairwise_sum_is_bit_identical_to_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        a = rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 9, n)
        assert jit.pairwise_sum(a, n) == a.sum()  # exact, not approximately


def test_fifo_consumes_oldest_lots_first() -> None:
    # buys 10 @ row 0, 5 @ row 1 of column 0; sells 12 @ row 2: 10 from the first
    # lot and 2 from the second; 3 stay open.
    fills = Fills(
        row=np.array([0, 1, 2]),
        col=np.array([0, 0, 0]),
        quantity=np.array([10.0, 5.0, -12.0]),
        price=np.array([10.0, 11.0, 12.0]),
        commission=np.zeros(3),
    )
    t = match_fifo(fills, n_symbols=1, last_mark=np.array([13.0]), cum_dividends=None)
    np.testing.assert_array_equal(t.quantity, [10, 2, 3])
    np.testing.assert_array_equal(t.exit_row, [2, 2, -1])
    np.testing.assert_allclose(t.pnl, [20.0, 2.0, 6.0])


def test_selling_more_than_held_is_an_engine_error() -> None:
    fills = Fills(
        row=np.array([0, 1]),
        col=np.array([0, 0]),
        quantity=np.array([10.0, -11.0]),
        price=np.array([10.0, 12.0]),
        commission=np.zeros(2),
    )
    with pytest.raises(NumericLimitError, match="2\\*\\*53"):
        match_fifo(fills, n_symbols=1, last_mark=np.ones(1), cum_dividends=None)


def _wild_market(n_days: int = 2520, n_symbols: int = 5) -> MarketData:
    """Prices with +/-30 % daily noise: they compound towards 0 (the mean log return
    is negative), so a daily rebalance ends up buying > 2**53 shares."""
    rng = np.random.default_rng(3)
    close = 100.0 * np.cumprod(1.0 + rng.uniform(-0.3, 0.3, (n_days, n_symbols)), 0)
    dates = np.busday_offset("2010-01-04", np.arange(n_days), roll="forward")
    return MarketData(
        name="wild",
        dates=dates.astype("datetime64[D]"),
        symbols=tuple(f"W{i}" for i in range(n_symbols)),
        open=close,
        high=close,
        low=close,
        close=close,
        volume=np.full_like(close, 1e6),
        adj_close=close,
    )


def test_share_counts_beyond_2_53_raise_a_clear_engine_error() -> None:
    data = _wild_market()
    assert data.close[-1].max() < 1e-6  # the premise: prices collapse
    days = data.dates.astype("datetime64[D]")
    config = BacktestConfig(
        start_date=days[0].item(),
        end_date=days[-1].item(),
        rebalancing="daily",
        dividends=False,
    )
    with pytest.raises(NumericLimitError) as err:
        run_backtest(config, data)
    assert isinstance(err.value, EngineError)
    assert "2**53" in err.value.message
    assert err.value.col is not None
    assert err.value.row is not None
    assert 0 < err.value.row < data.n_days
    # the run is fine up to the day before: shorter ranges succeed
    end = days[err.value.row - 2].item()
    short = run_backtest(
        BacktestConfig(
            start_date=config.start_date,
            end_date=end,
            rebalancing="daily",
            dividends=False,
        ),
        data,
    )
    assert short.final_equity > 0
    assert isinstance(dt.date.today(), dt.date)


def test_warm_up_reports_seconds() -> None:
    assert jit.warm_up() >= 0.0
