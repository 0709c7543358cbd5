"""Factors: one number per symbol, evaluated at the close of decision rows.

Which price series each factor reads follows :mod:`app.engine.data`: **level** factors
(``close``, ``sma``, ``ema``, ``avg_dollar_volume``) read the traded ``close``, so they
can be compared with each other; **return-type** factors (``return``, ``volatility``,
``rsi``, ``drawdown_from_high``) read ratios or scale-free statistics of ``adj_close``
(dividends included, no look-ahead because only ratios between dates ≤ t are used).

Every factor is NaN at a row where the symbol has no close (not trading), and wherever
its window is incomplete; a NaN factor makes the symbol ineligible (comparisons with
NaN are false). Windows count trading rows (sessions), not calendar days.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.engine.data import FloatMatrix, IntArray, MarketData
from app.engine.errors import InvalidInputError
from app.engine.strategies import kernels

TRADING_DAYS_PER_YEAR = 252
MAX_WINDOW = 756  # three years of sessions

FACTOR_DOCS: dict[str, str] = {
    "close": "last close (traded, split-adjusted price); takes no window",
    "return": "total return over `window` sessions: "
    "adj_close[t] / adj_close[t-window] - 1",
    "sma": "simple moving average of close over `window` sessions (price units)",
    "ema": "exponential moving average of close, alpha = 2/(window+1) (price units)",
    "volatility": "annualised volatility: sample std (ddof=1) of the last `window` "
    "daily adj_close returns x sqrt(252); window >= 2",
    "rsi": "Wilder's RSI over `window` sessions of adj_close changes, 0..100",
    "avg_dollar_volume": "mean of close x volume over `window` sessions (currency/day)",
    "drawdown_from_high": "adj_close / max(adj_close over `window` sessions) - 1 "
    "(<= 0)",
}
FACTOR_NAMES: tuple[str, ...] = tuple(FACTOR_DOCS)


def factor_close(data: MarketData, rows: IntArray, window: int | None) -> FloatMatrix:
    """The close of each row (price units). ``window`` is ignored."""
    return np.array(data.close[rows])


def factor_return(data: MarketData, rows: IntArray, window: int | None) -> FloatMatrix:
    """Total return (fraction, dividends included) over the last ``window`` sessions:
    ``adj_close[t] / adj_close[t - window] - 1``."""
    return kernels.ratio_at(data.adj_close, rows, recent_lag=0, old_lag=_w(window))


def factor_sma(data: MarketData, rows: IntArray, window: int | None) -> FloatMatrix:
    """Simple moving average of ``close`` over the last ``window`` sessions (price)."""
    return kernels.rolling_mean_at(data.close, rows, _w(window))


def factor_ema(data: MarketData, rows: IntArray, window: int | None) -> FloatMatrix:
    """Exponential moving average of ``close``, ``alpha = 2 / (window + 1)``, seeded
    with the first close, NaN before ``window`` closes were seen (price units)."""
    return kernels.ema_at(data.close, rows, _w(window))


def factor_volatility(
    data: MarketData, rows: IntArray, window: int | None
) -> FloatMatrix:
    """Annualised volatility (fraction per year): sample standard deviation (ddof=1)
    of the last ``window`` daily simple returns of ``adj_close``, × sqrt(252).
    Needs ``window + 1`` consecutive closes."""
    w = _w(window)
    returns, rel_rows = kernels.simple_returns_at(data.adj_close, rows, w)
    std = kernels.rolling_std_at(returns, rel_rows, w, ddof=1, center=False)
    return std * math.sqrt(TRADING_DAYS_PER_YEAR)


def factor_rsi(data: MarketData, rows: IntArray, window: int | None) -> FloatMatrix:
    """Wilder's RSI (0..100) of the daily changes of ``adj_close``, smoothing
    ``alpha = 1 / window`` (see :func:`kernels.rsi_at`)."""
    return kernels.rsi_at(data.adj_close, rows, _w(window))


def factor_avg_dollar_volume(
    data: MarketData, rows: IntArray, window: int | None
) -> FloatMatrix:
    """Mean traded value ``close × volume`` over the last ``window`` sessions
    (currency per day; both series are split-adjusted, so the product is exact)."""
    w = _w(window)
    lo = max(int(rows[0]) - w, 0)
    hi = int(rows[-1]) + 1
    dollars = data.close[lo:hi] * data.volume[lo:hi]
    return kernels.rolling_mean_at(dollars, rows - lo, w)


def factor_drawdown_from_high(
    data: MarketData, rows: IntArray, window: int | None
) -> FloatMatrix:
    """``adj_close[t] / max(adj_close[t - window + 1 .. t]) - 1``: fraction below the
    rolling high, ≤ 0 (0 at a new high)."""
    high = kernels.rolling_max_at(data.adj_close, rows, _w(window))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(data.adj_close[rows] / high - 1.0)


FactorFn = Callable[[MarketData, IntArray, int | None], FloatMatrix]
_FACTORS: dict[str, FactorFn] = {
    "close": factor_close,
    "return": factor_return,
    "sma": factor_sma,
    "ema": factor_ema,
    "volatility": factor_volatility,
    "rsi": factor_rsi,
    "avg_dollar_volume": factor_avg_dollar_volume,
    "drawdown_from_high": factor_drawdown_from_high,
}


def min_window(name: str) -> int:
    """Smallest window the factor accepts (0 for ``close``, which takes none)."""
    return {"close": 0, "volatility": 2}.get(name, 1)


def _w(window: int | None) -> int:
    if window is None:
        raise InvalidInputError("this factor needs a window", field="window")
    return window


@dataclass(frozen=True)
class Factor:
    """A factor name with its window, e.g. ``Factor("sma", 200)``; callable as
    ``factor(data, rows) -> (len(rows), n_symbols)`` float64."""

    name: str
    window: int | None = None

    def __post_init__(self) -> None:
        if self.name not in _FACTORS:
            allowed = ", ".join(FACTOR_NAMES)
            raise InvalidInputError(
                f"unknown factor {self.name!r}; allowed: {allowed}", field="factor"
            )
        lo = min_window(self.name)
        if lo == 0 and self.window is not None:
            raise InvalidInputError("close takes no window", field="window")
        if lo > 0 and not (
            isinstance(self.window, int)
            and not isinstance(self.window, bool)
            and lo <= self.window <= MAX_WINDOW
        ):
            raise InvalidInputError(
                f"{self.name} needs an integer window between {lo} and {MAX_WINDOW}",
                field="window",
            )

    @property
    def warmup_rows(self) -> int:
        """Rows of history needed before the factor is defined (window + 1)."""
        return (self.window or 0) + 1

    @property
    def label(self) -> str:
        return self.name if self.window is None else f"{self.name}({self.window})"

    def __call__(self, data: MarketData, rows: IntArray) -> FloatMatrix:
        """Values at ``rows`` (ascending int64), NaN where the symbol has no close."""
        if len(rows) == 0:
            return np.zeros((0, data.n_symbols))
        out = _FACTORS[self.name](data, rows, self.window)
        out[np.isnan(data.close[rows])] = np.nan
        return out
