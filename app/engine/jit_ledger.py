"""Compiled (numba) helpers of the trade ledger: per-piece P&L and dividend sums.

:mod:`app.engine.trades` used to compute these with ~25 numpy calls over the pieces
and a full ``(n_days, n_symbols)`` cumulative sum of the dividends (a 10 MB matrix
for 500 symbols over 10 years, of which it read two entries per piece). Here:

* :func:`piece_pnl` evaluates the same element-wise expressions, in the same order,
  for each piece in one loop. numba compiles without fast-math (no FMA contraction,
  no reassociation), so every value is bit-identical to the numpy expressions it
  replaces (``tests/unit/test_jit_ledger.py`` checks that against them).
* :func:`cumsum_at` returns ``np.cumsum(x, axis=0)[rows, cols]`` by walking the rows
  once with a running sum per column (the same sequential additions as ``cumsum``,
  so the same bits), answering each requested ``(row, col)`` as the walk passes its
  row: no matrix is written. :func:`cumsum_at_sparse` does the same from the
  matrix's nonzero entries (the portfolio kernel's sparse dividends).

Kept apart from :mod:`app.engine.jit` (the simulator's event kernels) so each can
change on its own; :func:`app.engine.jit.warm_up` calls :func:`warm_up`.
"""

# Kernels take positional arrays: numba dispatch of keyword arguments is slower.
# ruff: noqa: PLR0917

from __future__ import annotations

import time

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
FloatMatrix = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@numba.njit(cache=True)
def _by_row(rows: IntArray) -> tuple[int, IntArray, IntArray]:  # pragma: no cover
    """The requests bucketed by row (a counting sort: no comparison sort of the k
    keys): ``(largest row, start, by_row)``, where the requests for row ``t`` are
    ``by_row[start[t]:start[t + 1]]``."""
    k = rows.shape[0]
    last = 0
    for i in range(k):
        last = max(last, rows[i])
    start = np.zeros(last + 2, dtype=np.int64)
    for i in range(k):
        start[rows[i] + 1] += 1
    for t in range(last + 1):
        start[t + 1] += start[t]
    fill = start[:-1].copy()
    by_row = np.empty(k, dtype=np.int64)
    for i in range(k):
        by_row[fill[rows[i]]] = i
        fill[rows[i]] += 1
    return last, start, by_row


@numba.njit(cache=True)
def cumsum_at(
    x: FloatMatrix, rows: IntArray, cols: IntArray
) -> FloatArray:  # pragma: no cover - jitted
    """``np.cumsum(x, axis=0)[rows, cols]``, bit for bit, without the matrix.

    ``cumsum`` computes ``out[0] = x[0]`` and ``out[t] = out[t - 1] + x[t]`` per
    column; this keeps that running value per column and stops after the largest
    requested row. ``rows`` must lie in ``[0, x.shape[0])``.
    """
    k = rows.shape[0]
    out = np.empty(k)
    if k == 0:
        return out
    last, start, by_row = _by_row(rows)
    acc = x[0].copy()
    for t in range(last + 1):
        if t > 0:
            for c in range(acc.shape[0]):
                acc[c] += x[t, c]
        for j in range(start[t], start[t + 1]):
            out[by_row[j]] = acc[cols[by_row[j]]]
    return out


@numba.njit(cache=True)
def cumsum_at_sparse(  # pragma: no cover - jitted
    ptr: IntArray,
    entry_cols: IntArray,
    entry_vals: FloatArray,
    n_cols: int,
    rows: IntArray,
    cols: IntArray,
) -> FloatArray:
    """:func:`cumsum_at` of a matrix given by its nonzero entries per row
    (:func:`app.engine.jit_portfolio.sparse_rows`): the running sums add only the
    nonzero entries, and adding the zeros skipped leaves a sum unchanged, so the
    bits are the same (for a matrix without NaN or -0.0, as dividends per share
    are; the sums start from +0.0); a dividend matrix has entries
    on a few percent of its cells, so this reads a few percent of the work."""
    k = rows.shape[0]
    out = np.empty(k)
    if k == 0:
        return out
    last, start, by_row = _by_row(rows)
    acc = np.zeros(n_cols)
    for t in range(last + 1):
        for e in range(ptr[t], ptr[t + 1]):
            acc[entry_cols[e]] += entry_vals[e]
        for j in range(start[t], start[t + 1]):
            out[by_row[j]] = acc[cols[by_row[j]]]
    return out


