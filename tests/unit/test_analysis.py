"""analyse_backtest against empyrical, scipy, arch's own iterator and plain loops."""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
from arch.bootstrap import StationaryBootstrap
from scipy import stats

from app.engine.analysis import analyse_backtest
from app.engine.errors import InvalidInputError

N_DAYS = 1600  # 2018-01 .. 2024-02: covers COVID and 2022 fully


@pytest.fixture(scope="module")
def series() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    dates = np.busday_offset("2018-01-02", np.arange(N_DAYS), roll="forward")
    rng = np.random.default_rng(42)
    rb = rng.normal(0.0003, 0.011, N_DAYS - 1)
    r = 0.8 * rb + rng.standard_t(5, N_DAYS - 1) * 0.006 + 0.0002
    equity = 1e5 * np.concatenate(([1.0], np.cumprod(1 + r)))
    bench = 250.0 * np.concatenate(([1.0], np.cumprod(1 + rb)))
    return dates, equity, bench, r


@pytest.fixture(scope="module")
def result(series: tuple[np.ndarray, ...]) -> dict:
    dates, equity, bench, _ = series
    other = bench[::-1].copy()  # a second benchmark, reported but not used for beta
    return analyse_backtest(
        dates=dates,
        equity=equity,
        benchmarks={"SPY": bench, "REV": other},
        seed=7,
        max_points=100,
    )


def _rets(dates: np.ndarray, equity: np.ndarray) -> pd.Series:
    return pd.Series(equity[1:] / equity[:-1] - 1, index=pd.DatetimeIndex(dates[1:]))


# ---------------------------------------------------------------------- tests, VaR
def test_analysis_t_test_matches_scipy(result: dict, series: tuple) -> None:
    want = stats.ttest_1samp(series[3], 0.0)
    assert result["t_stat"] == pytest.approx(want.statistic, rel=1e-10)
    assert result["p_value"] == pytest.approx(want.pvalue, rel=1e-8)


def test_analysis_psr_matches_pandas_moments(result: dict, series: tuple) -> None:
    s = pd.Series(series[3])
    sr = s.mean() / s.std()
    denom = 1 - s.skew() * sr + (s.kurt() + 2) / 4 * sr**2
    want = stats.norm.cdf(sr * math.sqrt(s.size - 1) / math.sqrt(denom))
    assert result["psr"] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("level", [95, 99])
def test_analysis_var_cvar_match_empyrical(
    result: dict, series: tuple, level: int
) -> None:
    cut = 1 - level / 100
    r = series[3]
    assert result[f"var_{level}"] == pytest.approx(-ep.value_at_risk(r, cut), 1e-12)
    want = -ep.conditional_value_at_risk(r, cut)
    assert result[f"cvar_{level}"] == pytest.approx(want, rel=1e-12)
    assert result[f"cvar_{level}"] >= result[f"var_{level}"] > 0


# ------------------------------------------------------------------------ drawdowns
def ref_drawdowns(equity: np.ndarray) -> list[tuple[int, int, int | None, float]]:
    """(peak, trough, recovery, depth) of every episode, by a plain loop."""
    out, peak_i, i = [], 0, 1
    while i < equity.size:
        if equity[i] >= equity[peak_i]:
            peak_i, i = i, i + 1
            continue
        trough = i
        while i < equity.size and equity[i] < equity[peak_i]:
            trough = i if equity[i] < equity[trough] else trough
            i += 1
        rec = i if i < equity.size else None
        out.append((peak_i, trough, rec, equity[trough] / equity[peak_i] - 1))
    return sorted(out, key=lambda d: d[3])


def test_analysis_drawdowns_match_loop_and_empyrical(
    result: dict, series: tuple
) -> None:
    dates, equity, _, r = series
    iso = [str(d) for d in dates]
    want = ref_drawdowns(equity)[:5]
    got = result["drawdowns"]
    assert len(got) == 5
    for g, (peak, trough, rec, depth) in zip(got, want, strict=True):
        assert (g["peak"], g["trough"]) == (iso[peak], iso[trough])
        assert g["recovery"] == (iso[rec] if rec is not None else None)
        assert g["depth"] == pytest.approx(depth, rel=1e-12)
        end = rec if rec is not None else equity.size - 1
        assert g["length_sessions"] == end - peak
        assert g["recovery_sessions"] == (rec - trough if rec is not None else None)
    assert got[0]["depth"] == pytest.approx(ep.max_drawdown(r), rel=1e-12)


