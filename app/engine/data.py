"""The in-memory market data model shared by every part of the engine.

Conventions (they matter for every number the engine produces):

* Time is axis 0, instruments are axis 1: every price matrix has shape
  ``(n_days, n_symbols)``, rows are trading sessions in ascending order.
* ``open/high/low/close`` are **split-adjusted traded prices** (Yahoo's "Close"
  convention): orders fill at these prices. ``NaN`` where the symbol did not trade.
* ``adj_close`` is the split- **and dividend-adjusted** close (a total-return series,
  back-adjusted as of the dataset's last date). Only *ratios* of ``adj_close``
  between two dates are meaningful; a ratio between dates ``s <= t`` depends on
  nothing after ``t``, which is why return-type signals may use it without look-ahead.
* ``volume`` is shares traded (split-adjusted), as float so it can hold ``NaN``.

Cash dividends are not in the source data; :meth:`MarketData.dividends_per_share`
derives them from the adjustment factor ``f_t = adj_close_t / close_t`` with Yahoo's
own convention: on an ex-date ``t`` with cash dividend ``D``, every earlier price is
multiplied by ``1 - D / close_{t-1}``, hence ``f_{t-1} / f_t = 1 - D / close_{t-1}`` and

    D_t = close_{t-1} * (1 - f_{t-1} / f_t)

The source values carry 6 significant digits, so ``f`` jitters by up to ~1e-5 from
rounding alone; changes smaller than ``DIVIDEND_NOISE_FLOOR`` (relative) are treated
as rounding, not dividends, and negative changes are ignored. Special dividends and
spin-offs that Yahoo folds into ``adj_close`` are credited the same way, as cash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt

from app.engine.errors import InvalidInputError

FloatMatrix = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Relative change of the adjustment factor below which a day is not a dividend ex-date.
#: Measured on the bundled data: rounding to 6 significant digits moves the factor by
#: less than 2e-5 (no *negative* change exceeds 2e-5 anywhere, 408 exceed 1e-5), while
#: 29,200 day/symbol pairs exceed it (about 4 a year per payer; smallest ~6e-5).
DIVIDEND_NOISE_FLOOR = 2e-5


_SLICEABLE = ("dividends_per_share", "valuation_close")


def _column_picker(cols: IntArray | None) -> Callable[[FloatMatrix], FloatMatrix]:
    """A function selecting ``cols`` from a matrix: a view if they are a contiguous
    ascending run (the default universe is), else a copy."""
    if cols is None:
        return lambda a: a
    if len(cols) and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
        block = slice(int(cols[0]), int(cols[0]) + len(cols))
        return lambda a: a[:, block]
    return lambda a: a[:, cols]


def forward_fill(prices: FloatMatrix) -> FloatMatrix:
    """Carry each column's last valid value forward over NaN (leading NaN stay NaN).

    Shape ``(n_days, n_symbols)`` in and out; uses only earlier rows (no look-ahead).
    """
    valid = ~np.isnan(prices)
    idx = np.where(valid, np.arange(prices.shape[0])[:, None], 0)
    np.maximum.accumulate(idx, axis=0, out=idx)
    filled = np.take_along_axis(prices, idx, axis=0)
    seen = np.logical_or.accumulate(valid, axis=0)
    return np.where(seen, filled, np.nan)


@dataclass(frozen=True)
class SymbolInfo:
    """Static description of one instrument."""

    symbol: str
    name: str = ""
    sector: str = ""
    type: str = "stock"  # "stock" | "etf"


@dataclass(frozen=True, eq=False)
class MarketData:
    """Aligned daily bars of a set of instruments.

    All matrices have shape ``(n_days, n_symbols)`` and dtype float64. Instances are
    treated as immutable: the engine never writes into these arrays (they are marked
    read-only on construction).
    """

    name: str
    dates: npt.NDArray[np.datetime64]  # (n_days,) datetime64[D], strictly increasing
    symbols: tuple[str, ...]
    open: FloatMatrix
    high: FloatMatrix
    low: FloatMatrix
    close: FloatMatrix
    volume: FloatMatrix
    adj_close: FloatMatrix
    info: tuple[SymbolInfo, ...] = field(default=())

    def __post_init__(self) -> None:
        n_days, n_symbols = len(self.dates), len(self.symbols)
        for attr in ("open", "high", "low", "close", "volume", "adj_close"):
            arr = getattr(self, attr)
            if arr.shape != (n_days, n_symbols):
                raise InvalidInputError(
                    f"{attr} has shape {arr.shape}, expected {(n_days, n_symbols)}",
                    field=attr,
                )
            arr.flags.writeable = False
        if self.info and len(self.info) != n_symbols:
            raise InvalidInputError("info must have one entry per symbol", field="info")
        if not self.info:
            object.__setattr__(self, "info", tuple(SymbolInfo(s) for s in self.symbols))

    # ------------------------------------------------------------------ shape
    @property
    def n_days(self) -> int:
        return len(self.dates)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @cached_property
    def column_of(self) -> dict[str, int]:
        """Symbol -> column index."""
        return {s: i for i, s in enumerate(self.symbols)}

    @cached_property
    def benchmarks(self) -> tuple[str, ...]:
        """Symbols usable as a benchmark: the dataset's ETFs (all symbols if none)."""
        etfs = tuple(i.symbol for i in self.info if i.type == "etf")
        return etfs or self.symbols

    @cached_property
    def stocks(self) -> tuple[str, ...]:
        """The default universe: every non-ETF symbol (all symbols if none)."""
        stocks = tuple(i.symbol for i in self.info if i.type != "etf")
        return stocks or self.symbols

    # -------------------------------------------------------------- selection
    def columns(self, symbols: Iterable[str]) -> IntArray:
        """Column indices of ``symbols``; raises listing every unknown symbol."""
        wanted = list(symbols)
        unknown = [s for s in wanted if s not in self.column_of]
        if unknown:
            shown = ", ".join(sorted(set(unknown))[:20])
            raise InvalidInputError(
                f"unknown symbol(s) in dataset {self.name!r}: {shown}",
                field="symbols",
            )
        return np.fromiter((self.column_of[s] for s in wanted), dtype=np.int64)

    def subset(self, symbols: Sequence[str]) -> MarketData:
        """The dataset restricted to ``symbols`` (in the given order).

        A contiguous run of columns is a zero-copy view; any other selection gathers
        each matrix lazily, the first time it is read, so a backtest copies only the
        few matrices it uses (close, open, the derived arrays), never high/low/volume.
        """
        cols = self.columns(symbols)
        if len(cols) and np.array_equal(cols, np.arange(cols[0], cols[0] + len(cols))):
            return self._take(slice(None), cols)
        return _ColumnSubset(self, cols)

    def window(self, start_row: int, stop_row: int) -> MarketData:
        """Rows ``start_row`` (inclusive) to ``stop_row`` (exclusive)."""
        return self._take(slice(start_row, stop_row), None)

    def _take(self, rows: slice, cols: IntArray | None) -> MarketData:
        """Rows/columns of this dataset; zero-copy when the columns are contiguous.

        Derived arrays already computed on this instance (dividends, forward-filled
        closes) are sliced along instead of being recomputed for the child.
        """
        picker = _column_picker(cols)

        def pick(a: FloatMatrix) -> FloatMatrix:
            return picker(a[rows])

        info = self.info if cols is None else tuple(self.info[c] for c in cols)
        symbols = self.symbols if cols is None else tuple(self.symbols[c] for c in cols)
        child = MarketData(
            name=self.name,
            dates=self.dates[rows],
            symbols=symbols,
            open=pick(self.open),
            high=pick(self.high),
            low=pick(self.low),
            close=pick(self.close),
            volume=pick(self.volume),
            adj_close=pick(self.adj_close),
            info=info,
        )
        for derived in _SLICEABLE:
            if derived in self.__dict__:
                child.__dict__[derived] = pick(self.__dict__[derived])
        return child

    def row_of(self, day: np.datetime64, *, side: str = "left") -> int:
        """Index of the first session on/after ``day`` (side='left') or the last
        session on/before ``day`` (side='right' returns that index + 1)."""
        return int(np.searchsorted(self.dates, np.datetime64(day, "D"), side=side))  # type: ignore[call-overload]

    # -------------------------------------------------------------- dividends
    @cached_property
    def dividends_per_share(self) -> FloatMatrix:
        """Cash dividend per share by ex-date, shape ``(n_days, n_symbols)``.

        Zero where there is none; see the module docstring for the derivation from
        ``adj_close / close``. Row 0 is always zero (no previous close).
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            # In place on two temporaries: this runs on the whole dataset once.
            factor = self.adj_close / self.close
            rel = factor[:-1] / factor[1:]  # f_{t-1} / f_t, aligned to t = 1..n-1
            np.subtract(1.0, rel, out=rel)  # relative dividend D_t / close_{t-1}
            rel[~(rel > DIVIDEND_NOISE_FLOOR)] = 0.0  # also drops NaN
            out = factor
            out[0] = 0.0
            np.multiply(self.close[:-1], rel, out=out[1:])
        np.nan_to_num(out, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        out.flags.writeable = False
        return out

    @cached_property
    def dividend_entries(self) -> tuple[IntArray, IntArray, FloatMatrix]:
        """:attr:`dividends_per_share` as its nonzero entries row by row, ``(ptr,
        cols, values)``: row ``t``'s are ``cols[ptr[t]:ptr[t+1]]`` (ascending).
        Computed once per dataset: a run's portfolio loop selects its rows and
        columns from it (:func:`app.engine.jit_portfolio.select_rows`) instead of
        scanning its window's matrix."""
        divs = self.dividends_per_share
        rows, cols = np.nonzero(divs)
        ptr = np.zeros(self.n_days + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_days), out=ptr[1:])
        return ptr, cols.astype(np.int64), divs[rows, cols]

    @cached_property
    def valuation_close(self) -> FloatMatrix:
        """``close`` with the last known value carried forward over gaps and 0 before a
        symbol's first close (no position can exist there); the simulator values
        holdings with it."""
        out = forward_fill(self.close)
        np.nan_to_num(out, copy=False, nan=0.0)
        out.flags.writeable = False
        return out

    def precompute(self) -> MarketData:
        """Compute the derived arrays once (call on a long-lived, cached dataset so that
        every window/subset taken from it slices them instead of recomputing)."""
        for derived in _SLICEABLE:
            getattr(self, derived)
        getattr(self, "dividend_entries")  # noqa: B009 - not sliced: per dataset
        return self

    # ------------------------------------------------------------- coverage
    @cached_property
    def first_row(self) -> IntArray:
        """Per symbol, the first row with a close (``n_days`` if never)."""
        valid = ~np.isnan(self.close)
        any_valid = valid.any(axis=0)
        first = np.argmax(valid, axis=0)
        return np.where(any_valid, first, self.n_days).astype(np.int64)

    @cached_property
    def last_row(self) -> IntArray:
        """Per symbol, the last row with a close (``-1`` if never)."""
        valid = ~np.isnan(self.close)
        any_valid = valid.any(axis=0)
        last = self.n_days - 1 - np.argmax(valid[::-1], axis=0)
        return np.where(any_valid, last, -1).astype(np.int64)


