"""Performance metrics: hand-computed golden numbers, edge cases, JSON safety, and a
cross-check against empyrical-reloaded on real prices from the bundled dataset."""

from __future__ import annotations

import json
import math
from typing import Any

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.errors import InvalidInputError
from app.engine.metrics import (
    BENCHMARK_KEYS,
    compute_metrics,
    daily_returns,
    drawdown_series,
    monthly_returns,
)

KEYS = [
    "total_return", "cagr", "volatility", "sharpe_ratio", "sortino_ratio",
    "max_drawdown", "max_drawdown_duration_days", "calmar_ratio", "win_rate",
    "profit_factor", "total_trades", "avg_trade_return", "best_trade_return",
    "worst_trade_return", "exposure", "turnover", "final_equity",
    "benchmark_total_return", "benchmark_cagr", "alpha", "beta", "correlation",
    "tracking_error", "information_ratio",
]  # fmt: skip
EMPTY = np.array([], dtype=float)
REL = 1e-12  # golden numbers: only float rounding separates code and hand arithmetic
REL_EMPYRICAL = 1e-9

# The six-day path used by several golden tests (a weekend between Fri 5 and Mon 8):
# returns r = [+10 %, -10 %, 0, +10 %, +10 %]
SIX_DATES = np.array(
    [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
        "2024-01-08",
        "2024-01-09",
    ],
    dtype="datetime64[D]",
)
SIX_EQUITY = np.array([100.0, 110.0, 99.0, 99.0, 108.9, 119.79])


def metrics(dates: Any, equity: Any, **overrides: Any) -> dict[str, Any]:
    """compute_metrics with a no-trade default for everything but the equity curve."""
    equity = np.asarray(equity, dtype=float)
    kwargs: dict[str, Any] = {
        "dates": np.asarray(dates, dtype="datetime64[D]"),
        "equity": equity,
        "invested_value": np.zeros_like(equity),
        "closed_trade_pnl": EMPTY,
        "closed_trade_returns": EMPTY,
        "total_trades": 0,
        "traded_notional": 0.0,
    }
    kwargs.update(overrides)
    return compute_metrics(**kwargs)


def consecutive_days(n: int, start: str = "2021-01-04") -> np.ndarray:
    first = np.datetime64(start, "D")
    return np.arange(first, first + n, dtype="datetime64[D]")


# ------------------------------------------------------------------ golden numbers
def test_daily_returns_six_day_path() -> None:
    np.testing.assert_allclose(
        daily_returns(SIX_EQUITY), [0.1, -0.1, 0.0, 0.1, 0.1], rtol=REL, atol=1e-15
    )


def test_compute_metrics_six_day_path_return_statistics() -> None:
    m = metrics(SIX_DATES, SIX_EQUITY)
    # mean r = 0.2 / 5 = 0.04; deviations 0.06, -0.14, -0.04, 0.06, 0.06
    # sample var = (3 * 0.0036 + 0.0196 + 0.0016) / 4 = 0.032 / 4 = 0.008
    assert m["volatility"] == pytest.approx(math.sqrt(0.008 * 252), rel=REL)
    assert m["sharpe_ratio"] == pytest.approx(
        0.04 / math.sqrt(0.008) * 252**0.5, rel=REL
    )
    # downside: min(r, 0) = [0, -0.1, 0, 0, 0] -> mean of squares over ALL 5 = 0.002
    expected_sortino = 0.04 * 252 / (math.sqrt(0.002) * math.sqrt(252))
    assert m["sortino_ratio"] == pytest.approx(expected_sortino, rel=REL)


def test_compute_metrics_six_day_path_growth_and_drawdown() -> None:
    m = metrics(SIX_DATES, SIX_EQUITY)
    # 119.79 / 100 - 1; 7 calendar days from Jan 2 to Jan 9
    assert m["total_return"] == pytest.approx(0.1979, rel=REL)
    assert m["cagr"] == pytest.approx(1.1979 ** (365.25 / 7) - 1, rel=REL)
    # peak 110 on Jan 3, trough 99: 99 / 110 - 1 = -0.1; 108.9 on Jan 8 is still below
    # 110, 119.79 on Jan 9 regains it: Jan 3 -> Jan 9 = 6 days
    assert m["max_drawdown"] == pytest.approx(-0.1, rel=REL)
    assert m["max_drawdown_duration_days"] == 6
    assert m["calmar_ratio"] == pytest.approx(m["cagr"] / 0.1, rel=REL)
    assert m["final_equity"] == 119.79


