"""Positions from fills and lots: a hand-computed book, the P&L identities and the
per-position statistics."""

from __future__ import annotations

import numpy as np
import pytest

from app.engine.positions import (
    build_positions,
    exposure,
    holdings_book,
    position_metrics,
)
from app.engine.simulator import Fills
from app.engine.trades import match_fifo

# Two symbols over 6 sessions (days 0..5 = calendar days 0,1,2,5,6,7).
DAYS = np.array([0, 1, 2, 5, 6, 7], dtype=np.int64)
LAST_MARK = np.array([13.0, 7.0])


def _fills() -> Fills:
    # A: buy 10 @10 (fee 1) day 0, buy 5 @11 (fee .5) day 1, sell 15 @12 (fee 1.8)
    #    day 2  -> position 1 closed; buy 4 @12.5 day 3 -> position 2, open.
    # B: buy 20 @5 (fee 1) day 1, sell 5 @6 (fee .3) day 3 -> open with 15.
    return Fills(
        row=np.array([0, 1, 1, 2, 3, 3], dtype=np.int64),
        col=np.array([0, 0, 1, 0, 0, 1], dtype=np.int64),
        quantity=np.array([10.0, 5.0, 20.0, -15.0, 4.0, -5.0]),
        price=np.array([10.0, 11.0, 5.0, 12.0, 12.5, 6.0]),
        commission=np.array([1.0, 0.5, 1.0, 1.8, 0.0, 0.3]),
    )


def _cum_dividends() -> np.ndarray:
    div = np.zeros((6, 2))
    div[2, 0] = 0.5  # A ex-date day 2: 15 shares held at day 1's close
    div[4, 1] = 0.25  # B ex-date day 4: 15 shares held at day 3's close
    return np.cumsum(div, axis=0)


def test_hand_computed_positions() -> None:
    f = _fills()
    cum = _cum_dividends()
    lots = match_fifo(f, n_symbols=2, last_mark=LAST_MARK, cum_dividends=cum)
    p = build_positions(f, lots, days=DAYS, last_mark=LAST_MARK, cum_dividends=cum)
    assert len(p) == 3
    # sorted by (opened, col): A#1 (day 0), B (day 1), A#2 (day 3)
    assert p.col.tolist() == [0, 1, 0]
    assert p.opened_row.tolist() == [0, 1, 3]
    assert p.closed_row.tolist() == [2, -1, -1]
    # A#1: cost 100 + 55 + 1.5 = 156.5; proceeds 180 - 1.8 = 178.2; dividends 7.5
    assert p.cost[0] == pytest.approx(156.5)
    assert p.dividends[0] == pytest.approx(7.5)
    assert p.pnl[0] == pytest.approx(178.2 - 156.5 + 7.5)
    assert p.avg_entry_price[0] == pytest.approx(155.0 / 15.0)
    assert p.avg_exit_price[0] == pytest.approx(12.0)
    assert p.peak_shares[0] == 15.0 and p.open_shares[0] == 0.0
    assert p.holding_days[0] == 2 and p.n_fills[0] == 3 and p.n_lots[0] == 2
    # B: cost 101; proceeds 29.7; dividends 15 * .25; 15 held at 7
    assert p.pnl[1] == pytest.approx(29.7 - 101.0 + 3.75 + 105.0)
    assert p.open_shares[1] == 15.0 and p.avg_exit_price[1] == 6.0
    assert p.holding_days[1] == 6  # day 1 (cal 1) to the last session (cal 7)
    # A#2: 4 @12.5 marked at 13, no fee
    assert p.pnl[2] == pytest.approx(2.0) and np.isnan(p.avg_exit_price[2])
    assert p.return_.tolist() == pytest.approx((p.pnl / p.cost).tolist())
    # lots partition each position
    np.testing.assert_allclose(p.realised_pnl + p.unrealised_pnl, p.pnl)
    assert p.unrealised_pnl[0] == 0.0 and p.realised_pnl[2] == 0.0
    assert p.pnl.sum() == pytest.approx(lots.pnl.sum())


def test_position_statistics_count_closed_positions_only() -> None:
    f = _fills()
    lots = match_fifo(f, n_symbols=2, last_mark=LAST_MARK, cum_dividends=None)
    p = build_positions(f, lots, days=DAYS, last_mark=LAST_MARK, cum_dividends=None)
    m = position_metrics(p, lots, f)
    assert (m["total_fills"], m["total_positions"]) == (6, 3)
    assert (m["closed_positions"], m["open_positions"]) == (1, 2)
    assert m["total_lots"] == len(lots)
    assert m["position_win_rate"] == 1.0
    assert m["position_profit_factor"] is None  # no losing position
    assert m["avg_position_return"] == pytest.approx(p.return_[0])
    assert m["avg_holding_days"] == 2.0
    closed_lots = lots.pnl[~lots.is_open]
    assert m["lot_win_rate"] == pytest.approx(np.mean(closed_lots > 0))


def test_no_fills_gives_no_positions_and_null_statistics() -> None:
    empty = Fills(*(np.zeros(0, dtype=np.int64),) * 2, *(np.zeros(0),) * 3)
    lots = match_fifo(empty, n_symbols=2, last_mark=LAST_MARK, cum_dividends=None)
    p = build_positions(empty, lots, days=DAYS, last_mark=LAST_MARK, cum_dividends=None)
    assert len(p) == 0
    m = position_metrics(p, lots, empty)
    assert m["total_positions"] == 0 and m["position_win_rate"] is None


def test_exposure_and_holdings_book_agree_with_dense_arrays() -> None:
    rng = np.random.default_rng(5)
    positions = np.where(rng.random((30, 6)) < 0.4, rng.integers(1, 50, (30, 6)), 0)
    positions = positions.astype(float)
    mark = rng.uniform(5, 50, (30, 6))
    cash = rng.uniform(100, 200, 30)
    equity = (positions * mark).sum(axis=1) + cash
    sectors = ["Tech", "", "Energy", "Tech", "Energy", ""]
    book = holdings_book(positions, mark)
    fills = _fills()
    exp = exposure(
        book=book, equity=equity, sectors=sectors, fills=fills, initial_capital=1e3
    )
    value = positions * mark
    np.testing.assert_array_equal(exp["holdings"], (positions > 0).sum(axis=1))
    np.testing.assert_allclose(exp["invested"], value.sum(axis=1) / equity)
    tech = value[:, [0, 3]].sum(axis=1) / equity
    np.testing.assert_allclose(exp["sector_weights"]["Tech"], tech)
    assert set(exp["sector_weights"]) == {"Tech", "Energy", "Unknown"}
    # day 3 of the book: the held columns with their shares and marks
    lo, hi = book["ptr"][3], book["ptr"][4]
    held = np.flatnonzero(positions[3] > 0)
    np.testing.assert_array_equal(book["col"][lo:hi], held)
    np.testing.assert_array_equal(book["shares"][lo:hi], positions[3, held])
    # rebalances: rows 0..3; row 1 bought 55 + 100; row 2 sold 180
    reb = exp["rebalances"]
    assert reb["row"].tolist() == [0, 1, 2, 3]
    assert reb["bought"].tolist() == [100.0, 155.0, 0.0, 50.0]
    assert reb["sold"].tolist() == [0.0, 0.0, 180.0, 30.0]
    assert reb["turnover"][0] == pytest.approx(50.0 / 1e3)
    assert reb["turnover"][2] == pytest.approx(90.0 / equity[1])
