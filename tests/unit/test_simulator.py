"""Simulator: hand-computed fills and equity to the cent, and bookkeeping invariants.

The 3-symbol, 10-day example below is worked out by hand in the comments; the test
checks the engine against those numbers, not against itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.data import forward_fill
from app.engine.errors import CancelledError
from app.engine.simulator import Costs, simulate

CLOSE = np.array(
    [
        [10, 20, 50],
        [11, 20, 51],
        [12, 21, 52],
        [11, 22, 50],
        [10, 22, 49],
        [10, 23, 50],
        [11, 22, 52],
        [12, 21, 53],
        [13, 22, 54],
        [12, 23, 55],
    ],
    dtype=float,
)
OPEN = np.array(
    [
        [10, 20, 50],
        [10.5, 20, 50.5],
        [11.5, 20.5, 51.5],
        [12, 21, 52],
        [11, 22, 50],
        [10, 22, 49],
        [10.5, 23, 50.5],
        [11.5, 22, 52],
        [12.5, 21, 53],
        [13, 22, 54],
    ],
    dtype=float,
)
DECISIONS = np.array([0, 4], dtype=np.int64)
WEIGHTS = np.array([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
COSTS = Costs(commission_rate=0.001, slippage_rate=0.002)
# buy factor  (1+s)(1+c) = 1.002 * 1.001 = 1.003002
# sell factor (1-s)(1-c) = 0.998 * 0.999 = 0.997002


def run(execution: str, **overrides: object) -> object:
    kwargs: dict[str, object] = {
        "open_": OPEN,
        "close": CLOSE,
        "dividends": None,
        "decisions": DECISIONS,
        "weights": WEIGHTS,
        "start_row": 0,
        "end_row": 9,
        "execution": execution,
        "initial_capital": 10_000.0,
        "costs": COSTS,
    }
    kwargs.update(overrides)
    return simulate(**kwargs)  # type: ignore[arg-type]


def test_simulate_close_execution_matches_hand_computation() -> None:
    sim = run("close")
    # Day 0 close, V = 10,000:
    #   A: floor(5000 / (10 * 1.003002)) = floor(498.50) = 498 @ 10.02 -> 4,989.96 +
    # 4.98996
    #   B: floor(5000 / (20 * 1.003002)) = floor(249.25) = 249 @ 20.04 -> 4,989.96 +
    # 4.98996
    #   cash = 10,000 - 2 * 4,994.94996 = 10.10008
    # Day 4 close: close out A: 498 @ 9.98 = 4,970.04 - 4.97004 -> cash 4,975.17004
    #   V = 4,975.17004 + 249 * 22 = 10,453.17004; target 5,226.58502 each
    #   B: a = 5,226.58502 - 5,478 = -251.41498 -> ceil(251.41498 / 21.934044) = 12 sold
    #      @ 21.956 = 263.472 - 0.263472 -> cash 5,238.378568
    #   C: floor(5,226.58502 / (49 * 1.003002)) = floor(106.35) = 106 @ 49.098
    #      = 5,204.388 + 5.204388 -> cash 28.78618
    expected_equity = [
        10.10008 + 498 * 10 + 249 * 20,  # 9,970.10008
        10.10008 + 498 * 11 + 249 * 20,
        10.10008 + 498 * 12 + 249 * 21,
        10.10008 + 498 * 11 + 249 * 22,
        28.78618 + 237 * 22 + 106 * 49,  # 10,436.78618
        28.78618 + 237 * 23 + 106 * 50,
        28.78618 + 237 * 22 + 106 * 52,
        28.78618 + 237 * 21 + 106 * 53,
        28.78618 + 237 * 22 + 106 * 54,
        28.78618 + 237 * 23 + 106 * 55,  # 11,309.78618
    ]
    np.testing.assert_allclose(sim.equity, expected_equity, atol=0.005)
    np.testing.assert_array_equal(sim.positions[-1], [0, 237, 106])
    assert sim.cash[-1] == pytest.approx(28.78618, abs=0.005)
    fills = sim.fills
    np.testing.assert_array_equal(fills.row, [0, 0, 4, 4, 4])
    np.testing.assert_array_equal(fills.col, [0, 1, 0, 1, 2])
    np.testing.assert_array_equal(fills.quantity, [498, 249, -498, -12, 106])
    np.testing.assert_allclose(fills.price, [10.02, 20.04, 9.98, 21.956, 49.098])
    np.testing.assert_allclose(
        fills.commission, [4.98996, 4.98996, 4.97004, 0.263472, 5.204388]
    )


def test_simulate_next_open_execution_matches_hand_computation() -> None:
    sim = run("next_open")
    # Day 0: decision only, nothing filled: equity 10,000.
    # Day 1 open (A 10.5, B 20), V = 10,000:
    #   A: floor(5000 / (10.5 * 1.003002)) = floor(474.77) = 474 @ 10.521
    #      = 4,986.954 + 4.986954
    #   B: 249 @ 20.04 = 4,989.96 + 4.98996  -> cash 13.109086
    # Day 5 open (A 10, B 22, C 49): close out A: 474 @ 9.98 = 4,730.52 - 4.73052
    #   -> cash 4,738.898566; V = 4,738.898566 + 249 * 22 = 10,216.898566
    #   B: a = 5,108.449283 - 5,478 = -369.550717 -> ceil(16.85) = 17 sold @ 21.956
    #      = 373.252 - 0.373252 -> cash 5,111.777314
    #   C: floor(5,108.449283 / 49.147098) = floor(103.94) = 103 @ 49.098
    #      = 5,057.094 + 5.057094 -> cash 49.62622
    expected_equity = [
        10_000.0,
        13.109086 + 474 * 11 + 249 * 20,  # 10,207.109086
        13.109086 + 474 * 12 + 249 * 21,
        13.109086 + 474 * 11 + 249 * 22,
        13.109086 + 474 * 10 + 249 * 22,
        49.62622 + 232 * 23 + 103 * 50,  # 10,535.62622
        49.62622 + 232 * 22 + 103 * 52,
        49.62622 + 232 * 21 + 103 * 53,
        49.62622 + 232 * 22 + 103 * 54,
        49.62622 + 232 * 23 + 103 * 55,  # 11,050.62622
    ]
    np.testing.assert_allclose(sim.equity, expected_equity, atol=0.005)
    np.testing.assert_array_equal(sim.fills.row, [1, 1, 5, 5, 5])
    np.testing.assert_array_equal(sim.fills.quantity, [474, 249, -474, -17, 103])


def test_simulate_no_decisions_gives_flat_equity() -> None:
    sim = run(
        "close",
        decisions=np.zeros(0, dtype=np.int64),
        weights=np.zeros((0, 3)),
    )
    np.testing.assert_array_equal(sim.equity, np.full(10, 10_000.0))
    assert len(sim.fills) == 0


def test_simulate_buy_and_hold_zero_costs_reproduces_price_path() -> None:
    sim = run(
        "close",
        decisions=np.array([0], dtype=np.int64),
        weights=np.array([[1.0, 0.0, 0.0]]),
        costs=Costs(0.0, 0.0),
    )
    # 1,000 shares of A at 10 exactly, no cash left: equity = 1,000 * close.
    np.testing.assert_allclose(sim.equity, 1_000 * CLOSE[:, 0])
    assert sim.cash[-1] == 0.0


def test_simulate_dividends_are_credited_on_ex_date_to_previous_holders() -> None:
    dividends = np.zeros_like(CLOSE)
    dividends[2, 0] = 0.5  # ex-date day 2 for A
    dividends[1, 0] = 9.0  # ex-date day 1: nobody holds A at day 0's close (next_open)
    sim = run("next_open", dividends=dividends)
    # Held 474 A at day 1's close -> 474 * 0.5 = 237 on day 2; day 1's dividend belongs
    # to holders at day 0's close, who held nothing.
    np.testing.assert_allclose(sim.dividend_income[1:3], [0.0, 237.0])
    base = run("next_open")
    np.testing.assert_allclose(sim.equity[2:5] - base.equity[2:5], 237.0, atol=1e-9)


def test_simulate_untradeable_symbol_is_skipped_and_kept() -> None:
    open_ = OPEN.copy()
    open_[5, 1] = np.nan  # B does not open on day 5
    sim = run("next_open", open_=open_)
    assert sim.positions[5, 1] == 249  # kept, not traded
    assert sim.cash.min() >= 0.0


def test_simulate_delisted_symbol_is_sold_at_last_close() -> None:
    close, open_ = CLOSE.copy(), OPEN.copy()
    close[7:, 1] = np.nan
    open_[7:, 1] = np.nan
    sim = run("close", close=close, open_=open_, delist_rows=np.array([-1, 6, -1]))
    assert sim.positions[6, 1] == 0
    sale = (sim.fills.row == 6) & (sim.fills.col == 1)
    assert sim.fills.quantity[sale][0] == -237
    assert sim.fills.price[sale][0] == pytest.approx(22 * 0.998)


def test_simulate_equity_equals_cash_plus_positions_every_day() -> None:
    sim = run("next_open")
    np.testing.assert_allclose(
        sim.equity, sim.cash + (sim.positions * CLOSE).sum(axis=1), rtol=1e-12
    )


def test_simulate_should_cancel_stops_run() -> None:
    with pytest.raises(CancelledError):
        run("close", should_cancel=lambda: True)


def test_simulate_reports_progress_to_completion() -> None:
    seen: list[tuple[float, int, int]] = []
    run("close", on_progress=lambda f, row, n: seen.append((f, row, n)))
    assert seen[-1] == (1.0, 4, 5)


def test_forward_fill_carries_last_value_and_keeps_leading_nan() -> None:
    a = np.array([[np.nan, 1.0], [2.0, np.nan], [np.nan, np.nan], [3.0, 4.0]])
    out = forward_fill(a)
    np.testing.assert_array_equal(
        out, [[np.nan, 1.0], [2.0, 1.0], [2.0, 1.0], [3.0, 4.0]]
    )
