"""Analysis of one completed backtest: one pure function, arrays in, a JSON-safe dict.

:func:`analyse_backtest` takes the daily equity curve (n,) with its dates and,
optionally, any number of benchmark equity curves (name -> (n,), in order; the first
one is "the" benchmark for rolling beta; ``benchmarks`` in the output lists the names,
``rolling.beta_benchmark`` names the first). Conventions (those shared with
:mod:`app.engine.metrics` are the same:
simple daily returns ``r_t = E_t / E_{t-1} - 1``, ``P = periods_per_year`` = 252,
annual ``risk_free_rate`` -> ``rf_d = (1 + rf) ** (1 / P) - 1``, ``x = r - rf_d``,
sample std (ddof=1), CAGR over calendar days / 365.25, drawdowns negative fractions):

* ``psr``: probabilistic Sharpe ratio against 0 of the per-period Sharpe of ``x``
  (:func:`app.engine.overfitting.probabilistic_sharpe`; None when undefined).
* ``t_stat``, ``p_value``: one-sample t-test of mean(r) = 0 on the raw daily returns,
  ``t = mean / (std / sqrt(n))``, two-sided p from Student's t with n - 1 degrees of
  freedom. None with fewer than 2 returns or std 0.
* ``var_95``, ``var_99``: historical one-day VaR as a positive loss fraction,
  ``-quantile(r, 1 - c)`` with numpy's default linear interpolation (type 7, as
  empyrical ``value_at_risk``); ``cvar_95``, ``cvar_99``: minus the mean of the
  ``floor((n - 1) (1 - c)) + 1`` lowest returns (empyrical
  ``conditional_value_at_risk``). Negative when even that tail is a gain.
* ``drawdowns``: the 5 deepest episodes under water (deepest first, ties: earlier
  first). ``peak`` = last date at the high-water mark before it, ``trough`` = date of
  the lowest equity, ``recovery`` = first date with ``E >= peak equity`` (None if
  never), ``depth = E_trough / E_peak - 1``, ``length_sessions`` = sessions from peak
  to recovery (to the last date if not recovered), ``recovery_sessions`` = sessions
  from trough to recovery (None if not recovered).
* ``annual_returns``: per calendar year ``E_last(year) / E_last(previous year) - 1``
  (the first year from ``E_0``), portfolio and each benchmark; partial first and last
  years are not annualised. ``best_year`` / ``worst_year`` of the portfolio's.
* ``rolling``: windows of 252 returns, each dated by its last session:
  ``sharpe = mean(x) / std(x) * sqrt(P)``, ``volatility = std(r) * sqrt(P)``,
  ``beta = cov(r, r_b) / var(r_b)`` to the first benchmark (None without one);
  None where the std is 0. Down-sampled to at most ``max_points`` evenly spaced
  windows (the last always kept); all lists empty when there are fewer than 252
  returns.
* ``crises``: return ``E_end / E_start - 1`` of the portfolio and each benchmark over
  the fixed windows in ``CRISES`` that overlap the backtest; ``E_start`` is the last
  session on or before the window's first day (else the first session), ``E_end``
  the last on or before its last day; ``complete`` says whether the backtest covers
  the whole window.
* ``capture``: per benchmark, empyrical's up/down capture: annualised return
  ``prod(1 + r) ** (P / k) - 1`` of the portfolio over the k sessions when the
  benchmark rose (fell), divided by the benchmark's over the same sessions.
* ``bootstrap``: ``arch.bootstrap.StationaryBootstrap`` (mean block 21 sessions, 1,000
  resamples of the daily returns, the caller's integer seed). Each resample is a
  same-length path: percentiles 5/50/95 (linear) of its CAGR (same calendar horizon),
  annualised Sharpe and max drawdown; ``probability_of_loss`` = share of paths ending
  below ``E_0``. Null test: ``x - mean(x)`` resampled with the same indices gives the
  Sharpe distribution under H0 "zero mean excess return, same dependence";
  ``p_value_sharpe`` = share of null Sharpes >= the observed one (one-sided), and
  ``sharpe_below_null_p5`` flags an observed Sharpe below the null's 5th percentile
  (significantly negative at 5 %). ``observed`` holds the same three statistics of
  the actual path; ``histograms`` the whole resampled distributions: per statistic
  ``HISTOGRAM_BINS`` = 40 equal bins from the smallest to the largest finite
  resample (``edges`` 41 values, ``counts`` 40), the Sharpe's with ``null_counts``
  of the zero-mean null on the same edges. The compiled pass over the paths is
  :func:`app.engine.path_stats.growth_and_drawdown`.

No value is NaN or inf: None where undefined.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine.errors import InvalidInputError
from app.engine.metrics import (
    DAYS_PER_YEAR,
    ZERO_DISPERSION_RTOL,
    _as_days,
    _series,
)
from app.engine.overfitting import probabilistic_sharpe
from app.engine.path_stats import growth_and_drawdown

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
#: Benchmark equity curves by name, in order: a mapping or (name, curve) pairs.
Benchmarks = Mapping[str, npt.ArrayLike] | Sequence[tuple[str, npt.ArrayLike]]

#: Rolling window in sessions (one trading year).
ROLLING_WINDOW = 252
#: Number of deepest drawdowns reported.
TOP_DRAWDOWNS = 5
#: Stationary bootstrap: resamples and mean block length in sessions.
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_BLOCK = 21
#: Bins of the stored histograms of the resampled statistics.
HISTOGRAM_BINS = 40
#: Named stress windows (first and last day, inclusive).
CRISES: tuple[tuple[str, str, str], ...] = (
    ("financial crisis", "2007-10-09", "2009-03-09"),
    ("COVID crash", "2020-02-19", "2020-03-23"),
    ("2022 bear market", "2022-01-03", "2022-10-12"),
)


def analyse_backtest(
    *,
    dates: npt.ArrayLike,
    equity: npt.ArrayLike,
    seed: int,
    benchmarks: Benchmarks | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: int = 252,
    max_points: int = 500,
) -> dict[str, Any]:
    """The analysis of one run; every convention is in the module docstring.

    ``dates`` (n,) strictly increasing days, ``equity`` and each benchmark (n,) > 0 in
    currency; ``benchmarks`` any number of named curves (a mapping or a list of
    ``(name, curve)`` pairs, names distinct), every per-benchmark block (annual
    returns, crises, capture) has one entry each, rolling beta is to the first;
    ``seed`` makes the bootstrap reproducible; ``max_points`` (>= 2) caps the
    rolling series. Raises InvalidInputError on unusable input.
    """
    days = _as_days(dates)
    e = _series(equity, "equity", days.size)
    given = benchmarks or ()
    pairs = list(given.items() if isinstance(given, Mapping) else given)
    bench = {str(k): _series(v, f"benchmarks[{k}]", days.size) for k, v in pairs}
    if len(bench) != len(pairs):
        raise InvalidInputError("benchmark names must be distinct", field="benchmarks")
    _check_scalars(seed, max_points, risk_free_rate, periods_per_year)
    rf_d = (1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0
    r = e[1:] / e[:-1] - 1.0
    rb = {k: b[1:] / b[:-1] - 1.0 for k, b in bench.items()}
    years = _annual_returns(days, e, bench)
    ranked = sorted(years, key=lambda y: y["portfolio"])
    out: dict[str, Any] = {
        "benchmarks": list(bench),
        "psr": probabilistic_sharpe((r - rf_d)[:, None])[0] if r.size else None,
        **_t_test(r),
        **_var_cvar(r),
        "drawdowns": _drawdowns(days, e),
        "annual_returns": years,
        "best_year": _year_entry(ranked[-1]),
        "worst_year": _year_entry(ranked[0]),
        "rolling": _rolling(
            days,
            r,
            next(iter(rb.values()), None),
            rf_d=rf_d,
            periods=periods_per_year,
            max_points=max_points,
        ),
        "crises": _crises(days, e, bench),
        "capture": {k: _capture(r, b, periods_per_year) for k, b in rb.items()},
        "bootstrap": _bootstrap(
            r, int(days[-1] - days[0]), int(seed), rf_d, periods_per_year
        ),
    }
    out["rolling"]["beta_benchmark"] = next(iter(bench), None)
    return out


def warm_imports() -> None:
    """Import what the analysis imports lazily (scipy, arch: seconds on a busy
    machine), so that a worker pays for it before it forks, not in a job."""
    from arch.bootstrap import StationaryBootstrap  # noqa: PLC0415, F401
    from scipy.special import stdtr  # noqa: PLC0415, F401


# ------------------------------------------------------------------- return tests
def _t_test(r: FloatArray) -> dict[str, float | None]:
    """t-statistic and two-sided p-value of mean(r) = 0 (Student t, n - 1 df)."""
    if r.size < 2 or _flat(r):
        return {"t_stat": None, "p_value": None}
    from scipy.special import stdtr  # noqa: PLC0415 (lazy: slow import)

    t = float(r.mean() / (r.std(ddof=1) / math.sqrt(r.size)))
    return {"t_stat": t, "p_value": float(2.0 * stdtr(r.size - 1, -abs(t)))}


def _var_cvar(r: FloatArray) -> dict[str, float | None]:
    """Historical VaR / CVaR at 95 % and 99 % as positive loss fractions."""
    out: dict[str, float | None] = {}
    for level in (95, 99):
        cut = 1.0 - level / 100.0
        if r.size == 0:
            out[f"var_{level}"] = out[f"cvar_{level}"] = None
            continue
        out[f"var_{level}"] = -float(np.percentile(r, 100.0 * cut))
        k = int((r.size - 1) * cut)
        out[f"cvar_{level}"] = -float(np.partition(r, k)[: k + 1].mean())
    return out


# -------------------------------------------------------------------- drawdowns
def _drawdowns(days: IntArray, e: FloatArray) -> list[dict[str, Any]]:
    """The ``TOP_DRAWDOWNS`` deepest episodes under water (module docstring)."""
    dd = e / np.maximum.accumulate(e) - 1.0
    under = e < np.maximum.accumulate(e)
    if not under.any():
        return []
    edges = np.diff(under.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # first session back at the peak, n if never
    depth = np.minimum.reduceat(dd, starts)
    # reduceat runs to the next start; the gap after a stop is >= 0, not a minimum
    order = np.argsort(depth, kind="stable")[:TOP_DRAWDOWNS]
    out = []
    last = days.size - 1
    for i in order:
        s, stop = int(starts[i]), int(stops[i])
        trough = s + int(np.argmin(dd[s:stop]))
        recovered = stop <= last
        out.append(
            {
                "peak": _iso(days[s - 1]),
                "trough": _iso(days[trough]),
                "recovery": _iso(days[stop]) if recovered else None,
                "depth": float(dd[trough]),
                "length_sessions": (stop if recovered else last) - (s - 1),
                "recovery_sessions": stop - trough if recovered else None,
            }
        )
    return out


# ------------------------------------------------------------------ annual returns
def _annual_returns(
    days: IntArray, e: FloatArray, bench: Mapping[str, FloatArray]
) -> list[dict[str, Any]]:
    """Per calendar year: compounded return of the portfolio and each benchmark."""
    yrs = days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970
    last = np.flatnonzero(np.append(yrs[1:] != yrs[:-1], True))

    def per_year(x: FloatArray) -> FloatArray:
        ends = x[last]
        return ends / np.concatenate((x[:1], ends[:-1])) - 1.0

    port = per_year(e)
    bys = {k: per_year(b) for k, b in bench.items()}
    return [
        {
            "year": int(yrs[j]),
            "portfolio": float(port[i]),
            "benchmarks": {k: float(v[i]) for k, v in bys.items()},
        }
        for i, j in enumerate(last)
    ]


def _year_entry(row: dict[str, Any]) -> dict[str, Any]:
    return {"year": row["year"], "return": row["portfolio"]}


# ------------------------------------------------------------------------ rolling
def _rolling(
    days: IntArray,
    r: FloatArray,
    rb: FloatArray | None,
    *,
    rf_d: float,
    periods: int,
    max_points: int,
) -> dict[str, Any]:
    """Rolling 252-session Sharpe, volatility and beta, at most ``max_points``."""
    empty: dict[str, Any] = {"dates": [], "sharpe": [], "volatility": []}
    empty["beta"] = [] if rb is not None else None
    m = r.size - ROLLING_WINDOW + 1
    if m < 1:
        return empty
    keep = np.unique(np.round(np.linspace(0, m - 1, min(m, max_points))).astype(int))
    view = np.lib.stride_tricks.sliding_window_view
    win = view(r, ROLLING_WINDOW)[keep]
    std = win.std(axis=1, ddof=1)
    flat = std <= ZERO_DISPERSION_RTOL * float(np.abs(r).max())
    root = math.sqrt(periods)
    sharpe = (win.mean(axis=1) - rf_d) / np.where(flat, 1.0, std) * root
    out: dict[str, Any] = {
        "dates": [_iso(d) for d in days[keep + ROLLING_WINDOW]],
        "sharpe": _nullable(sharpe, flat),
        "volatility": [float(v) for v in np.where(flat, 0.0, std) * root],
        "beta": None,
    }
    if rb is not None:
        wb = view(rb, ROLLING_WINDOW)[keep]
        db = wb - wb.mean(axis=1, keepdims=True)
        var_b = np.square(db).sum(axis=1)
        flat_b = var_b <= np.square(ZERO_DISPERSION_RTOL * float(np.abs(rb).max()))
        cov = ((win - win.mean(axis=1, keepdims=True)) * db).sum(axis=1)
        out["beta"] = _nullable(cov / np.where(flat_b, 1.0, var_b), flat_b)
    return out


# ------------------------------------------------------------------------- crises
def _crises(
    days: IntArray, e: FloatArray, bench: Mapping[str, FloatArray]
) -> list[dict[str, Any]]:
    """Returns over the ``CRISES`` windows that overlap the backtest."""
    out = []
    for name, first, last in CRISES:
        lo, hi = (int(np.datetime64(d, "D").astype(np.int64)) for d in (first, last))
        i = max(int(np.searchsorted(days, lo, "right")) - 1, 0)
        j = int(np.searchsorted(days, hi, "right")) - 1
        if j <= i:
            continue
        out.append(
            {
                "name": name,
                "start": first,
                "end": last,
                "from": _iso(days[i]),
                "to": _iso(days[j]),
                "complete": bool(days[0] <= lo and days[-1] >= hi),
                "portfolio": float(e[j] / e[i] - 1.0),
                "benchmarks": {k: float(b[j] / b[i] - 1.0) for k, b in bench.items()},
            }
        )
    return out


# ------------------------------------------------------------------------ capture
def _capture(r: FloatArray, rb: FloatArray, periods: int) -> dict[str, float | None]:
    """empyrical's up/down capture of ``r`` against benchmark returns ``rb``."""

    def annual(x: FloatArray) -> float:
        return float(np.prod(1.0 + x) ** (periods / x.size) - 1.0)

    out: dict[str, float | None] = {}
    for key, sel in (("up", rb > 0.0), ("down", rb < 0.0)):
        den = annual(rb[sel]) if sel.any() else 0.0
        out[key] = annual(r[sel]) / den if den != 0.0 else None
    return out