def test_compute_metrics_risk_free_rate_converted_to_daily() -> None:
    rf_d = 1.05 ** (1 / 252) - 1  # 5 % a year -> 0.000193630... a day
    m = metrics(SIX_DATES, SIX_EQUITY, risk_free_rate=0.05)
    # subtracting a constant leaves the std at sqrt(0.008)
    assert m["sharpe_ratio"] == pytest.approx(
        (0.04 - rf_d) / math.sqrt(0.008) * math.sqrt(252), rel=1e-10
    )
    # r - rf_d: only the -10 % day is below zero, and the 0 % day (0 - rf_d) too
    downside = math.sqrt(((0.1 + rf_d) ** 2 + rf_d**2) / 5) * math.sqrt(252)
    assert m["sortino_ratio"] == pytest.approx(
        (0.04 - rf_d) * 252 / downside, rel=1e-10
    )


def test_drawdown_series_without_recovery() -> None:
    equity = [100.0, 120.0, 90.0, 96.0, 108.0]
    # running max 100, 120, 120, 120, 120 -> 0, 0, 90/120-1, 96/120-1, 108/120-1
    np.testing.assert_allclose(
        drawdown_series(equity), [0.0, 0.0, -0.25, -0.2, -0.1], rtol=REL, atol=1e-15
    )


def test_compute_metrics_drawdown_without_recovery_lasts_until_last_date() -> None:
    dates = ["2021-03-01", "2021-03-05", "2021-03-10", "2021-03-20", "2021-04-04"]
    m = metrics(dates, [100.0, 120.0, 90.0, 96.0, 108.0])
    assert m["max_drawdown"] == pytest.approx(-0.25, rel=REL)
    # peak on Mar 5, never regained: Mar 5 -> Apr 4 = 26 + 4 = 30 days
    assert m["max_drawdown_duration_days"] == 30


def test_compute_metrics_drawdown_duration_takes_longest_spell() -> None:
    dates = ["2023-01-01", "2023-01-10", "2023-01-21", "2023-01-22", "2023-01-23"]
    dates += ["2023-01-24", "2023-01-25"]
    equity = [100.0, 90.0, 100.0, 105.0, 95.0, 104.0, 106.0]
    m = metrics(dates, equity)
    # spell 1: peak 100 on Jan 1, back to exactly 100 (regained: >=) on Jan 21 = 20 days
    # spell 2: peak 105 on Jan 22, first >= 105 on Jan 25 = 3 days
    # depth: spell 1 90 / 100 - 1 = -0.1 is deeper than spell 2 95 / 105 - 1 = -0.095
    assert m["max_drawdown_duration_days"] == 20
    assert m["max_drawdown"] == pytest.approx(-0.1, rel=REL)


def test_monthly_returns_across_month_boundaries() -> None:
    dates = ["2024-01-30", "2024-01-31", "2024-02-01", "2024-02-29", "2024-03-01"]
    equity = [100.0, 102.0, 96.9, 107.1, 107.1]
    # Jan: 102 / 100 (the start) - 1; Feb: 107.1 / 102 - 1; Mar: 107.1 / 107.1 - 1
    assert monthly_returns(np.array(dates, dtype="datetime64[D]"), equity) == {
        "2024-01": pytest.approx(0.02, rel=REL),
        "2024-02": pytest.approx(0.05, rel=REL),
        "2024-03": 0.0,
    }


def test_compute_metrics_trade_statistics() -> None:
    pnl = np.array([50.0, -20.0, 30.0, -10.0, 0.0])
    returns = np.array([0.05, -0.02, 0.03, -0.01, 0.0])
    m = metrics(
        SIX_DATES,
        SIX_EQUITY,
        closed_trade_pnl=pnl,
        closed_trade_returns=returns,
        total_trades=6,
    )
    assert m["win_rate"] == pytest.approx(2 / 5, rel=REL)  # 50 and 30; 0 is no win
    assert m["profit_factor"] == pytest.approx((50 + 30) / (20 + 10), rel=REL)
    assert m["avg_trade_return"] == pytest.approx(0.05 / 5, rel=REL)  # sum is 0.05
    assert m["best_trade_return"] == 0.05
    assert m["worst_trade_return"] == -0.02
    assert m["total_trades"] == 6  # 5 closed + 1 still open