@numba.njit(cache=True)
def piece_pnl(  # pragma: no cover - jitted
    f_row: IntArray,
    f_col: IntArray,
    f_qty: FloatArray,
    f_px: FloatArray,
    f_fee: FloatArray,
    buy_fill: IntArray,
    sell_fill: IntArray,
    quantity: FloatArray,
    last_mark: FloatArray,
) -> tuple[
    IntArray, IntArray, FloatArray, IntArray, FloatArray, FloatArray, FloatArray
]:
    """Per (lot, sell) piece, before dividends: ``(col, entry_row, entry_price,
    exit_row, exit_price, pnl, basis)``; ``sell_fill`` -1 marks an open piece
    (``exit_row`` -1, ``exit_price`` NaN, valued at ``last_mark[col]``).

    The expressions of :func:`app.engine.trades._pnl`, in its order::

        entry_fee = fee[b] / qty[b] * n
        exit_fee  = (fee[s] / -qty[s] if closed else 0.0) * n
        pnl       = (exit_price if closed else last_mark[col]) * n
                    - entry_price * n - entry_fee - exit_fee
        basis     = entry_price * n + entry_fee
    """
    k = quantity.shape[0]
    col = np.empty(k, dtype=np.int64)
    entry_row = np.empty(k, dtype=np.int64)
    entry_price = np.empty(k)
    exit_row = np.empty(k, dtype=np.int64)
    exit_price = np.empty(k)
    pnl = np.empty(k)
    basis = np.empty(k)
    for i in range(k):
        b = buy_fill[i]
        s = sell_fill[i]
        n = quantity[i]
        c = f_col[b]
        ep = f_px[b]
        entry_fee = f_fee[b] / f_qty[b] * n
        if s >= 0:
            xp = f_px[s]
            exit_row[i] = f_row[s]
            exit_price[i] = xp
            exit_fee = f_fee[s] / -f_qty[s] * n
            value_out = xp * n
        else:
            exit_row[i] = -1
            exit_price[i] = np.nan
            exit_fee = 0.0 * n
            value_out = last_mark[c] * n
        col[i] = c
        entry_row[i] = f_row[b]
        entry_price[i] = ep
        pnl[i] = value_out - ep * n - entry_fee - exit_fee
        basis[i] = ep * n + entry_fee
    return col, entry_row, entry_price, exit_row, exit_price, pnl, basis


@numba.njit(cache=True)
def order_by_buy(  # pragma: no cover - jitted
    f_row: IntArray, f_col: IntArray, f_qty: FloatArray, buy_fill: IntArray
) -> tuple[IntArray, bool]:
    """``(np.argsort(buy_fill, kind="stable"), True)`` by a counting sort, when the
    fill rows never decrease and the buy fills are in strictly increasing (row,
    column) order; else ``(empty, False)``."""
    n = f_row.shape[0]
    k = buy_fill.shape[0]
    prev_row, prev_col = -1, -1
    for i in range(n):
        if i > 0 and f_row[i] < f_row[i - 1]:
            return np.empty(0, dtype=np.int64), False
        if f_qty[i] > 0:
            if f_row[i] == prev_row and f_col[i] <= prev_col:
                return np.empty(0, dtype=np.int64), False
            prev_row, prev_col = f_row[i], f_col[i]
    start = np.zeros(n + 1, dtype=np.int64)
    for j in range(k):
        start[buy_fill[j] + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    order = np.empty(k, dtype=np.int64)
    for j in range(k):
        order[start[buy_fill[j]]] = j
        start[buy_fill[j]] += 1
    return order, True


def warm_up() -> float:
    """Compile (or load from numba's on-disk cache) every kernel here; seconds."""
    t0 = time.perf_counter()
    ints, floats = np.zeros(2, dtype=np.int64), np.ones(2)
    # the engine passes read-only dataset views, C-ordered or column slices ('A')
    for matrix in (np.ones((2, 2)), np.ones((2, 3))[:, :2]):
        cumsum_at(matrix, ints, ints)
        matrix.flags.writeable = False
        cumsum_at(matrix, ints, ints)
    cumsum_at_sparse(np.array([0, 1, 2]), ints, floats, 2, ints, ints)
    piece_pnl(ints, ints, floats, floats, floats, ints, ints, floats, floats)
    order_by_buy(ints, ints, floats, ints)
    return time.perf_counter() - t0