# ---------------------------------------------------------------------- bootstrap
def _bootstrap(
    r: FloatArray, calendar_days: int, seed: int, rf_d: float, periods: int
) -> dict[str, Any] | None:
    """Stationary block bootstrap of the daily returns (module docstring)."""
    if r.size < 2 or calendar_days == 0:
        return None
    # lazy: arch pulls in statsmodels, seconds to import on a busy machine
    from arch.bootstrap import StationaryBootstrap  # noqa: PLC0415

    bs = StationaryBootstrap(BOOTSTRAP_BLOCK, r, seed=seed)
    n = r.size
    idx = np.empty((BOOTSTRAP_RESAMPLES, n), dtype=np.int64)
    for k in range(BOOTSTRAP_RESAMPLES):
        idx[k] = bs.update_indices()
    paths = r[idx]  # (resamples, n): one resampled return path per row
    # mean and variance from sums: paths hold r's own values, so mean^2 << variance
    mean = paths.sum(axis=1) / n
    var = (np.einsum("ij,ij->i", paths, paths) - n * mean * mean) / (n - 1)
    flat = var <= np.square(ZERO_DISPERSION_RTOL * float(np.abs(r).max()))
    root_var = np.sqrt(np.where(flat, np.nan, var)) / math.sqrt(periods)
    sharpe = (mean - rf_d) / root_var
    # Demeaning shifts a path by the constant mean(r): same std, mean - mean(r).
    null = (mean - r.mean()) / root_var
    observed = _sharpe_rows((r - rf_d)[None, :], periods)[0]
    # log wealth, its peak (floored at E_0 = 1) and drawdown in one compiled pass
    log_growth = np.empty(BOOTSTRAP_RESAMPLES)
    log_dd = np.empty(BOOTSTRAP_RESAMPLES)
    growth_and_drawdown(np.log1p(r), idx, log_growth, log_dd)
    cagr = np.expm1(log_growth * (DAYS_PER_YEAR / calendar_days))
    max_dd = np.expm1(log_dd)
    null_valid = null[np.isfinite(null)]
    ok = math.isfinite(observed) and null_valid.size > 0
    p5, p95 = np.percentile(null_valid, [5.0, 95.0]) if ok else (np.nan, np.nan)
    return {
        "resamples": BOOTSTRAP_RESAMPLES,
        "mean_block_sessions": BOOTSTRAP_BLOCK,
        "seed": seed,
        "cagr": _percentiles(cagr),
        "sharpe": _percentiles(sharpe),
        "max_drawdown": _percentiles(max_dd),
        "probability_of_loss": float(np.mean(log_growth < 0.0)),
        "null_sharpe_p5": _num(p5),
        "null_sharpe_p95": _num(p95),
        "p_value_sharpe": float(np.mean(null_valid >= observed)) if ok else None,
        "sharpe_below_null_p5": bool(observed < p5) if ok else None,
        "observed": _observed(r, observed, calendar_days),
        "histograms": {
            "cagr": _histogram(cagr),
            "sharpe": _histogram(sharpe, null),
            "max_drawdown": _histogram(max_dd),
        },
    }