def test_compute_metrics_exposure_and_turnover() -> None:
    dates = ["2021-01-01", "2021-07-01", "2022-01-01"]  # 365 calendar days
    m = metrics(
        dates,
        [100.0, 200.0, 300.0],
        invested_value=[0.0, 100.0, 300.0],
        traded_notional=1200.0,
    )
    assert m["exposure"] == pytest.approx((0 + 0.5 + 1) / 3, rel=REL)
    # one-way: 1200 / 2 = 600 traded over mean equity 200 = 3 in 365 / 365.25 years
    assert m["turnover"] == pytest.approx(3 * 365.25 / 365, rel=REL)


def test_compute_metrics_cagr_over_two_years() -> None:
    m = metrics(["2020-01-01", "2022-01-01"], [100.0, 121.0])  # 366 + 365 = 731 days
    assert m["cagr"] == pytest.approx(1.21 ** (365.25 / 731) - 1, rel=REL)


def test_compute_metrics_benchmark_statistics() -> None:
    r_p = np.array([0.02, -0.01, 0.03, 0.0])
    r_b = np.array([0.01, -0.01, 0.02, 0.0])
    equity = 100 * np.cumprod(np.r_[1.0, 1 + r_p])
    bench = 50 * np.cumprod(np.r_[1.0, 1 + r_b])
    m = metrics(consecutive_days(5), equity, benchmark_equity=bench)
    # mean r_p = 0.01, dp = [0.01, -0.02, 0.02, -0.01]
    # mean r_b = 0.005, db = [0.005, -0.015, 0.015, -0.005]
    # sum dp*db = 0.00005 + 0.0003 + 0.0003 + 0.00005 = 0.0007
    # sum db^2 = 2 * 0.000025 + 2 * 0.000225 = 0.0005; sum dp^2 = 0.001
    assert m["beta"] == pytest.approx(0.0007 / 0.0005, rel=1e-10)  # 1.4
    assert m["correlation"] == pytest.approx(0.0007 / math.sqrt(0.001 * 0.0005), 1e-10)
    # Jensen: mean(r_p - 1.4 r_b) = 0.01 - 1.4 * 0.005 = 0.003, compounded 252 times
    assert m["alpha"] == pytest.approx(1.003**252 - 1, rel=1e-9)
    # active = [0.01, 0, 0.01, 0]: mean 0.005, sample var = 4 * 0.005^2 / 3
    te = math.sqrt(4 * 0.005**2 / 3) * math.sqrt(252)
    assert m["tracking_error"] == pytest.approx(te, rel=1e-10)
    assert m["information_ratio"] == pytest.approx(0.005 * 252 / te, rel=1e-10)
    assert m["benchmark_total_return"] == pytest.approx(1.01 * 0.99 * 1.02 - 1, rel=REL)


# ---------------------------------------------------------------------- edge cases
def test_compute_metrics_key_names_and_order() -> None:
    assert list(metrics(SIX_DATES, SIX_EQUITY)) == KEYS
    assert tuple(KEYS[-7:]) == BENCHMARK_KEYS


def test_compute_metrics_without_benchmark_has_none_benchmark_keys() -> None:
    m = metrics(SIX_DATES, SIX_EQUITY)
    assert all(m[k] is None for k in BENCHMARK_KEYS)


def test_compute_metrics_flat_equity_no_trades() -> None:
    m = metrics(consecutive_days(10), np.full(10, 1000.0))
    assert m == {
        "total_return": 0.0,
        "cagr": 0.0,
        "volatility": 0.0,
        "sharpe_ratio": None,
        "sortino_ratio": None,
        "max_drawdown": 0.0,
        "max_drawdown_duration_days": 0,
        "calmar_ratio": None,
        "win_rate": None,
        "profit_factor": None,
        "total_trades": 0,
        "avg_trade_return": None,
        "best_trade_return": None,
        "worst_trade_return": None,
        "exposure": 0.0,
        "turnover": 0.0,
        "final_equity": 1000.0,
        **dict.fromkeys(BENCHMARK_KEYS),
    }


def test_compute_metrics_flat_equity_with_risk_free_rate() -> None:
    m = metrics(consecutive_days(10), np.full(10, 1000.0), risk_free_rate=0.04)
    # every excess return is -rf_d: zero dispersion, so no Sharpe; the downside is
    # rf_d on every day, so Sortino = -rf_d * 252 / (rf_d * sqrt(252)) = -sqrt(252)
    assert m["sharpe_ratio"] is None
    assert m["sortino_ratio"] == pytest.approx(-math.sqrt(252), rel=1e-9)


