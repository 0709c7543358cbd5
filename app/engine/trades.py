"""Round-trip trades from fills, matched first-in first-out, fully vectorised.

Each buy fill opens a *lot*; sells consume the oldest open lots of the same symbol
first. A sell that spans several lots yields one trade per lot (partial exits split
trades); the unsold part of a lot at the end is an **open** trade, marked to market at
the last close (no exit costs).

Per trade, with ``n`` shares matched between buy fill ``b`` and sell fill ``s``:

* ``entry_price`` / ``exit_price`` are the fill prices (slippage included);
* commissions are attributed pro rata per share from each fill;
* dividends: the trade earns the cash dividends of every ex-date after the entry row
  up to and including the exit row (shares held at the previous close earn them);
* ``pnl = n·(exit_price − entry_price) − entry_commission − exit_commission +
  dividends``; ``pnl_percent = pnl / (n·entry_price + entry_commission)`` — the return
  on
  the cash the lot cost.

So the P&L of all trades (closed and open) adds up to final equity minus initial
capital.

How the matching is vectorised: per symbol, buys and sells are laid on one axis of
cumulative shares (offset per symbol so symbols never overlap; a long-only book never
sells more than it bought). Every lot and every sell is an interval on that axis, and
each piece between consecutive interval ends belongs to exactly one lot and at most one
sell: that piece is a trade.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.engine.simulator import Fills

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Trades:
    """Round-trip trades, one row per (lot, sell) piece; rows local to the run.

    Arrays have shape ``(n_trades,)``; for open trades ``exit_row`` is -1 and
    ``exit_price`` NaN. Sorted by entry row, then symbol column, then exit row.
    """

    col: IntArray
    entry_row: IntArray
    entry_price: FloatArray
    exit_row: IntArray
    exit_price: FloatArray
    quantity: FloatArray
    pnl: FloatArray
    pnl_percent: FloatArray
    is_open: BoolArray

    def __len__(self) -> int:
        return len(self.col)


def _intervals(col: IntArray, qty: FloatArray, offset: FloatArray) -> FloatArray:
    """Ends of consecutive intervals of ``qty`` per column on the shared share axis.

    Inputs are sorted by column (stable in time). ``offset[c]`` is where column c
    starts.
    """
    ends = np.cumsum(qty)
    first = np.r_[True, col[1:] != col[:-1]] if len(col) else np.zeros(0, dtype=bool)
    start_in_cum = np.where(first, ends - qty, 0.0)
    base = (
        np.maximum.accumulate(np.where(first, np.arange(len(col)), 0))
        if len(col)
        else col
    )
    return ends - start_in_cum[base] + offset[col]


def match_fifo(
    fills: Fills,
    *,
    n_symbols: int,
    last_mark: FloatArray,
    cum_dividends: FloatArray | None,
) -> Trades:
    """Match ``fills`` into FIFO round trips.

    ``last_mark`` (n_symbols,) is the close used to value open lots. ``cum_dividends``
    (n_days, n_symbols), if given, is the cumulative cash dividend per share by local
    row (dividends of ex-dates ``<= row``).
    """
    is_buy = fills.quantity > 0
    b = np.flatnonzero(is_buy)
    s = np.flatnonzero(~is_buy)
    b = b[np.argsort(fills.col[b], kind="stable")]
    s = s[np.argsort(fills.col[s], kind="stable")]
    bq, sq = fills.quantity[b], -fills.quantity[s]
    per_col = np.bincount(fills.col[b], weights=bq, minlength=n_symbols)
    offset = np.r_[0.0, np.cumsum(per_col)[:-1]]
    b_end = _intervals(fills.col[b], bq, offset)
    s_end = _intervals(fills.col[s], sq, offset)
    s_start = s_end - sq

    cuts = np.unique(np.concatenate((b_end - bq, b_end, s_end)))
    lo, hi = cuts[:-1], cuts[1:]
    # Every piece lies inside exactly one lot: cuts include every lot's start and end,
    # and the lots of all symbols tile [0, total bought) without gaps.
    lot = np.searchsorted(b_end, lo, side="right")
    sell_fill = np.full(len(lo), -1, dtype=np.int64)
    if len(s_end):
        sell = np.minimum(np.searchsorted(s_end, lo, side="right"), len(s_end) - 1)
        closed = (s_start[sell] <= lo) & (lo < s_end[sell])
        sell_fill = np.where(closed, s[sell], -1)
    return _assemble(
        fills,
        b[lot],
        sell_fill,
        hi - lo,
        last_mark=last_mark,
        cum_dividends=cum_dividends,
    )


def _assemble(
    fills: Fills,
    buy_fill: IntArray,
    sell_fill: IntArray,
    quantity: FloatArray,
    *,
    last_mark: FloatArray,
    cum_dividends: FloatArray | None,
) -> Trades:
    closed = sell_fill >= 0
    sf = np.where(closed, sell_fill, 0)
    col = fills.col[buy_fill]
    entry_row = fills.row[buy_fill]
    entry_price = fills.price[buy_fill]
    entry_fee = fills.commission[buy_fill] / fills.quantity[buy_fill] * quantity
    if len(fills):
        exit_row = np.where(closed, fills.row[sf], -1)
        exit_price = np.where(closed, fills.price[sf], np.nan)
        exit_fee = (
            np.where(closed, fills.commission[sf] / -fills.quantity[sf], 0.0) * quantity
        )
    else:
        exit_row, exit_price, exit_fee = entry_row, entry_price, entry_fee
    value_out = np.where(closed, exit_price, last_mark[col]) * quantity
    pnl = value_out - entry_price * quantity - entry_fee - exit_fee
    if cum_dividends is not None and len(col):
        through = np.where(closed, exit_row, cum_dividends.shape[0] - 1)
        pnl += (cum_dividends[through, col] - cum_dividends[entry_row, col]) * quantity
    basis = entry_price * quantity + entry_fee
    exit_key = np.where(closed, exit_row, np.iinfo(np.int64).max)
    order = np.lexsort((exit_key, col, entry_row))
    return Trades(
        col=col[order],
        entry_row=entry_row[order],
        entry_price=entry_price[order],
        exit_row=exit_row[order],
        exit_price=exit_price[order],
        quantity=quantity[order],
        pnl=pnl[order],
        pnl_percent=(pnl / basis)[order],
        is_open=~closed[order],
    )
