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

How the matching runs: one pass over the fills in execution order
(:func:`app.engine.jit.fifo_pieces`), a queue of open lots per symbol; each sell
consumes lots from the head of its symbol's queue. Whole-share quantities are exact
integers in float64, so the pieces are exact; the P&L arithmetic is then vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine import jit, jit_ledger
from app.engine.errors import NumericLimitError
from app.engine.simulator import Fills

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
#: a matrix as its nonzero entries per row: ``(ptr, cols, values)``
SparseRows = tuple[IntArray, IntArray, FloatArray]


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


def match_fifo(
    fills: Fills,
    *,
    n_symbols: int,
    last_mark: FloatArray,
    cum_dividends: FloatArray | None,
    dividends: FloatArray | None = None,
    dividend_events: SparseRows | None = None,
) -> Trades:
    """Match ``fills`` into FIFO round trips.

    ``last_mark`` (n_symbols,) is the close used to value open lots. ``cum_dividends``
    (n_days, n_symbols), if given, is the cumulative cash dividend per share by local
    row (dividends of ex-dates ``<= row``); or give ``dividends`` instead, the cash
    dividend per share by ex-date (n_days, n_symbols), whose cumulative sums are then
    taken at the rows the trades need only (the same values, no matrix built); or
    ``dividend_events``, the same matrix as its nonzero entries per row
    (:attr:`app.engine.simulator.Simulation.dividend_events`; the same bits).
    """
    buy_fill, sell_fill, quantity = fifo_pieces(fills, n_symbols=n_symbols)
    return _assemble(
        fills,
        buy_fill,
        sell_fill,
        quantity,
        last_mark=last_mark,
        cum_dividends=cum_dividends,
        dividends=dividends,
        dividend_events=dividend_events,
    )


def fifo_pieces(
    fills: Fills, *, n_symbols: int
) -> tuple[IntArray, IntArray, FloatArray]:
    """``(buy_fill, sell_fill, quantity)`` of every (lot, sell) piece, unordered;
    ``sell_fill`` is -1 for the unsold rest of a lot.

    Raises :class:`NumericLimitError` if a sell finds no open lot, which whole-share
    float arithmetic guarantees cannot happen below 2**53 shares.
    """
    col = np.ascontiguousarray(fills.col, dtype=np.int64)
    qty = np.ascontiguousarray(fills.quantity, dtype=np.float64)
    buy_fill, sell_fill, quantity, bad = jit.fifo_pieces(col, qty, n_symbols)
    if bad >= 0:
        raise NumericLimitError(
            f"fill {bad} sells more shares of column {int(col[bad])} than are held: "
            "share counts this large (2**53 or more) are not exact in float64. "
            "Prices this small or this volatile are implausible; check the data.",
            row=int(fills.row[bad]),
            col=int(col[bad]),
        )
    return buy_fill, sell_fill, quantity


def closed_trade_stats(
    fills: Fills,
    *,
    n_symbols: int,
    last_mark: FloatArray,
    cum_dividends: FloatArray | None,
) -> tuple[FloatArray, FloatArray, int]:
    """``(pnl, pnl_percent, n_trades)``: the P&L and return of every *closed* trade
    (in no particular order) and the count of all trades, open ones included — what
    the metrics need, without building and sorting the full ledger."""
    buy_fill, sell_fill, quantity = fifo_pieces(fills, n_symbols=n_symbols)
    t = _pnl(
        fills,
        buy_fill,
        sell_fill,
        quantity,
        last_mark=last_mark,
        cum_dividends=cum_dividends,
    )
    closed = t["closed"]
    return t["pnl"][closed], t["pnl_percent"][closed], len(quantity)


def _assemble(
    fills: Fills,
    buy_fill: IntArray,
    sell_fill: IntArray,
    quantity: FloatArray,
    *,
    last_mark: FloatArray,
    cum_dividends: FloatArray | None,
    dividends: FloatArray | None = None,
    dividend_events: SparseRows | None = None,
) -> Trades:
    t = _pnl(
        fills,
        buy_fill,
        sell_fill,
        quantity,
        last_mark=last_mark,
        cum_dividends=cum_dividends,
        dividends=dividends,
        dividend_events=dividend_events,
    )
    order = _ledger_order(fills, buy_fill, t)
    return Trades(
        col=t["col"][order],
        entry_row=t["entry_row"][order],
        entry_price=t["entry_price"][order],
        exit_row=t["exit_row"][order],
        exit_price=t["exit_price"][order],
        quantity=quantity[order],
        pnl=t["pnl"][order],
        pnl_percent=t["pnl_percent"][order],
        is_open=~t["closed"][order],
    )