def test_compute_metrics_constant_growth_has_no_sharpe() -> None:
    # identical daily returns up to float residue: std is 0, not 1e-17
    m = metrics(consecutive_days(30), 100 * 1.001 ** np.arange(30))
    assert m["volatility"] == 0.0
    assert m["sharpe_ratio"] is None
    assert m["sortino_ratio"] is None  # no downside either


def test_compute_metrics_single_day() -> None:
    m = metrics(SIX_DATES[:1], [5000.0], benchmark_equity=[300.0])
    assert m["total_return"] == 0.0 and m["cagr"] == 0.0
    assert m["max_drawdown"] == 0.0 and m["max_drawdown_duration_days"] == 0
    assert m["volatility"] is None and m["sharpe_ratio"] is None
    assert m["exposure"] == 0.0 and m["turnover"] == 0.0
    assert m["benchmark_total_return"] == 0.0 and m["beta"] is None
    assert m["final_equity"] == 5000.0


def test_compute_metrics_single_day_with_fills_has_no_turnover() -> None:
    m = metrics(SIX_DATES[:1], [5000.0], traded_notional=4000.0)
    assert m["turnover"] is None


def test_compute_metrics_two_days_has_no_volatility() -> None:
    m = metrics(SIX_DATES[:2], [100.0, 101.0], benchmark_equity=[10.0, 11.0])
    assert m["volatility"] is None  # one return: no sample standard deviation
    assert m["total_return"] == pytest.approx(0.01, rel=REL)
    assert m["tracking_error"] is None and m["alpha"] is None


def test_compute_metrics_all_winning_trades_has_no_profit_factor() -> None:
    m = metrics(
        SIX_DATES,
        SIX_EQUITY,
        closed_trade_pnl=[5.0, 7.0],
        closed_trade_returns=[0.01, 0.02],
        total_trades=2,
    )
    assert m["win_rate"] == 1.0
    assert m["profit_factor"] is None


def test_compute_metrics_all_losing_trades_has_zero_profit_factor() -> None:
    m = metrics(
        SIX_DATES,
        SIX_EQUITY,
        closed_trade_pnl=[-5.0, -7.0],
        closed_trade_returns=[-0.01, -0.02],
        total_trades=3,
    )
    assert m["win_rate"] == 0.0
    assert m["profit_factor"] == 0.0


def test_compute_metrics_flat_benchmark() -> None:
    m = metrics(SIX_DATES, SIX_EQUITY, benchmark_equity=np.full(6, 400.0))
    assert m["benchmark_total_return"] == 0.0 and m["benchmark_cagr"] == 0.0
    assert m["beta"] is None and m["alpha"] is None and m["correlation"] is None
    # active return = portfolio return: tracking error = volatility
    assert m["tracking_error"] == pytest.approx(m["volatility"], rel=REL)
    assert m["information_ratio"] == pytest.approx(m["sharpe_ratio"], rel=REL)


def test_compute_metrics_benchmark_equal_to_portfolio() -> None:
    m = metrics(SIX_DATES, SIX_EQUITY, benchmark_equity=SIX_EQUITY * 3)
    assert m["beta"] == pytest.approx(1.0, rel=REL)
    assert m["correlation"] == pytest.approx(1.0, rel=REL)
    assert m["alpha"] == pytest.approx(0.0, abs=1e-12)
    assert m["tracking_error"] == 0.0
    assert m["information_ratio"] is None


def test_compute_metrics_overflowing_cagr_is_none() -> None:
    m = metrics(SIX_DATES[:2], [1.0, 1000.0])  # 1000 ** 365.25 overflows a float
    assert m["cagr"] is None and m["calmar_ratio"] is None
    assert m["total_return"] == 999.0


