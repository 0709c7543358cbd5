"""Final equity against bt (an independent, well-known backtester) on real data.

bt is configured to reproduce our conventions: close prices (dividends off), the
rebalance calendar of :mod:`app.engine.schedule` (RunMonthly on the first date and on
period ends, never on the last date), whole shares, and our cost model as a bt
commission. The momentum run feeds bt our exact score so that only the simulators are
compared. Run with ``pytest -m benchmark tests/unit/test_bt_parity.py``.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.data.store import load_dataset
from app.engine.backtest import run_backtest
from app.engine.config import BacktestConfig
from app.engine.data import MarketData

# scripts/bt_compat.py configures bt to the engine's sizing convention.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

pytestmark = pytest.mark.benchmark

CAPITAL = 1_000_000.0
N_SYMBOLS, TOP_N, YEARS = 20, 5, 2
LOOKBACK, SKIP = 252, 21
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def data() -> MarketData:
    # bt is imported here, not at collection: the default run deselects this module
    # and should not pay for importing bt.
    pytest.importorskip("bt")
    return load_dataset()


@pytest.fixture(scope="module")
def window(data: MarketData) -> tuple[int, int, list[str]]:
    """The last two years and the first 20 stocks with a close on every session."""
    end = data.n_days - 1
    start = data.row_of(data.dates[end] - np.timedelta64(int(YEARS * 365.25), "D"))
    stocks = sorted(data.stocks)
    full = ~np.isnan(data.close[start : end + 1][:, data.columns(stocks)]).any(axis=0)
    return start, end, [s for s, ok in zip(stocks, full, strict=True) if ok][:N_SYMBOLS]


def _ours(
    data: MarketData,
    window: tuple[int, int, list[str]],
    *,
    strategy_id: int,
    params: dict[str, int],
    commission: float,
    slippage: float,
) -> float:
    start, end, symbols = window
    config = BacktestConfig(
        start_date=_day(data, start),
        end_date=_day(data, end),
        initial_capital=CAPITAL,
        rebalancing="monthly",
        commission_rate=commission,
        slippage_rate=slippage,
        execution="close",
        dividends=False,
        symbols=tuple(symbols),
        strategy_id=strategy_id,
        strategy_params=params,
    )
    return run_backtest(config, data).final_equity


def _day(data: MarketData, row: int) -> dt.date:
    return data.dates[row].astype("datetime64[D]").item()


def _bt(
    data: MarketData,
    window: tuple[int, int, list[str]],
    *,
    momentum: bool,
    commission: float,
    slippage: float,
) -> float:
    import bt  # noqa: PLC0415 - optional dependency, see the data fixture
    from bt_compat import CloseDropped  # noqa: PLC0415 - scripts/, added to sys.path

    start, end, symbols = window
    cols = data.columns(symbols)
    index = pd.DatetimeIndex(data.dates[start : end + 1])
    close = pd.DataFrame(
        data.close[start : end + 1][:, cols], index=index, columns=symbols
    )
    algos = [
        bt.algos.RunMonthly(
            run_on_first_date=True, run_on_end_of_period=True, run_on_last_date=False
        ),
        bt.algos.SelectAll(),
    ]
    if momentum:
        # Our score on the full history (warm-up before the window), then the window.
        adj = pd.DataFrame(
            data.adj_close[:, cols], index=pd.DatetimeIndex(data.dates), columns=symbols
        )
        score = (adj.shift(SKIP) / adj.shift(LOOKBACK) - 1.0).loc[index]
        algos += [
            bt.algos.SetStat(score),
            bt.algos.SelectN(TOP_N, sort_descending=True),
        ]
    algos += [bt.algos.WeighEqually(), CloseDropped(), bt.algos.Rebalance()]
    buy_extra = (1 + slippage) * (1 + commission) - 1
    sell_extra = 1 - (1 - slippage) * (1 - commission)

    def fee(q: float, p: float) -> float:
        return abs(q) * p * (buy_extra if q > 0 else sell_extra)

    test = bt.Backtest(
        bt.Strategy("s", algos),
        close,
        initial_capital=CAPITAL,
        commissions=fee,
        integer_positions=True,
        progress_bar=False,
    )
    return float(bt.run(test).backtests["s"].strategy.values.iloc[-1])


@pytest.mark.parametrize(("commission", "slippage"), [(0.0, 0.0), (0.001, 0.0005)])
def test_equal_weight_matches_bt(data, window, commission, slippage):
    ours = _ours(
        data, window, strategy_id=1, params={}, commission=commission, slippage=slippage
    )
    theirs = _bt(data, window, momentum=False, commission=commission, slippage=slippage)
    assert ours == pytest.approx(theirs, rel=TOLERANCE)


def test_momentum_matches_bt_without_costs(data, window):
    ours = _ours(
        data,
        window,
        strategy_id=2,
        params={"top_n": TOP_N},
        commission=0.0,
        slippage=0.0,
    )
    theirs = _bt(data, window, momentum=True, commission=0.0, slippage=0.0)
    assert ours == pytest.approx(theirs, rel=TOLERANCE)


def test_momentum_matches_bt_with_costs(data, window):
    ours = _ours(
        data,
        window,
        strategy_id=2,
        params={"top_n": TOP_N},
        commission=0.001,
        slippage=0.0005,
    )
    theirs = _bt(data, window, momentum=True, commission=0.001, slippage=0.0005)
    assert ours == pytest.approx(theirs, rel=TOLERANCE)