def _observed(r: FloatArray, sharpe: float, calendar_days: int) -> dict[str, Any]:
    """The statistics the bootstrap resamples, of the observed return path."""
    growth = np.empty(1)
    dd = np.empty(1)
    growth_and_drawdown(np.log1p(r), np.arange(r.size)[None, :], growth, dd)
    return {
        "cagr": _num(np.expm1(growth[0] * (DAYS_PER_YEAR / calendar_days))),
        "sharpe": _num(sharpe),
        "max_drawdown": _num(np.expm1(dd[0])),
    }


def _histogram(v: FloatArray, null: FloatArray | None = None) -> dict[str, Any] | None:
    """``HISTOGRAM_BINS`` equal bins over the finite values of ``v`` (and of the
    ``null`` distribution, counted on the same edges); None when none is finite."""
    v = v[np.isfinite(v)]
    both = v if null is None else np.concatenate((v, null[np.isfinite(null)]))
    if v.size == 0:
        return None
    lo, hi = float(both.min()), float(both.max())
    if hi <= lo:  # one value: a bin of width 0 is not drawable
        lo, hi = lo - 0.5 * abs(lo or 1.0) * 1e-3, hi + 0.5 * abs(hi or 1.0) * 1e-3
    edges = np.linspace(lo, hi, HISTOGRAM_BINS + 1)
    out: dict[str, Any] = {
        "edges": edges.tolist(),
        "counts": np.histogram(v, edges)[0].tolist(),
    }
    if null is not None:
        out["null_counts"] = np.histogram(null[np.isfinite(null)], edges)[0].tolist()
    return out