def test_compute_metrics_does_not_mutate_inputs() -> None:
    equity, bench = SIX_EQUITY.copy(), SIX_EQUITY[::-1].copy()
    metrics(SIX_DATES, equity, benchmark_equity=bench)
    np.testing.assert_array_equal(equity, SIX_EQUITY)
    np.testing.assert_array_equal(bench, SIX_EQUITY[::-1])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"equity": [100.0, 0.0, 110.0, 99.0, 108.9, 119.79]}, "equity"),
        ({"equity": [100.0, -5.0, 110.0, 99.0, 108.9, 119.79]}, "equity"),
        ({"equity": [100.0, np.nan, 110.0, 99.0, 108.9, 119.79]}, "equity"),
        ({"equity": [100.0, 110.0]}, "equity"),
        ({"benchmark_equity": np.zeros(6)}, "benchmark_equity"),
        ({"invested_value": np.full(6, np.inf)}, "invested_value"),
        ({"dates": SIX_DATES[::-1]}, "dates"),
        ({"dates": np.array([], dtype="datetime64[D]")}, "dates"),
        ({"closed_trade_pnl": [1.0], "total_trades": 1}, "closed_trade_returns"),
        ({"closed_trade_pnl": [1.0], "closed_trade_returns": [0.1]}, "total_trades"),
        ({"traded_notional": -1.0}, "traded_notional"),
        ({"risk_free_rate": -1.0}, "risk_free_rate"),
        ({"periods_per_year": 0}, "periods_per_year"),
    ],
)
def test_compute_metrics_rejects_unusable_input(
    overrides: dict[str, Any], field: str
) -> None:
    kwargs = {"dates": SIX_DATES, "equity": SIX_EQUITY, **overrides}
    with pytest.raises(InvalidInputError) as info:
        metrics(**kwargs)
    assert info.value.field == field


# ----------------------------------------------------------------------- properties
@st.composite
def runs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 40))
    returns = st.floats(-0.9, 3.0, allow_nan=False)
    r = np.array(draw(st.lists(returns, min_size=n - 1, max_size=n - 1)))
    gaps = draw(st.lists(st.integers(1, 5), min_size=n - 1, max_size=n - 1))
    dates = np.datetime64("2020-01-01") + np.cumsum([0, *gaps]).astype("timedelta64[D]")
    equity = 1e4 * np.cumprod(np.r_[1.0, 1 + r])
    k = draw(st.integers(0, 5))
    pnl = draw(st.lists(st.floats(-1e4, 1e4), min_size=k, max_size=k))
    run = {
        "dates": dates,
        "equity": equity,
        "invested_value": equity * draw(st.floats(0.0, 1.0)),
        "closed_trade_pnl": np.array(pnl, dtype=float),
        "closed_trade_returns": np.array(pnl, dtype=float) / 1e4,
        "total_trades": k + draw(st.integers(0, 3)),
        "traded_notional": draw(st.floats(0.0, 1e7)),
        "risk_free_rate": draw(st.sampled_from([0.0, 0.03])),
    }
    if draw(st.booleans()):
        rb = np.array(draw(st.lists(returns, min_size=n - 1, max_size=n - 1)))
        run["benchmark_equity"] = 100 * np.cumprod(np.r_[1.0, 1 + rb])
    return run


@settings(max_examples=150, deadline=None)
@given(runs())
def test_compute_metrics_is_json_safe_for_any_positive_path(
    run: dict[str, Any],
) -> None:
    m: dict[str, Any] = compute_metrics(**run)
    json.dumps(m, allow_nan=False)  # raises on NaN / inf
    assert list(m) == KEYS
    assert all(v is None or type(v) in (int, float) for v in m.values())
    assert m["max_drawdown"] <= 0.0 and m["max_drawdown_duration_days"] >= 0
    assert 0.0 <= m["exposure"] <= 1.0
    assert m["correlation"] is None or -1.0 <= m["correlation"] <= 1.0


@settings(max_examples=60, deadline=None)
@given(runs())
def test_monthly_returns_compound_to_total_return(run: dict[str, Any]) -> None:
    months = monthly_returns(run["dates"], run["equity"])
    growth = math.prod(1 + r for r in months.values())
    assert growth == pytest.approx(run["equity"][-1] / run["equity"][0], rel=1e-9)


# --------------------------------------------------- cross-check: empyrical, real data
@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    """adj_close of a few symbols, 2010-2020, from the bundled dataset (real prices)."""
    try:  # imported here so a missing store fails these tests only, with a message
        from app.data.store import load_dataset  # noqa: PLC0415

        data = load_dataset()
    except (ImportError, OSError, InvalidInputError) as exc:  # pragma: no cover
        pytest.fail(
            f"bundled dataset not loadable ({exc!r}): app/data/bundled/prices.parquet "
            "is built by scripts/build_dataset.py"
        )
    cols = [data.column_of[s] for s in ("SPY", "AAPL", "XOM")]
    frame = pd.DataFrame(
        data.adj_close[:, cols], index=data.dates, columns=["SPY", "AAPL", "XOM"]
    )
    frame = frame.loc[np.datetime64("2010-01-01") : np.datetime64("2020-12-31")]
    assert len(frame) == 2769 and not frame.isna().any().any()
    return frame


