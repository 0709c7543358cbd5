"""Performance metrics of a backtest: one pure function, arrays in, a JSON-safe dict.

:func:`compute_metrics` turns a daily equity curve, trade and fill summaries and an
optional benchmark curve into a flat ``dict[str, float | int | None]``;
:func:`daily_returns`, :func:`drawdown_series` and :func:`monthly_returns` also feed
the charts. Conventions (golden-number tests pin them; cross-checked with empyrical):

* Daily **simple** returns ``r_t = E_t / E_{t-1} - 1`` (n equity points, n - 1
  returns); ``P = periods_per_year`` (default 252) annualises per-period statistics.
* ``risk_free_rate`` is **annual**; per period ``rf_d = (1 + rf) ** (1 / P) - 1``.
* Standard deviations are **sample** (ddof=1). A series whose spread is below
  ``ZERO_DISPERSION_RTOL`` of its magnitude is constant (std exactly 0), so float
  residue never turns an undefined ratio into a finite 1e15.
* ``volatility = std(r) * sqrt(P)``; ``sharpe_ratio = mean(x) / std(x) * sqrt(P)`` and
  ``sortino_ratio = mean(x) * P / (sqrt(mean(min(x, 0) ** 2)) * sqrt(P))`` with
  ``x = r - rf_d`` (empyrical's downside risk: the mean runs over ALL periods).
* ``total_return = E_end / E_0 - 1``; ``cagr = (E_end / E_0) ** (365.25 / days) - 1``,
  ``days`` = **calendar** days from the first to the last date (empyrical counts
  ``len(r) / 252`` years instead: they differ by holidays and partial years).
* ``max_drawdown = min_t(E_t / max_{s<=t} E_s - 1)``, a negative fraction (-0.25);
  ``max_drawdown_duration_days`` = longest calendar-day span from a peak until equity
  first regains it (``E >= peak``), or until the last date if it never does;
  ``calmar_ratio = cagr / |max_drawdown|``.
* Trade statistics use **closed** round trips only: ``win_rate`` = share with pnl > 0;
  ``profit_factor = sum(pnl > 0) / |sum(pnl < 0)|``; avg/best/worst of their returns.
  ``total_trades`` (closed plus still-open round trips) is passed through.
* ``exposure = mean_t(invested_value_t / E_t)``: time-weighted fraction invested,
  each ratio clipped to [0, 1] (float residue of ``equity - cash``).
* ``turnover = (traded_notional / 2) / mean(E) / years``, ``years = days / 365.25``:
  annualised one-way turnover.
* Benchmark: ``beta = cov(r_p, r_b) / var(r_b)`` (sample);
  ``alpha = (1 + mean(r_p - rf_d - beta * (r_b - rf_d))) ** P - 1`` (empyrical's
  annualised Jensen alpha); ``correlation`` = Pearson of daily returns;
  ``tracking_error = std(r_p - r_b) * sqrt(P)``;
  ``information_ratio = mean(r_p - r_b) * P / tracking_error``;
  ``benchmark_total_return`` and ``benchmark_cagr`` as for the portfolio. Without
  ``benchmark_equity`` these seven keys are **present with value None** (one stable
  schema; the API shows null).

No value is ever NaN or inf: 0 where 0 is the true answer, None where undefined.

=============================  =========================================================
total_return, cagr             0 for flat equity and for a single day (n == 1)
volatility                     0 for flat equity; None with < 2 returns (n < 3)
sharpe_ratio                   None when std(r - rf_d) == 0, or n < 3
sortino_ratio                  None with no period below rf_d (no downside), or n < 3
max_drawdown, ..._days         0 when equity never falls below an earlier peak
calmar_ratio                   None when max_drawdown == 0
win_rate, avg/best/worst       None with no closed trade
profit_factor                  None with no losing closed trade (0 with no winner)
exposure                       0 when never invested
turnover                       0 with no fill; None with fills on a one-day run
beta, alpha                    None with flat benchmark returns, or n < 3
correlation                    None when either return series is flat, or n < 3
tracking_error                 0 when r_p - r_b is constant; None when n < 3
information_ratio              None when tracking_error is 0 or None
any value                      None if it overflows a float (CAGR of +900 % in 1 day)
=============================  =========================================================

Equity <= 0 cannot happen (long-only, unlevered) but raises InvalidInputError, as do
mismatched lengths, non-finite values and dates that are not strictly increasing.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]
DayArray = npt.NDArray[np.int64]  # days since 1970-01-01
Metrics = dict[str, float | int | None]

#: Days per calendar year, for CAGR and turnover.
DAYS_PER_YEAR = 365.25
#: A spread (max - min) below this fraction of the values' magnitude is float residue.
ZERO_DISPERSION_RTOL = 1e-12
BENCHMARK_KEYS: tuple[str, ...] = ("benchmark_total_return", "benchmark_cagr", "alpha")
BENCHMARK_KEYS += ("beta", "correlation", "tracking_error", "information_ratio")


# ------------------------------------------------------------------- building blocks
def daily_returns(equity: npt.ArrayLike) -> FloatArray:
    """Simple returns ``E_t / E_{t-1} - 1``: equity (n,) -> returns (n - 1,)."""
    e = _series(equity, "equity")
    return e[1:] / e[:-1] - 1.0


def drawdown_series(equity: npt.ArrayLike) -> FloatArray:
    """Drawdown ``E_t / max_{s<=t} E_s - 1`` of each day: shape (n,), all <= 0."""
    e = _series(equity, "equity")
    return e / np.maximum.accumulate(e) - 1.0


def monthly_returns(dates: npt.ArrayLike, equity: npt.ArrayLike) -> dict[str, float]:
    """Compounded return of each calendar month, ``"YYYY-MM"`` -> fraction, in order.

    A month's return is its last equity over the previous month's last equity, minus 1;
    the first month is measured from ``equity[0]``, so the product of ``1 + r`` over
    the months equals ``E_end / E_0``.
    """
    days = _as_days(dates)
    e = _series(equity, "equity", days.size)
    months = days.astype("datetime64[D]").astype("datetime64[M]")
    last = np.flatnonzero(np.append(months[1:] != months[:-1], True))
    ends = e[last]
    starts = np.concatenate((e[:1], ends[:-1]))
    rets = ends / starts - 1.0
    return {str(m): float(x) for m, x in zip(months[last], rets, strict=True)}


# ---------------------------------------------------------------------------- main
def compute_metrics(
    *,
    dates: npt.ArrayLike,
    equity: npt.ArrayLike,
    invested_value: npt.ArrayLike,
    closed_trade_pnl: npt.ArrayLike,
    closed_trade_returns: npt.ArrayLike,
    total_trades: int,
    traded_notional: float,
    benchmark_equity: npt.ArrayLike | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: int = 252,
) -> Metrics:
    """Headline statistics of one run; formulas and edge cases in the module docstring.

    ``dates`` (n,) datetime64[D], strictly increasing; ``equity``, ``invested_value``
    (market value of positions, equity - cash) and ``benchmark_equity`` (n,) in
    currency; ``closed_trade_pnl`` (k,) net P&L and ``closed_trade_returns`` (k,)
    pnl / cost basis of each closed round trip; ``total_trades`` closed plus open round
    trips; ``traded_notional`` = sum of |qty * price| over all fills, buys and sells;
    ``risk_free_rate`` annual (0.03 = 3 %). Returns plain float/int/None (JSON-safe,
    never NaN/inf); benchmark keys are None without a benchmark. Raises
    InvalidInputError on unusable input (e.g. equity <= 0).
    """
    # Measured by hand (numpy 2, one core): 0.13 ms for 2,520 days, 0.19 with benchmark
    days = _as_days(dates)
    e = _series(equity, "equity", days.size)
    invested = _series(invested_value, "invested_value", days.size, positive=False)
    pnl, trade_rets = _closed_trades(closed_trade_pnl, closed_trade_returns)
    _check_scalars(
        total_trades, pnl.size, traded_notional, risk_free_rate, periods_per_year
    )
    calendar_days = int(days[-1] - days[0])
    rf_d = (1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0
    r = e[1:] / e[:-1] - 1.0
    total_return, cagr = _growth(e, calendar_days)
    max_dd = float((e / np.maximum.accumulate(e)).min() - 1.0)
    win_rate, profit_factor, avg_trade, best, worst = _trade_stats(pnl, trade_rets)
    out: dict[str, Any] = {
        "total_return": total_return,
        "cagr": cagr,
        **_return_stats(r, rf_d, periods_per_year),
        "max_drawdown": max_dd,
        "max_drawdown_duration_days": _max_drawdown_duration_days(days, e),
        "calmar_ratio": _ratio(cagr, abs(max_dd)),
        "win_rate": win_rate,
        "profit_factor": profit_factor,
        "total_trades": int(total_trades),
        "avg_trade_return": avg_trade,
        "best_trade_return": best,
        "worst_trade_return": worst,
        # time-weighted fraction invested; clip float residue of equity - cash
        "exposure": float(np.clip(invested / e, 0.0, 1.0).mean()),
        "turnover": _turnover(float(traded_notional), e, calendar_days),
        "final_equity": float(e[-1]),
        **dict.fromkeys(BENCHMARK_KEYS),
    }
    if benchmark_equity is not None:
        b = _series(benchmark_equity, "benchmark_equity", days.size)
        out.update(_benchmark_stats(r, b, calendar_days, rf_d, periods_per_year))
    return {k: _json_number(v) for k, v in out.items()}


# ---------------------------------------------------------------------- statistics
def _return_stats(r: FloatArray, rf_d: float, periods_per_year: int) -> Metrics:
    """Volatility, Sharpe, Sortino of returns ``r``; ``x = r - rf_d``, P per year.

    ``std(r) * sqrt(P)``, ``mean(x) / std(x) * sqrt(P)`` (sample std, ddof=1) and
    ``mean(x) * P / (sqrt(mean(min(x, 0) ** 2)) * sqrt(P))`` (empyrical's downside
    risk, averaged over ALL periods). All None with fewer than 2 returns (a sample std
    needs two); Sharpe None when std(x) == 0, Sortino None when no x is below 0.
    """
    if r.size < 2:
        return dict.fromkeys(("volatility", "sharpe_ratio", "sortino_ratio"))
    root = math.sqrt(periods_per_year)
    x = r - rf_d
    mean_x = float(x.mean())
    downside = math.sqrt(float(np.square(np.minimum(x, 0.0)).mean())) * root
    return {
        "volatility": _std(r) * root,
        "sharpe_ratio": _ratio(mean_x * root, _std(x)),
        "sortino_ratio": _ratio(mean_x * periods_per_year, downside),
    }


def _growth(equity: FloatArray, calendar_days: int) -> tuple[float, float | None]:
    """``(total_return, cagr) = (G - 1, G ** (365.25 / days) - 1)``, G = E_end / E_0.

    Both 0 if the run ends where it started, as a single day (the only 0-day run) does;
    CAGR None if annualising overflows."""
    growth = float(equity[-1] / equity[0])
    if growth == 1.0 or calendar_days == 0:
        return growth - 1.0, 0.0
    return growth - 1.0, _annualise(growth, DAYS_PER_YEAR / calendar_days)


def _max_drawdown_duration_days(days: DayArray, equity: FloatArray) -> int:
    """Longest calendar-day span from a peak until equity first regains it (E >= peak).

    A drawdown still open at the end counts until the last date; 0 if never under water.
    """
    underwater = equity < np.maximum.accumulate(equity)
    if not underwater.any():
        return 0
    edges = np.diff(underwater.astype(np.int8), prepend=0, append=0)
    starts = np.flatnonzero(edges == 1)  # first day under water (peak: the day before)
    stops = np.flatnonzero(edges == -1)  # first day back at the peak (n if never)
    ends = days[np.minimum(stops, days.size - 1)]
    return int((ends - days[starts - 1]).max())


def _trade_stats(pnl: FloatArray, rets: FloatArray) -> tuple[float | None, ...]:
    """``(win_rate, profit_factor, avg, best, worst)`` over closed round trips.

    win = pnl > 0; profit_factor = gross profit / gross loss. All None without a closed
    trade; profit_factor None without a losing trade, 0 with losers but no winner.
    """
    if pnl.size == 0:
        return None, None, None, None, None
    gross_profit = float(pnl[pnl > 0].sum())
    gross_loss = -float(pnl[pnl < 0].sum())
    win_rate = np.count_nonzero(pnl > 0) / pnl.size
    profit_factor = _ratio(gross_profit, gross_loss)
    return win_rate, profit_factor, float(rets.mean()), float(rets.max()), rets.min()


def turnover(
    notional: float, equity: npt.ArrayLike, calendar_days: int
) -> float | None:
    """Annualised one-way turnover of ``equity`` (see :func:`_turnover`)."""
    return _turnover(notional, np.asarray(equity, dtype=np.float64), calendar_days)


def relative_metrics(
    dates: npt.ArrayLike,
    returns: npt.ArrayLike,
    benchmark_equity: npt.ArrayLike,
    risk_free_rate: float = 0.0,
    periods_per_year: int = 252,
) -> dict[str, float | None]:
    """A run's statistics relative to one benchmark: its ``total_return`` and
    ``cagr``, and alpha, beta, correlation, tracking_error, information_ratio (as
    :func:`compute_metrics`' benchmark keys) and empyrical's up/down capture
    (``up_capture``/``down_capture``: the run's annualised return over the
    benchmark's, on the days the benchmark rose/fell; None without such days).
    ``returns`` (n - 1,) are the run's daily (time-weighted) returns."""
    days = _as_days(dates)
    r = np.asarray(returns, dtype=np.float64)
    b = _series(benchmark_equity, "benchmark_equity", days.size)
    rf_d = (1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0
    stats = _benchmark_stats(r, b, int(days[-1] - days[0]), rf_d, periods_per_year)
    out: dict[str, float | None] = {
        "total_return": stats["benchmark_total_return"],
        "cagr": stats["benchmark_cagr"],
        **{
            k: stats[k]
            for k in (
                "alpha",
                "beta",
                "correlation",
                "tracking_error",
                "information_ratio",
            )
        },
    }
    rb = b[1:] / b[:-1] - 1.0
    for key, sel in (("up_capture", rb > 0.0), ("down_capture", rb < 0.0)):
        den = _annual_growth(rb[sel], periods_per_year) if sel.any() else 0.0
        num = _annual_growth(r[sel], periods_per_year) if sel.any() else 0.0
        out[key] = num / den if den != 0.0 else None
    return {k: _json_number(v) for k, v in out.items()}


def _annual_growth(x: FloatArray, periods: int) -> float:
    """empyrical's annual return of returns ``x``: ``prod(1 + x) ** (P / n) - 1``."""
    return float(np.prod(1.0 + x) ** (periods / x.size) - 1.0)


def _turnover(notional: float, equity: FloatArray, calendar_days: int) -> float | None:
    """Annualised one-way turnover ``(notional / 2) / mean(E) / (days / 365.25)``.

    0 with no fill; None with fills on a one-day run (no time to annualise over).
    """
    if notional == 0.0:
        return 0.0
    if calendar_days == 0:
        return None
    return notional / 2.0 / float(equity.mean()) / (calendar_days / DAYS_PER_YEAR)


def _benchmark_stats(
    r: FloatArray,
    benchmark: FloatArray,
    calendar_days: int,
    rf_d: float,
    periods_per_year: int,
) -> Metrics:
    """Benchmark growth and the statistics of ``r`` (= r_p) relative to it, P per year.

    beta = cov(r_p, r_b) / var(r_b); alpha = (1 + mean(r_p - rf_d - beta (r_b - rf_d)))
    ** P - 1; Pearson correlation; tracking_error = std(r_p - r_b) * sqrt(P);
    information_ratio = mean(r_p - r_b) * P / tracking_error. beta/alpha None for a
    flat benchmark, correlation None when either side is flat, the ratio None when the
    tracking error is 0; all relative statistics None with fewer than 2 returns.
    """
    total, cagr = _growth(benchmark, calendar_days)
    out: Metrics = dict.fromkeys(BENCHMARK_KEYS)
    out.update(benchmark_total_return=total, benchmark_cagr=cagr)
    if r.size < 2:
        return out
    rb = benchmark[1:] / benchmark[:-1] - 1.0
    flat_p, flat_b = _is_constant(r), _is_constant(rb)
    dp, db = r - r.mean(), rb - rb.mean()
    cov, var_p, var_b = float(dp @ db), float(dp @ dp), float(db @ db)
    if not flat_b:
        # Same ddof in cov and var: the sample beta equals the population one.
        beta = 0.0 if flat_p else cov / var_b
        jensen = float(np.mean((r - rf_d) - beta * (rb - rf_d)))
        out.update(beta=beta, alpha=_annualise(1.0 + jensen, periods_per_year))
        if not flat_p:
            out["correlation"] = min(1.0, max(-1.0, cov / math.sqrt(var_p * var_b)))
    active = r - rb  # identical curves leave residue of the size of r, not of active
    scale = max(float(np.abs(r).max()), float(np.abs(rb).max()))
    tracking_error = _std(active, scale) * math.sqrt(periods_per_year)
    out["tracking_error"] = tracking_error
    mean_active = float(active.mean()) * periods_per_year
    out["information_ratio"] = _ratio(mean_active, tracking_error)
    return out


# ----------------------------------------------------------------- numeric helpers
def _is_constant(x: FloatArray, scale: float = 0.0) -> bool:
    """Is the spread of ``x`` float residue of numbers as big as ``x`` or ``scale``?"""
    scale = max(scale, float(np.abs(x).max()))
    return float(x.max() - x.min()) <= ZERO_DISPERSION_RTOL * scale


def _std(x: FloatArray, scale: float = 0.0) -> float:
    """Sample standard deviation (ddof=1); exactly 0 for a constant series."""
    return 0.0 if _is_constant(x, scale) else float(x.std(ddof=1))


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator``; None if either is None or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0.0:
        return None
    return numerator / denominator


def _annualise(growth: float, exponent: float) -> float | None:
    """``growth ** exponent - 1``; None for a base <= 0 or on float overflow."""
    try:
        return float(growth**exponent) - 1.0 if growth > 0.0 else None
    except OverflowError:
        return None


def _json_number(value: float | None) -> float | int | None:
    """Plain Python int/float for JSON; None for None and (defensively) NaN/inf."""
    if value is None or isinstance(value, int):
        return value
    number = float(value)
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------------- validation
def _require(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise InvalidInputError(message, field=field)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _as_days(dates: npt.ArrayLike) -> DayArray:
    """``dates`` as days since 1970-01-01: non-empty, 1-D, strictly increasing."""
    try:
        days = np.asarray(dates).astype("datetime64[D]")
    except (TypeError, ValueError) as exc:
        msg = f"dates must be datetime64 values or ISO dates ({exc})"
        raise InvalidInputError(msg, field="dates") from exc
    ok = days.ndim == 1 and days.size > 0 and not np.isnat(days).any()
    _require(ok, "dates", "dates must be a 1-D array, one date per day, no NaT")
    as_int = days.astype(np.int64)
    later = np.diff(as_int) > 0
    i = int(np.argmin(later)) + 1 if later.size else 0
    msg = f"dates must be strictly increasing; dates[{i}] is not after dates[{i - 1}]"
    _require(bool(later.all()), "dates", msg)
    return as_int


def _series(
    values: npt.ArrayLike, field: str, n: int | None = None, *, positive: bool = True
) -> FloatArray:
    """``values`` as a finite 1-D float64 array (``n`` long, > 0 if ``positive``)."""
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{field} must be numeric ({exc})", field=field
        ) from exc
    ok = a.ndim == 1 and (a.size == n if n is not None else a.size > 0)
    expected = "one value per date" if n is None else f"{n} values, one per date"
    _require(ok, field, f"{field} must be a 1-D array of {expected}")
    valid = np.isfinite(a) & (a > 0.0) if positive else np.isfinite(a)
    if not valid.all():
        # Long-only and unlevered, a portfolio cannot lose everything: <= 0 is a bug.
        i = int(np.argmin(valid))
        must = "a finite number > 0" if positive else "a finite number"
        raise InvalidInputError(f"{field}[{i}] is {a[i]}, must be {must}", field=field)
    return a


def _closed_trades(
    pnl: npt.ArrayLike, returns: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Closed trades' pnl and returns: finite, equally long, possibly empty."""
    p = _series(pnl, "closed_trade_pnl", np.size(pnl), positive=False)
    return p, _series(returns, "closed_trade_returns", p.size, positive=False)


def _check_scalars(
    trades: int, closed: int, notional: float, rf: float, periods: int
) -> None:
    """Reject scalar arguments that would make a statistic meaningless."""
    ok = _is_int(trades) and trades >= closed
    why = f"total_trades ({trades!r}) must be an int >= the {closed} closed trades"
    _require(ok, "total_trades", why)
    why = f"traded_notional must be finite and >= 0, got {notional}"
    _require(math.isfinite(notional) and notional >= 0.0, "traded_notional", why)
    why = f"risk_free_rate is annual (0.03 = 3 %) and must be > -1, got {rf}"
    _require(math.isfinite(rf) and rf > -1.0, "risk_free_rate", why)
    why = f"periods_per_year must be an int >= 1, got {periods!r}"
    _require(_is_int(periods) and periods >= 1, "periods_per_year", why)
