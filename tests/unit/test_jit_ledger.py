"""The compiled ledger helpers give the same bits as the numpy expressions they replace.

References are computed here with plain numpy: the full ``np.cumsum`` matrix, the
vectorised per-piece P&L of the trades module docstring, and the three-key lexsort.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.engine import jit_ledger
from app.engine.jit_ledger import cumsum_at_sparse
from app.engine.jit_portfolio import sparse_rows
from app.engine.simulator import Fills
from app.engine.trades import dividends_at, fifo_pieces, match_fifo


@pytest.mark.parametrize("seed", range(4))
def test_cumsum_at_equals_numpy_cumsum_bit_for_bit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.random((300, 17)) * (rng.random((300, 17)) < 0.05)  # sparse, like divs
    x[rng.integers(0, 300, 5), rng.integers(0, 17, 5)] = -0.0
    x[0, 3] = -0.0
    rows = rng.integers(0, 300, 400)
    cols = rng.integers(0, 17, 400)
    want = np.cumsum(x, axis=0)[rows, cols]
    got = dividends_at(x, rows, cols)
    assert got.tobytes() == want.tobytes()  # same bits, signed zeros included
    # a read-only column slice (how a contiguous universe reaches the ledger)
    wide = np.concatenate([x, rng.random((300, 2))], axis=1)[:, :17]
    wide.flags.writeable = False
    assert dividends_at(wide, rows, cols).tobytes() == want.tobytes()


@pytest.mark.parametrize("seed", range(4))
def test_cumsum_at_sparse_equals_numpy_cumsum_bit_for_bit(seed: int) -> None:
    """The ledger's dividend sums from the portfolio kernel's sparse rows."""
    rng = np.random.default_rng(seed)
    x = rng.random((300, 17)) * (rng.random((300, 17)) < 0.05)
    x[0] = 0.0  # dividends per share: row 0 is 0, never -0.0 or NaN
    x[rng.integers(1, 300, 3), rng.integers(0, 17, 3)] = 1e3 * rng.random(3)
    rows = rng.integers(0, 300, 400)
    cols = rng.integers(0, 17, 400)
    want = np.cumsum(x, axis=0)[rows, cols]
    ptr, entry_cols, entry_vals = sparse_rows(x)
    assert len(entry_cols) == np.count_nonzero(x)
    got = cumsum_at_sparse(ptr, entry_cols, entry_vals, 17, rows, cols)
    assert got.tobytes() == want.tobytes()
    none = rows[:0]
    assert cumsum_at_sparse(ptr, entry_cols, entry_vals, 17, none, none).size == 0


def test_sparse_rows_reads_nan_and_inf_as_nan_to_num() -> None:
    x = np.zeros((4, 3))
    x[1, 2], x[2, 0], x[2, 1], x[3, 1] = np.nan, 0.5, np.inf, -np.inf
    ptr, cols, vals = sparse_rows(x)
    want = np.nan_to_num(x)
    r, c = np.nonzero(want)
    np.testing.assert_array_equal(ptr, [0, 0, 0, 2, 3])
    np.testing.assert_array_equal(cols, c)
    np.testing.assert_array_equal(vals, want[r, c])


def test_cumsum_at_nan_propagates_like_cumsum() -> None:
    x = np.zeros((5, 2))
    x[2, 1] = np.nan
    got = dividends_at(x, np.array([1, 2, 4, 4]), np.array([1, 1, 1, 0]))
    np.testing.assert_array_equal(got, np.cumsum(x, axis=0)[[1, 2, 4, 4], [1, 1, 1, 0]])


def _random_fills(rng: np.random.Generator, n_sym: int, n_events: int) -> Fills:
    """A simulator-like fill log: per event, sells then buys, columns ascending."""
    rows, cols, qty = [], [], []
    held = np.zeros(n_sym)
    for r in range(n_events):
        for c in range(n_sym):
            if held[c] > 0 and rng.random() < 0.4:
                q = float(rng.integers(1, held[c] + 1))
                rows.append(r), cols.append(c), qty.append(-q)
                held[c] -= q
        for c in range(n_sym):
            if rng.random() < 0.5:
                q = float(rng.integers(1, 50))
                rows.append(r), cols.append(c), qty.append(q)
                held[c] += q
    n = len(rows)
    price = rng.random(n) * 100 + 1
    return Fills(
        row=np.array(rows, dtype=np.int64),
        col=np.array(cols, dtype=np.int64),
        quantity=np.array(qty),
        price=price,
        commission=np.abs(np.array(qty)) * price * 0.001,
    )


def _numpy_ledger(
    fills: Fills, last_mark: np.ndarray, cum: np.ndarray
) -> dict[str, np.ndarray]:
    """The vectorised per-piece formulas and the lexsort order (reference)."""
    buy, sell, quantity = fifo_pieces(fills, n_symbols=last_mark.size)
    closed = sell >= 0
    sf = np.where(closed, sell, 0)
    col = fills.col[buy]
    entry_row = fills.row[buy]
    entry_price = fills.price[buy]
    entry_fee = fills.commission[buy] / fills.quantity[buy] * quantity
    exit_row = np.where(closed, fills.row[sf], -1)
    exit_price = np.where(closed, fills.price[sf], np.nan)
    exit_fee = (
        np.where(closed, fills.commission[sf] / -fills.quantity[sf], 0.0) * quantity
    )
    value_out = np.where(closed, exit_price, last_mark[col]) * quantity
    pnl = value_out - entry_price * quantity - entry_fee - exit_fee
    through = np.where(closed, exit_row, cum.shape[0] - 1)
    pnl += (cum[through, col] - cum[entry_row, col]) * quantity
    pct = pnl / (entry_price * quantity + entry_fee)
    exit_key = np.where(closed, exit_row, np.iinfo(np.int64).max)
    order = np.lexsort((exit_key, col, entry_row))
    return {
        "col": col[order],
        "entry_row": entry_row[order],
        "exit_row": exit_row[order],
        "exit_price": exit_price[order],
        "quantity": quantity[order],
        "pnl": pnl[order],
        "pnl_percent": pct[order],
    }


@pytest.mark.parametrize("shuffle", [False, True])
def test_match_fifo_equals_the_numpy_ledger(shuffle: bool) -> None:
    rng = np.random.default_rng(11)
    fills = _random_fills(rng, n_sym=9, n_events=40)
    if shuffle:  # buys out of column order: the lexsort fallback must take over
        k = np.flatnonzero(fills.quantity > 0)[:2]
        if fills.row[k[0]] == fills.row[k[1]]:
            swap = np.arange(len(fills))
            swap[k] = swap[k[::-1]]
            fills = Fills(
                *(getattr(fills, f)[swap] for f in Fills.__dataclass_fields__)
            )
    last_mark = rng.random(9) * 100
    divs = rng.random((40, 9)) * (rng.random((40, 9)) < 0.1)
    want = _numpy_ledger(fills, last_mark, np.cumsum(divs, axis=0))
    got = match_fifo(
        fills, n_symbols=9, last_mark=last_mark, cum_dividends=None, dividends=divs
    )
    for name, expected in want.items():
        assert getattr(got, name).tobytes() == expected.tobytes(), name
    dense = match_fifo(
        fills,
        n_symbols=9,
        last_mark=last_mark,
        cum_dividends=np.cumsum(divs, axis=0),
    )
    for name, expected in want.items():
        assert getattr(dense, name).tobytes() == expected.tobytes(), name


def test_order_by_buy_refuses_an_unordered_log() -> None:
    row = np.array([0, 0, 1], dtype=np.int64)
    qty = np.array([1.0, 1.0, 1.0])
    buys = np.array([0, 1, 2], dtype=np.int64)
    _, ok = jit_ledger.order_by_buy(row, np.array([0, 1, 0], dtype=np.int64), qty, buys)
    assert ok
    _, ok = jit_ledger.order_by_buy(row, np.array([1, 0, 0], dtype=np.int64), qty, buys)
    assert not ok  # same row, columns descending
    _, ok = jit_ledger.order_by_buy(
        np.array([1, 0, 2], dtype=np.int64), np.zeros(3, dtype=np.int64), qty, buys
    )
    assert not ok  # rows decreasing
