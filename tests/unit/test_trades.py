"""FIFO round-trip matching: hand-computed trades and the P&L identity."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.simulator import Costs, Fills, simulate
from app.engine.trades import match_fifo
from tests.unit.test_simulator import CLOSE, DECISIONS, OPEN, WEIGHTS


def fills(rows, cols, qty, price, fee=None) -> Fills:  # type: ignore[no-untyped-def]
    qty = np.asarray(qty, dtype=float)
    return Fills(
        row=np.asarray(rows, dtype=np.int64),
        col=np.asarray(cols, dtype=np.int64),
        quantity=qty,
        price=np.asarray(price, dtype=float),
        commission=np.zeros_like(qty) if fee is None else np.asarray(fee, dtype=float),
    )


def test_match_fifo_hand_example_from_simulator() -> None:
    sim = simulate(
        open_=OPEN,
        close=CLOSE,
        dividends=None,
        decisions=DECISIONS,
        weights=WEIGHTS,
        start_row=0,
        end_row=9,
        execution="close",
        initial_capital=10_000.0,
        costs=Costs(0.001, 0.002),
    )
    t = match_fifo(sim.fills, n_symbols=3, last_mark=CLOSE[-1], cum_dividends=None)
    # A: 498 bought @10.02 (fee 4.98996), sold @9.98 (fee 4.97004):
    #    498 * (9.98 - 10.02) - 4.98996 - 4.97004 = -29.88
    # B: 12 of 249 sold @21.956 (fee 0.263472): 12 * 1.916 - 4.98996 * 12/249 - 0.263472
    #    = 22.992 - 0.24048 - 0.263472 = 22.488048; 237 still open, marked at 23:
    #    237 * 2.96 - 4.98996 * 237/249 = 701.52 - 4.74948 = 696.77052
    # C: 106 open @49.098 (fee 5.204388) marked at 55: 625.612 - 5.204388 = 620.407612
    assert list(t.col) == [0, 1, 1, 2]
    assert list(t.is_open) == [False, False, True, True]
    np.testing.assert_array_equal(t.quantity, [498, 12, 237, 106])
    np.testing.assert_allclose(
        t.pnl, [-29.88, 22.488048, 696.77052, 620.407612], atol=1e-9
    )
    assert t.pnl.sum() == pytest.approx(sim.equity[-1] - 10_000.0, abs=1e-9)
    assert t.pnl_percent[0] == pytest.approx(-29.88 / (498 * 10.02 + 4.98996))


def test_match_fifo_sell_spanning_two_lots_splits_the_trade() -> None:
    f = fills([0, 1, 2, 3], [0, 0, 0, 0], [10, 5, -12, -3], [100, 110, 120, 90])
    t = match_fifo(f, n_symbols=1, last_mark=np.array([0.0]), cum_dividends=None)
    # lot1 (10 @100) -> 10 sold @120; lot2 (5 @110) -> 2 sold @120, 3 sold @90.
    np.testing.assert_array_equal(t.quantity, [10, 2, 3])
    np.testing.assert_array_equal(t.entry_row, [0, 1, 1])
    np.testing.assert_array_equal(t.exit_row, [2, 2, 3])
    np.testing.assert_allclose(t.pnl, [200, 20, -60])
    assert not t.is_open.any()


def test_match_fifo_symbols_do_not_mix() -> None:
    f = fills([0, 0, 1, 2], [1, 0, 0, 1], [4, 7, -7, -1], [10, 20, 25, 12])
    t = match_fifo(f, n_symbols=2, last_mark=np.array([30.0, 15.0]), cum_dividends=None)
    got = {
        (int(c), float(q), bool(o)): float(p)
        for c, q, o, p in zip(t.col, t.quantity, t.is_open, t.pnl, strict=True)
    }
    assert got == {(0, 7.0, False): 35.0, (1, 1.0, False): 2.0, (1, 3.0, True): 15.0}


def test_match_fifo_credits_dividends_between_entry_and_exit() -> None:
    f = fills([0, 3], [0, 0], [10, -10], [100, 100])
    cum = np.cumsum(np.array([[1.0], [0.0], [2.0], [0.0], [4.0]]), axis=0)
    t = match_fifo(f, n_symbols=1, last_mark=np.array([100.0]), cum_dividends=cum)
    # ex-dates after row 0 up to and including row 3: only the 2.0 of row 2.
    np.testing.assert_allclose(t.pnl, [20.0])


def test_match_fifo_no_fills_gives_no_trades() -> None:
    t = match_fifo(
        fills([], [], [], []), n_symbols=3, last_mark=np.zeros(3), cum_dividends=None
    )
    assert len(t) == 0