_MATRICES = ("open", "high", "low", "close", "volume", "adj_close")


class _ColumnSubset(MarketData):
    """Some columns of a parent dataset, each matrix gathered on first access.

    Behaves as a :class:`MarketData` (same attributes, read-only arrays); derived
    arrays are gathered from the parent's (computing them there once if needed), so
    they are identical to what the parent would give for these columns.
    """

    def __init__(self, parent: MarketData, cols: IntArray) -> None:
        # Deliberately not calling the dataclass __init__: the matrices are lazy.
        set_ = object.__setattr__
        set_(self, "name", parent.name)
        set_(self, "dates", parent.dates)
        set_(self, "symbols", tuple(parent.symbols[c] for c in cols))
        set_(self, "info", tuple(parent.info[c] for c in cols))
        set_(self, "_parent", parent)
        set_(self, "_cols", cols)

    def _gather(self, attr: str) -> FloatMatrix:
        cache = self.__dict__.setdefault("_gathered", {})
        if attr not in cache:
            out = np.take(getattr(self._parent, attr), self._cols, axis=1)
            out.flags.writeable = False
            cache[attr] = out
        gathered: FloatMatrix = cache[attr]
        return gathered

    _parent: MarketData
    _cols: IntArray


def _lazy(attr: str) -> property:
    return property(lambda self: self._gather(attr), doc=f"Lazily gathered {attr}.")


for _attr in (*_MATRICES, *_SLICEABLE):
    setattr(_ColumnSubset, _attr, _lazy(_attr))