def test_analysis_drawdown_still_open_has_no_recovery() -> None:
    dates = np.busday_offset("2021-01-04", np.arange(6), roll="forward")
    out = analyse_backtest(
        dates=dates, equity=[100, 110, 99, 105, 88, 100], seed=0, max_points=10
    )
    (dd,) = out["drawdowns"]
    assert (dd["peak"], dd["trough"], dd["recovery"]) == (
        str(dates[1]),
        str(dates[4]),
        None,
    )
    assert dd["depth"] == pytest.approx(88 / 110 - 1)
    assert (dd["length_sessions"], dd["recovery_sessions"]) == (4, None)


# ------------------------------------------------------------------- annual returns
def test_analysis_annual_returns_match_empyrical(result: dict, series: tuple) -> None:
    dates, equity, bench, _ = series
    want_p = ep.aggregate_returns(_rets(dates, equity), "yearly")
    want_b = ep.aggregate_returns(_rets(dates, bench), "yearly")
    rows = result["annual_returns"]
    assert [row["year"] for row in rows] == list(want_p.index)
    assert [row["portfolio"] for row in rows] == pytest.approx(list(want_p), 1e-12)
    spy = [row["benchmarks"]["SPY"] for row in rows]
    assert spy == pytest.approx(list(want_b), rel=1e-12)
    assert result["best_year"]["year"] == int(want_p.idxmax())
    assert result["best_year"]["return"] == pytest.approx(want_p.max(), rel=1e-12)
    assert result["worst_year"]["year"] == int(want_p.idxmin())


# -------------------------------------------------------------------------- rolling
def test_analysis_rolling_matches_empyrical(result: dict, series: tuple) -> None:
    dates, equity, bench, _ = series
    r, rb = _rets(dates, equity), _rets(dates, bench)
    sharpe = ep.roll_sharpe_ratio(r, window=252)
    vol = ep.roll_annual_volatility(r, window=252)
    beta = ep.roll_beta(r, rb, window=252)
    roll = result["rolling"]
    assert 2 <= len(roll["dates"]) <= 100
    assert roll["dates"][-1] == str(dates[-1])  # the last window is always kept
    at = pd.DatetimeIndex(roll["dates"])
    assert roll["sharpe"] == pytest.approx(sharpe.loc[at].tolist(), rel=1e-10)
    assert roll["volatility"] == pytest.approx(vol.loc[at].tolist(), rel=1e-10)
    assert roll["beta"] == pytest.approx(beta.loc[at].tolist(), rel=1e-10)


def test_analysis_rolling_is_empty_for_short_series() -> None:
    dates = np.busday_offset("2021-01-04", np.arange(252), roll="forward")
    equity = 100 * np.cumprod(np.full(252, 1.001))
    out = analyse_backtest(dates=dates, equity=equity, seed=0)  # 251 returns
    assert out["rolling"] == {
        "dates": [],
        "sharpe": [],
        "volatility": [],
        "beta": None,
        "beta_benchmark": None,
    }


# ---------------------------------------------------------------- crises, capture
def test_analysis_crises_use_sessions_inside_each_window(
    result: dict, series: tuple
) -> None:
    dates, equity, bench, _ = series
    e = pd.Series(equity, index=pd.DatetimeIndex(dates))
    b = pd.Series(bench, index=pd.DatetimeIndex(dates))
    names = [c["name"] for c in result["crises"]]
    assert names == ["COVID crash", "2022 bear market"]  # no 2007-09 data
    for c in result["crises"]:
        lo, hi = pd.Timestamp(c["start"]), pd.Timestamp(c["end"])
        assert c["complete"]
        assert c["portfolio"] == pytest.approx(e.asof(hi) / e.asof(lo) - 1, 1e-12)
        assert c["benchmarks"]["SPY"] == pytest.approx(b.asof(hi) / b.asof(lo) - 1)


def test_analysis_crisis_partly_covered_starts_at_first_session() -> None:
    dates = np.busday_offset("2020-03-02", np.arange(400), roll="forward")
    equity = 100 * np.cumprod(np.full(400, 1.001))
    crises = analyse_backtest(dates=dates, equity=equity, seed=0)["crises"]
    covid = crises[0]
    assert (covid["name"], covid["complete"]) == ("COVID crash", False)
    assert (covid["from"], covid["to"]) == ("2020-03-02", "2020-03-23")
    assert covid["portfolio"] == pytest.approx(1.001**15 - 1, rel=1e-12)
    assert len(crises) == 1  # the 2022 window starts after the last session