def _ledger_order(fills: Fills, buy_fill: IntArray, t: dict[str, Any]) -> IntArray:
    """The ledger's order: entry row, then column, then exit row (open last).

    ``fifo_pieces`` emits each lot's pieces in the order its shares were sold (so by
    exit row when the fill log is in row order), the unsold rest last. So when the
    fill rows never decrease and the buy fills are in strictly increasing (row,
    column) order, as the simulator logs them (one buy step per event, columns
    ascending), a stable sort by buy fill is that order exactly and costs a fraction
    of the three-key lexsort, which remains for any other fill log.
    """
    order, done = jit_ledger.order_by_buy(
        fills.row, fills.col, fills.quantity, np.ascontiguousarray(buy_fill)
    )
    if done:
        return order
    exit_key = np.where(t["closed"], t["exit_row"], np.iinfo(np.int64).max)
    lexsorted: IntArray = np.lexsort((exit_key, t["col"], t["entry_row"]))
    return lexsorted


def dividends_at(dividends: FloatArray, rows: IntArray, cols: IntArray) -> FloatArray:
    """``np.cumsum(dividends, axis=0)[rows, cols]`` (same bits) without building the
    ``(n_days, n_symbols)`` cumulative matrix (:func:`app.engine.jit_ledger.
    cumsum_at`)."""
    return jit_ledger.cumsum_at(
        dividends,
        np.ascontiguousarray(rows, dtype=np.int64),
        np.ascontiguousarray(cols, dtype=np.int64),
    )


def _pnl(
    fills: Fills,
    buy_fill: IntArray,
    sell_fill: IntArray,
    quantity: FloatArray,
    *,
    last_mark: FloatArray,
    cum_dividends: FloatArray | None = None,
    dividends: FloatArray | None = None,
    dividend_events: SparseRows | None = None,
) -> dict[str, Any]:
    """Per piece (unordered): column, entry/exit row and price, P&L, return, closed.

    Dividends come either as ``cum_dividends`` (the cumulative matrix, read at the
    entry and exit rows) or as ``dividends`` (per ex-date; the same cumulative sums
    are computed at just those rows): both give the same bits. The arithmetic runs in
    one compiled loop (:func:`app.engine.jit_ledger.piece_pnl`), the same expressions
    in the same order as the vectorised form in the module docstring.
    """
    col, entry_row, entry_price, exit_row, exit_price, pnl, basis = (
        jit_ledger.piece_pnl(
            fills.row,
            fills.col,
            fills.quantity,
            fills.price,
            fills.commission,
            np.ascontiguousarray(buy_fill, dtype=np.int64),
            np.ascontiguousarray(sell_fill, dtype=np.int64),
            np.ascontiguousarray(quantity, dtype=np.float64),
            np.array(last_mark, dtype=np.float64),
        )
    )
    closed = sell_fill >= 0
    given = cum_dividends is not None or dividends is not None
    if (given or dividend_events is not None) and len(col):
        if dividend_events is not None:
            ptr, entry_cols, entry_vals = dividend_events
            through = np.where(closed, exit_row, len(ptr) - 2)
            both = jit_ledger.cumsum_at_sparse(
                ptr, entry_cols, entry_vals, len(last_mark),
                np.concatenate((through, entry_row)), np.tile(col, 2),
            )  # fmt: skip
            at_exit, at_entry = both[: len(col)], both[len(col) :]
        elif cum_dividends is not None:
            through = np.where(closed, exit_row, cum_dividends.shape[0] - 1)
            # flat indices: the same entries as cum_dividends[rows, col], faster
            flat = np.ascontiguousarray(cum_dividends).reshape(-1)
            width = cum_dividends.shape[1]
            at_exit = flat[through * width + col]
            at_entry = flat[entry_row * width + col]
        else:
            assert dividends is not None
            through = np.where(closed, exit_row, dividends.shape[0] - 1)
            both = dividends_at(
                dividends, np.concatenate((through, entry_row)), np.tile(col, 2)
            )
            at_exit, at_entry = both[: len(col)], both[len(col) :]
        pnl += (at_exit - at_entry) * quantity
    return {
        "closed": closed,
        "col": col,
        "entry_row": entry_row,
        "entry_price": entry_price,
        "exit_row": exit_row,
        "exit_price": exit_price,
        "pnl": pnl,
        "pnl_percent": pnl / basis,
    }
