"""Synthetic market data for tests, examples and benchmarks. Only explicit calls.

Nothing in the engine falls back to this data: a dataset that cannot be loaded is an
error, never silently replaced by random prices.

Model (daily, on a Monday-Friday business-day calendar without holidays):

* log total returns ``r = mu + sigma * (sqrt(rho) * m_t + sqrt(1 - rho) * e_it)`` with
  one market factor ``m`` and idiosyncratic noise ``e`` (both standard normal), so the
  pairwise correlation of daily returns is ``rho = market_correlation``;
  ``sigma = annual_vol / sqrt(252)`` and ``mu = annual_drift / 252 - sigma**2 / 2``
  (expected simple return ``annual_drift`` a year);
* quarterly dividends (every 63 sessions, random phase per symbol) of
  ``q = dividend_yield / 4`` times the previous close: the close drops by that
  fraction on the ex-date and ``adj_close`` is back-adjusted with the convention of
  :meth:`MarketData.dividends_per_share` (``f_{t-1} / f_t = 1 - D_t / close_{t-1}``),
  which therefore recovers ``D_t = q * close_{t-1}`` exactly;
* open = previous close (ex-dividend) times a small gap, high/low beyond
  max/min(open, close), log-normal volume per symbol.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from app.engine.data import MarketData, SymbolInfo
from app.engine.errors import InvalidInputError

TRADING_DAYS_PER_YEAR = 252
DIVIDEND_INTERVAL_DAYS = 63  # sessions between quarterly ex-dates
MAX_SYMBOLS = 10_000
MAX_CELLS = 50_000_000
_SECTORS = ("Technology", "Financials", "Health Care", "Industrials", "Energy")

FloatMatrix = npt.NDArray[np.float64]


def generate(
    n_symbols: int,
    n_days: int,
    *,
    seed: int = 0,
    start: str = "2010-01-04",
    market_correlation: float = 0.3,
    annual_drift: float = 0.07,
    annual_vol: float = 0.25,
    dividend_yield: float = 0.0,
    late_listing_fraction: float = 0.0,
) -> MarketData:
    """A deterministic random dataset of ``n_symbols`` stocks over ``n_days`` sessions.

    Matrices have shape ``(n_days, n_symbols)``; symbols are ``S0000, S0001, ...``, the
    dataset is named ``synthetic-<seed>``. The same arguments always give identical
    arrays. ``dividend_yield`` is annual (0.02 = 2 %, paid quarterly);
    ``late_listing_fraction`` of the symbols start trading on a random session in the
    first 80 % of the window (``NaN`` before it). See the module docstring for the
    model. Raises :class:`InvalidInputError` for out-of-range arguments.
    """
    first_day = _check_args(
        n_symbols=n_symbols,
        n_days=n_days,
        start=start,
        market_correlation=market_correlation,
        annual_vol=annual_vol,
        dividend_yield=dividend_yield,
        late_listing_fraction=late_listing_fraction,
    )
    rng = np.random.default_rng(seed)
    shape = (n_days, n_symbols)
    sigma = annual_vol / np.sqrt(TRADING_DAYS_PER_YEAR)
    mu = annual_drift / TRADING_DAYS_PER_YEAR - 0.5 * sigma**2
    shocks = np.sqrt(market_correlation) * rng.standard_normal((n_days, 1))
    shocks = shocks + np.sqrt(1.0 - market_correlation) * rng.standard_normal(shape)
    log_ret = mu + sigma * shocks
    log_ret[0] = 0.0
    q = _dividend_fractions(rng, shape, dividend_yield)
    start_price = rng.uniform(20.0, 200.0, size=n_symbols)
    close = start_price * np.exp(np.cumsum(log_ret + np.log1p(-q), axis=0))
    open_, high, low = _bars(rng, close, q, sigma)
    volume = np.rint(
        np.exp(rng.normal(13.0, 1.0, n_symbols) + 0.3 * rng.standard_normal(shape))
    )
    adj_close = close * _adjustment_factor(q)
    matrices = {"open": open_, "high": high, "low": low, "close": close}
    matrices |= {"volume": volume, "adj_close": adj_close}
    _delist_before_listing(rng, matrices, late_listing_fraction)
    symbols = tuple(f"S{i:04d}" for i in range(n_symbols))
    return MarketData(
        name=f"synthetic-{seed}",
        dates=np.busday_offset(first_day, np.arange(n_days), roll="forward"),
        symbols=symbols,
        info=tuple(
            SymbolInfo(s, name=f"Synthetic {s}", sector=_SECTORS[i % len(_SECTORS)])
            for i, s in enumerate(symbols)
        ),
        **matrices,
    )


def _check_args(
    *,
    n_symbols: int,
    n_days: int,
    start: str,
    market_correlation: float,
    annual_vol: float,
    dividend_yield: float,
    late_listing_fraction: float,
) -> np.datetime64:
    cells = f"such that n_days * n_symbols <= {MAX_CELLS:,}"
    checks = [
        (1 <= n_symbols <= MAX_SYMBOLS, "n_symbols", f"between 1 and {MAX_SYMBOLS}"),
        (n_days >= 2, "n_days", "at least 2"),
        (n_days * n_symbols <= MAX_CELLS, "n_days", cells),
        (0.0 <= market_correlation <= 1.0, "market_correlation", "between 0 and 1"),
        (0.0 <= annual_vol <= 3.0, "annual_vol", "between 0 and 3"),
        (0.0 <= dividend_yield <= 0.2, "dividend_yield", "between 0 and 0.2"),
        (0.0 <= late_listing_fraction <= 1.0, "late_listing_fraction", "0 to 1"),
    ]
    for ok, name, rule in checks:
        if not ok:
            raise InvalidInputError(f"{name} must be {rule}", field=name)
    try:
        return np.datetime64(start, "D")
    except ValueError as exc:
        raise InvalidInputError(
            f"start {start!r} is not a date; use YYYY-MM-DD", field="start"
        ) from exc


def _dividend_fractions(
    rng: np.random.Generator, shape: tuple[int, int], dividend_yield: float
) -> FloatMatrix:
    """Dividend as a fraction of the previous close, on each ex-date (else 0)."""
    phase = rng.integers(1, DIVIDEND_INTERVAL_DAYS + 1, size=shape[1])
    rows = np.arange(shape[0])[:, None]
    ex_date = (rows >= phase) & ((rows - phase) % DIVIDEND_INTERVAL_DAYS == 0)
    return np.where(ex_date, dividend_yield / 4.0, 0.0)


def _bars(
    rng: np.random.Generator, close: FloatMatrix, q: FloatMatrix, sigma: float
) -> tuple[FloatMatrix, FloatMatrix, FloatMatrix]:
    """Open (previous close ex-dividend times a gap), high and low around the body."""
    prev_close = np.vstack([close[:1], close[:-1]])
    open_ = (
        prev_close * (1.0 - q) * np.exp(0.25 * sigma * rng.standard_normal(close.shape))
    )
    open_[0] = close[0] * np.exp(0.25 * sigma * rng.standard_normal(close.shape[1]))
    wick = 0.5 * sigma * np.abs(rng.standard_normal((2, *close.shape)))
    high = np.maximum(open_, close) * np.exp(wick[0])
    low = np.minimum(open_, close) * np.exp(-wick[1])
    return open_, high, low


def _adjustment_factor(q: FloatMatrix) -> FloatMatrix:
    """``f_t = prod_{s > t} (1 - q_s)``: back-adjustment as of the last session."""
    log_keep = np.log1p(-q)
    after = log_keep.sum(axis=0) - np.cumsum(log_keep, axis=0)
    factor: FloatMatrix = np.exp(after)
    return factor


def _delist_before_listing(
    rng: np.random.Generator, matrices: dict[str, FloatMatrix], fraction: float
) -> None:
    """Set every matrix to NaN before a random first session for ``fraction`` of the
    symbols."""
    n_days, n_symbols = matrices["close"].shape
    n_late = round(fraction * n_symbols)
    late = rng.choice(n_symbols, size=n_late, replace=False)
    first = rng.integers(1, max(2, int(0.8 * n_days)), size=n_late)
    before = np.arange(n_days)[:, None] < first
    for m in matrices.values():
        m[:, late] = np.where(before, np.nan, m[:, late])