def test_analysis_capture_matches_empyrical(result: dict, series: tuple) -> None:
    dates, equity, bench, _ = series
    r, rb = _rets(dates, equity), _rets(dates, bench)
    cap = result["capture"]["SPY"]
    assert cap["up"] == pytest.approx(ep.up_capture(r, rb), rel=1e-10)
    assert cap["down"] == pytest.approx(ep.down_capture(r, rb), rel=1e-10)
    assert set(result["capture"]) == {"SPY", "REV"}


# ------------------------------------------------------------------------ bootstrap
def test_analysis_bootstrap_matches_arch_iterator(result: dict, series: tuple) -> None:
    # Same seed through arch's own per-resample loop, statistics from pandas/empyrical
    dates, _, _, r = series
    years = (dates[-1] - dates[0]).astype(int) / 365.25
    bs = StationaryBootstrap(21, r, seed=7)
    cagr, sharpe, mdd, null = [], [], [], []
    for (x,), _ in bs.bootstrap(1000):
        growth = np.prod(1 + x)
        cagr.append(growth ** (1 / years) - 1)
        sharpe.append(ep.sharpe_ratio(x))
        mdd.append(min(ep.max_drawdown(x), 0.0))
        null.append(ep.sharpe_ratio(x - r.mean()))
    boot = result["bootstrap"]
    for key, values in (("cagr", cagr), ("sharpe", sharpe), ("max_drawdown", mdd)):
        want = np.percentile(values, [5, 50, 95])
        got = [boot[key]["p5"], boot[key]["p50"], boot[key]["p95"]]
        assert got == pytest.approx(list(want), rel=1e-9)
    assert boot["probability_of_loss"] == np.mean(np.array(cagr) < 0)
    observed = ep.sharpe_ratio(r)
    p5 = np.percentile(null, 5)
    assert boot["null_sharpe_p5"] == pytest.approx(p5, rel=1e-9)
    assert boot["p_value_sharpe"] == np.mean(np.array(null) >= observed)
    assert boot["sharpe_below_null_p5"] is bool(observed < p5)


def test_analysis_bootstrap_reproducible_by_seed(series: tuple) -> None:
    dates, equity, _, _ = series

    def boot(seed: int) -> dict:
        return analyse_backtest(dates=dates, equity=equity, seed=seed)["bootstrap"]

    assert boot(3) == boot(3)
    assert boot(3)["sharpe"] != boot(4)["sharpe"]


def test_analysis_bootstrap_flags_a_losing_strategy() -> None:
    dates = np.busday_offset("2015-01-02", np.arange(1000), roll="forward")
    r = np.random.default_rng(9).normal(-0.002, 0.01, 999)  # Sharpe about -3
    equity = 100 * np.concatenate(([1.0], np.cumprod(1 + r)))
    boot = analyse_backtest(dates=dates, equity=equity, seed=1)["bootstrap"]
    assert boot["sharpe_below_null_p5"] is True
    assert boot["p_value_sharpe"] == 1.0
    assert boot["probability_of_loss"] > 0.99


# ----------------------------------------------------------------------- edge cases
def test_analysis_flat_equity_is_defined_or_null() -> None:
    dates = np.busday_offset("2020-01-02", np.arange(300), roll="forward")
    out = analyse_backtest(dates=dates, equity=np.full(300, 1e5), seed=0)
    assert out["psr"] is None
    assert (out["t_stat"], out["p_value"]) == (None, None)
    assert out["var_95"] == 0.0
    assert out["cvar_99"] == 0.0
    assert out["drawdowns"] == []
    assert {row["portfolio"] for row in out["annual_returns"]} == {0.0}
    assert out["rolling"]["sharpe"] == [None] * len(out["rolling"]["dates"])
    assert set(out["rolling"]["volatility"]) == {0.0}
    boot = out["bootstrap"]
    assert boot["sharpe"] == {"p5": None, "p50": None, "p95": None}
    assert boot["cagr"] == {"p5": 0.0, "p50": 0.0, "p95": 0.0}
    assert boot["sharpe_below_null_p5"] is None


def test_analysis_without_benchmark_has_empty_relative_parts(series: tuple) -> None:
    dates, equity, _, _ = series
    out = analyse_backtest(dates=dates, equity=equity, seed=0)
    assert out["capture"] == {}
    assert out["rolling"]["beta"] is None
    assert all(row["benchmarks"] == {} for row in out["annual_returns"])
    assert all(c["benchmarks"] == {} for c in out["crises"])


def test_analysis_single_day_has_no_statistics() -> None:
    out = analyse_backtest(dates=["2024-01-02"], equity=[100.0], seed=0)
    assert out["psr"] is None
    assert out["var_95"] is None
    assert out["bootstrap"] is None
    assert out["annual_returns"] == [{"year": 2024, "portfolio": 0.0, "benchmarks": {}}]