def real_metrics(prices: pd.DataFrame, symbol: str, rf: float) -> dict[str, Any]:
    return metrics(
        prices.index.values,
        prices[symbol].to_numpy(),
        risk_free_rate=rf,
        benchmark_equity=prices["SPY"].to_numpy(),
    )


@pytest.mark.parametrize("symbol", ["AAPL", "XOM", "SPY"])
@pytest.mark.parametrize("rf", [0.0, 0.03])
def test_compute_metrics_matches_empyrical_on_real_prices(
    prices: pd.DataFrame, symbol: str, rf: float
) -> None:
    m = real_metrics(prices, symbol, rf)
    r = daily_returns(prices[symbol].to_numpy())
    rf_d = (1 + rf) ** (1 / 252) - 1
    expected = {
        "total_return": empyrical.cum_returns_final(r),
        "volatility": empyrical.annual_volatility(r),
        "sharpe_ratio": empyrical.sharpe_ratio(r, risk_free=rf_d),
        "sortino_ratio": empyrical.sortino_ratio(r, required_return=rf_d),
        "max_drawdown": empyrical.max_drawdown(r),
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, rel=REL_EMPYRICAL), key


def test_compute_metrics_cagr_matches_empyrical_with_calendar_years(
    prices: pd.DataFrame,
) -> None:
    # empyrical's cagr counts len(r) / 252 years; ours counts calendar days / 365.25.
    # Passing annualization = len(r) / calendar_years makes empyrical count our years.
    m = real_metrics(prices, "AAPL", 0.0)
    r = daily_returns(prices["AAPL"].to_numpy())
    years = (prices.index[-1] - prices.index[0]).days / 365.25  # 4015 days
    expected = empyrical.cagr(r, annualization=len(r) / years)
    assert m["cagr"] == pytest.approx(expected, rel=REL_EMPYRICAL)
    # over 2010-2020 the two year counts differ: 2768 / 252 = 10.984 vs 10.992
    assert empyrical.cagr(r) != pytest.approx(m["cagr"], rel=1e-4)


@pytest.mark.parametrize("symbol", ["AAPL", "XOM"])
@pytest.mark.parametrize("rf", [0.0, 0.03])
def test_compute_metrics_benchmark_matches_empyrical_on_real_prices(
    prices: pd.DataFrame, symbol: str, rf: float
) -> None:
    m = real_metrics(prices, symbol, rf)
    r = daily_returns(prices[symbol].to_numpy())
    rb = daily_returns(prices["SPY"].to_numpy())
    rf_d = (1 + rf) ** (1 / 252) - 1
    alpha, beta = empyrical.alpha_beta_aligned(r, rb, risk_free=rf_d)
    expected = {
        "alpha": alpha,
        "beta": beta,
        "tracking_error": empyrical.annual_volatility(r - rb),
        "information_ratio": empyrical.excess_sharpe(r, rb) * math.sqrt(252),
        "benchmark_total_return": empyrical.cum_returns_final(rb),
        "correlation": pd.Series(r).corr(pd.Series(rb)),  # empyrical has none
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, rel=REL_EMPYRICAL), key


def test_compute_metrics_spy_against_itself(prices: pd.DataFrame) -> None:
    m = real_metrics(prices, "SPY", 0.0)
    assert m["beta"] == pytest.approx(1.0, rel=1e-12)
    assert m["tracking_error"] == 0.0 and m["information_ratio"] is None
    assert m["benchmark_cagr"] == m["cagr"]


def test_max_drawdown_duration_matches_brute_force_on_real_prices(
    prices: pd.DataFrame,
) -> None:
    equity, dates = prices["AAPL"].to_numpy(), prices.index
    longest, peak_day, peak = 0, dates[0], equity[0]
    for day, value in zip(dates, equity, strict=True):  # walk the curve day by day
        if value >= peak:
            longest = max(longest, (day - peak_day).days)
            peak_day, peak = day, value
    longest = max(longest, (dates[-1] - peak_day).days)
    assert metrics(dates.values, equity)["max_drawdown_duration_days"] == longest


def test_monthly_returns_match_empyrical_aggregation(prices: pd.DataFrame) -> None:
    r = pd.Series(daily_returns(prices["XOM"].to_numpy()), index=prices.index[1:])
    expected = empyrical.aggregate_returns(r, "monthly")  # (year, month) -> compounded
    ours = monthly_returns(prices.index.values, prices["XOM"].to_numpy())
    assert list(ours) == [f"{y}-{m:02d}" for y, m in expected.index]
    np.testing.assert_allclose(list(ours.values()), expected.to_numpy(), rtol=1e-9)