def _sharpe_rows(x: FloatArray, periods: int) -> FloatArray:
    """Annualised Sharpe of each row of ``x`` (k, n); NaN where the std is 0."""
    std = x.std(axis=1, ddof=1)
    flat = std <= ZERO_DISPERSION_RTOL * np.abs(x).max(axis=1)
    return np.where(flat, np.nan, x.mean(axis=1) / np.where(flat, 1.0, std)) * (
        math.sqrt(periods)
    )


def _percentiles(v: FloatArray) -> dict[str, float | None]:
    """5th, 50th and 95th percentiles (linear) of the finite values of ``v``."""
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"p5": None, "p50": None, "p95": None}
    p5, p50, p95 = np.percentile(v, [5.0, 50.0, 95.0])
    return {"p5": float(p5), "p50": float(p50), "p95": float(p95)}


# ------------------------------------------------------------------------ helpers
def _check_scalars(seed: int, max_points: int, rf: float, periods: int) -> None:
    """Reject scalar arguments the analysis cannot use, naming the field."""
    checks = (
        ("seed", _is_int(seed) and seed >= 0, f"an int >= 0, got {seed!r}"),
        ("max_points", _is_int(max_points) and max_points >= 2, "an int >= 2"),
        ("risk_free_rate", math.isfinite(rf) and rf > -1.0, "annual and > -1"),
        ("periods_per_year", _is_int(periods) and periods >= 1, "an int >= 1"),
    )
    for field, ok, must in checks:
        if not ok:
            raise InvalidInputError(f"{field} must be {must}", field=field)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _flat(x: FloatArray) -> bool:
    return float(np.ptp(x)) <= ZERO_DISPERSION_RTOL * float(np.abs(x).max())


def _nullable(v: FloatArray, undefined: npt.NDArray[np.bool_]) -> list[float | None]:
    return [None if u else float(a) for a, u in zip(v, undefined, strict=True)]


def _num(v: float) -> float | None:
    f = float(v)
    return f if math.isfinite(f) else None


def _iso(day: np.int64 | int) -> str:
    return str(np.datetime64(int(day), "D"))