def test_analysis_rejects_bad_input(series: tuple) -> None:
    dates, equity, bench, _ = series
    with pytest.raises(InvalidInputError, match="benchmarks"):
        analyse_backtest(
            dates=dates, equity=equity, benchmarks={"X": bench[1:]}, seed=0
        )
    with pytest.raises(InvalidInputError, match="max_points"):
        analyse_backtest(dates=dates, equity=equity, seed=0, max_points=1)
    with pytest.raises(InvalidInputError, match="seed"):
        analyse_backtest(dates=dates, equity=equity, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="seed"):
        analyse_backtest(dates=dates, equity=equity, seed=-1)
    with pytest.raises(InvalidInputError, match="risk_free_rate"):
        analyse_backtest(dates=dates, equity=equity, seed=0, risk_free_rate=-1.0)


# ------------------------------------------------------- bootstrap distribution
def test_analysis_bootstrap_histograms_hold_every_resample(
    result: dict, series: tuple
) -> None:
    # the stored distribution: the same resamples as the arch loop, binned
    dates, _, _, r = series
    years = (dates[-1] - dates[0]).astype(int) / 365.25
    bs = StationaryBootstrap(21, r, seed=7)
    sharpe, null, cagr = [], [], []
    for (x,), _ in bs.bootstrap(1000):
        sharpe.append(ep.sharpe_ratio(x))
        null.append(ep.sharpe_ratio(x - r.mean()))
        cagr.append(np.prod(1 + x) ** (1 / years) - 1)
    hist = result["bootstrap"]["histograms"]
    for key, values in (("sharpe", sharpe), ("cagr", cagr)):
        edges, counts = np.array(hist[key]["edges"]), hist[key]["counts"]
        assert len(edges) == len(counts) + 1 == 41
        assert sum(counts) == 1000
        assert edges[0] <= min(values) + 1e-12
        assert edges[-1] >= max(values) - 1e-12
        want, _ = np.histogram(values, edges)
        # values on a bin edge may fall either side after rounding: totals agree
        assert np.abs(np.array(counts) - want).sum() <= 2
    assert sum(hist["sharpe"]["null_counts"]) == 1000
    assert sum(hist["max_drawdown"]["counts"]) == 1000
    observed = result["bootstrap"]["observed"]
    assert observed["sharpe"] == pytest.approx(ep.sharpe_ratio(r), rel=1e-9)
    assert observed["max_drawdown"] == pytest.approx(ep.max_drawdown(r), rel=1e-9)
    want_cagr = np.prod(1 + r) ** (1 / years) - 1
    assert observed["cagr"] == pytest.approx(want_cagr, rel=1e-9)


# ------------------------------------------------------------ several benchmarks
def test_analysis_takes_a_list_of_named_benchmarks(series: tuple) -> None:
    dates, equity, bench, _ = series
    other = bench[::-1].copy()
    third = np.sqrt(bench * other)
    pairs = [("60/40", other), ("SPY", bench), ("blend", third)]
    out = analyse_backtest(dates=dates, equity=equity, benchmarks=pairs, seed=7)
    assert out["benchmarks"] == ["60/40", "SPY", "blend"]
    assert out["rolling"]["beta_benchmark"] == "60/40"
    assert list(out["capture"]) == ["60/40", "SPY", "blend"]
    r = pd.Series(equity[1:] / equity[:-1] - 1)
    for name, curve in pairs:
        rb = pd.Series(curve[1:] / curve[:-1] - 1)
        assert out["capture"][name]["up"] == pytest.approx(
            ep.up_capture(r, rb), rel=1e-10
        )
        first_year = out["annual_returns"][0]
        year_end = np.flatnonzero(
            dates.astype("datetime64[Y]") == dates[0].astype("datetime64[Y]")
        )[-1]
        assert first_year["benchmarks"][name] == pytest.approx(
            curve[year_end] / curve[0] - 1, rel=1e-12
        )
        assert all(name in c["benchmarks"] for c in out["crises"])
    # the same curves as a mapping give the same analysis
    assert (
        analyse_backtest(dates=dates, equity=equity, benchmarks=dict(pairs), seed=7)
        == out
    )


def test_analysis_refuses_two_benchmarks_with_one_name(series: tuple) -> None:
    dates, equity, bench, _ = series
    with pytest.raises(InvalidInputError) as err:
        analyse_backtest(
            dates=dates,
            equity=equity,
            benchmarks=[("SPY", bench), ("SPY", bench)],
            seed=1,
        )
    assert err.value.field == "benchmarks"
