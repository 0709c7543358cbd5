"""Positions, holdings and exposure of a finished run, from its fills and lots.

One vocabulary for what a backtest traded (the API, the metrics, the WebSocket and the
web app use the same words):

* a **fill** is one executed buy or sell (one row of :class:`Fills`);
* a **lot** is a FIFO round trip (:class:`app.engine.trades.Trades`): the shares of
  one buy fill until the sell fills that consume them; a partial exit splits it;
* a **position** is a symbol held continuously: it opens with the buy fill that
  takes the symbol's share count from 0 above 0 and closes with the sell fill that
  brings it back to 0 (open at the end if that never happens). A position holds one
  or more lots and two or more fills.

Per position (rows local to the run; ``C`` = cumulative cash dividend per share by
row, ex-dates ``<= row``):

* ``cost = Σ_buys q·p + buy commissions`` (``p`` the fill price, slippage included);
  ``proceeds = Σ_sells q·p - sell commissions``;
* ``dividends = Σ_fills q_signed · (C[end] - C[row])`` with ``end`` the closing row
  (the last row if open): shares held at the close of ``t - 1`` earn the dividend of
  ex-date ``t``, as the simulator credits it;
* ``pnl = proceeds - cost + dividends + open_shares · last_mark`` (cash flows; open
  shares marked at the last close with no exit costs, as open lots are);
* ``realised_pnl`` = summed P&L of the position's closed lots, ``unrealised_pnl`` =
  of its open lots; their sum equals ``pnl`` (the lots of a position partition its
  shares, fees and dividends: tests check it);
* ``return = pnl / cost`` (on the cash the position cost, as a lot's ``pnl_percent``);
* ``holding_days`` = calendar days from the opening to the closing session (to the
  last session if open); ``peak_shares`` = most shares held at once.

Summed over all positions (or all lots) the P&L is final equity minus initial
capital (``E_0`` itself already carries day one's costs when fills are at the
close): the change is entirely fills, commissions, dividends and the marks of what
is held.

:func:`position_metrics` gives the trade statistics per closed position (win rate,
profit factor, average/best/worst return, holding period) plus the counts of fills,
lots and positions; :func:`exposure` the daily exposure series; :func:`holdings_book`
a compact store of what was held at each close.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine.simulator import Fills
from app.engine.trades import Trades

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Positions:
    """One row per position, shape ``(n_positions,)``, sorted by (opened_row, col).

    ``closed_row`` is -1 and ``avg_exit_price`` NaN where nothing was sold yet.
    """

    col: IntArray
    opened_row: IntArray
    closed_row: IntArray
    avg_entry_price: FloatArray
    avg_exit_price: FloatArray
    peak_shares: FloatArray
    open_shares: FloatArray
    cost: FloatArray
    proceeds: FloatArray
    dividends: FloatArray
    realised_pnl: FloatArray
    unrealised_pnl: FloatArray
    pnl: FloatArray
    return_: FloatArray
    holding_days: IntArray
    n_fills: IntArray
    n_lots: IntArray

    def __len__(self) -> int:
        return len(self.col)

    @property
    def is_open(self) -> BoolArray:
        return self.closed_row < 0


def build_positions(
    fills: Fills,
    lots: Trades,
    *,
    days: IntArray,
    last_mark: FloatArray,
    cum_dividends: FloatArray | None,
) -> Positions:
    """Positions from ``fills`` (execution order) and their FIFO ``lots``.

    ``days`` (n_days,) are the run's sessions as days since 1970-01-01; ``last_mark``
    (n_symbols,) the close valuing open shares; ``cum_dividends`` (n_days, n_symbols)
    the cumulative cash dividend per share by row, or None without dividends.
    """
    n = len(fills)
    order = np.lexsort((np.arange(n), fills.col))  # by column, in execution order
    col, row = fills.col[order], fills.row[order]
    qty, price, fee = fills.quantity[order], fills.price[order], fills.commission[order]
    held = np.cumsum(qty)
    first = np.r_[True, col[1:] != col[:-1]] if n else np.zeros(0, dtype=bool)
    # shares of the column before each fill: cumulative sum restarted per column
    start = np.maximum.accumulate(np.where(first, np.arange(n), 0)) if n else col
    base = (held - qty)[start]
    after = np.round(held - base, 9)
    before = after - qty
    opens = (qty > 0) & (before <= 0)
    pid = np.cumsum(opens) - 1  # position of each fill
    k = int(opens.sum())
    last_row = days.size - 1

    p_col = col[opens]
    opened = row[opens]
    closes = (qty < 0) & (after <= 0)
    closed = np.full(k, -1, dtype=np.int64)
    closed[pid[closes]] = row[closes]
    buy = qty > 0
    buy_q = _sum_by(pid[buy], qty[buy], k)
    buy_v = _sum_by(pid[buy], (qty * price)[buy], k)
    buy_fee = _sum_by(pid[buy], fee[buy], k)
    sell_q = _sum_by(pid[~buy], -qty[~buy], k)
    sell_v = _sum_by(pid[~buy], (-qty * price)[~buy], k)
    sell_fee = _sum_by(pid[~buy], fee[~buy], k)
    peak = np.zeros(k)
    np.maximum.at(peak, pid, after)
    open_shares = np.round(buy_q - sell_q, 9)
    end = np.where(closed >= 0, closed, last_row)
    dividends = np.zeros(k)
    if cum_dividends is not None and n:
        earned = qty * (cum_dividends[end[pid], col] - cum_dividends[row, col])
        dividends = _sum_by(pid, earned, k)
    cost = buy_v + buy_fee
    proceeds = sell_v - sell_fee
    pnl = proceeds - cost + dividends + open_shares * last_mark[p_col]

    # lots -> positions: a lot's entry (column, row) is one buy fill of one position
    keys = p_col * (last_row + 2) + opened
    key_order = np.argsort(keys, kind="stable")
    lot_keys = lots.col * (last_row + 2) + lots.entry_row
    lot_pid = key_order[np.searchsorted(keys[key_order], lot_keys, "right") - 1]
    lot_open = lots.is_open
    realised = _sum_by(lot_pid[~lot_open], lots.pnl[~lot_open], k)
    unrealised = _sum_by(lot_pid[lot_open], lots.pnl[lot_open], k)

    with np.errstate(divide="ignore", invalid="ignore"):
        avg_exit = np.where(sell_q > 0, sell_v / sell_q, np.nan)
        avg_entry = buy_v / buy_q
    out = Positions(
        col=p_col,
        opened_row=opened,
        closed_row=closed,
        avg_entry_price=avg_entry,
        avg_exit_price=avg_exit,
        peak_shares=peak,
        open_shares=open_shares,
        cost=cost,
        proceeds=proceeds,
        dividends=dividends,
        realised_pnl=realised,
        unrealised_pnl=unrealised,
        pnl=pnl,
        return_=pnl / cost,
        holding_days=(days[end] - days[opened]).astype(np.int64),
        n_fills=np.bincount(pid, minlength=k).astype(np.int64),
        n_lots=np.bincount(lot_pid, minlength=k).astype(np.int64),
    )
    return _sorted(out, np.lexsort((out.col, out.opened_row)))


def _sum_by(group: IntArray, weights: FloatArray, k: int) -> FloatArray:
    """Sum of ``weights`` per group 0..k-1."""
    return np.bincount(group, weights=weights, minlength=k).astype(np.float64)


def _sorted(p: Positions, order: IntArray) -> Positions:
    return Positions(**{f: getattr(p, f)[order] for f in p.__dataclass_fields__})


# ------------------------------------------------------------------------ metrics
def position_metrics(
    positions: Positions, lots: Trades, fills: Fills
) -> dict[str, float | int | None]:
    """Counts of fills, lots and positions; trade statistics per closed position.

    ``position_win_rate`` = share of closed positions with pnl > 0;
    ``position_profit_factor`` = their gross profit / gross loss (None without a
    loser, 0 without a winner); ``avg/best/worst_position_return`` of their returns;
    ``avg/median_holding_days`` of their holding periods. All None without a closed
    position. ``lot_*`` are the same statistics over closed lots (the values the
    metrics' older ``win_rate``, ``profit_factor``, ``avg/best/worst_trade_return``
    and ``total_trades`` keys carry).
    """
    closed = ~positions.is_open
    pnl, rets = positions.pnl[closed], positions.return_[closed]
    hold = positions.holding_days[closed]
    lot_closed = ~lots.is_open
    out: dict[str, float | int | None] = {
        "total_fills": len(fills),
        "total_lots": len(lots),
        "closed_lots": int(lot_closed.sum()),
        "total_positions": len(positions),
        "closed_positions": int(closed.sum()),
        "open_positions": int((~closed).sum()),
        **_stats("position", pnl, rets),
        "avg_holding_days": float(hold.mean()) if hold.size else None,
        "median_holding_days": float(np.median(hold)) if hold.size else None,
        **_stats("lot", lots.pnl[lot_closed], lots.pnl_percent[lot_closed]),
    }
    return {k: _finite(v) for k, v in out.items()}


def _stats(prefix: str, pnl: FloatArray, rets: FloatArray) -> dict[str, float | None]:
    if pnl.size == 0:
        keys = ("win_rate", "profit_factor")
        empty: dict[str, float | None] = {f"{prefix}_{k}": None for k in keys}
        for k in ("avg", "best", "worst"):
            empty[f"{k}_{prefix}_return"] = None
        return empty
    profit, loss = float(pnl[pnl > 0].sum()), -float(pnl[pnl < 0].sum())
    return {
        f"{prefix}_win_rate": float(np.count_nonzero(pnl > 0) / pnl.size),
        f"{prefix}_profit_factor": profit / loss if loss > 0 else None,
        f"avg_{prefix}_return": float(rets.mean()),
        f"best_{prefix}_return": float(rets.max()),
        f"worst_{prefix}_return": float(rets.min()),
    }


def _finite(v: float | int | None) -> float | int | None:
    if v is None or isinstance(v, int):
        return v
    return float(v) if math.isfinite(v) else None


# ----------------------------------------------------------------------- exposure
def exposure(
    *,
    book: dict[str, Any],
    equity: FloatArray,
    sectors: Sequence[str],
    fills: Fills,
    initial_capital: float,
) -> dict[str, Any]:
    """Daily exposure at each close, full resolution, from :func:`holdings_book`.

    ``equity`` (n_days,), ``sectors`` (n_symbols,) ("" becomes "Unknown"). Returns
    ``holdings`` (count of symbols held), ``invested`` (Σ shares·mark / E),
    ``sector_weights`` (sector -> (n_days,) Σ over the sector / E, sectors ever held)
    and ``rebalances``: per row with fills, ``turnover = (bought + sold notional) / 2
    / E_before`` (one-way, ``E_before`` the previous close's equity, the initial
    capital on the first row), ``bought`` and ``sold`` notional and the fill count.
    """
    n_days = equity.size
    ptr = book["ptr"]
    count = np.diff(ptr)
    day = np.repeat(np.arange(n_days), count)
    value = book["shares"] * book["mark"]
    labels = np.array([s or "Unknown" for s in sectors], dtype=np.str_)
    all_names, of_symbol = np.unique(labels, return_inverse=True)
    used = np.unique(of_symbol[book["col"]])  # sectors ever held
    names = all_names[used]
    index = np.searchsorted(used, of_symbol[book["col"]])
    by_sector = np.bincount(
        day * names.size + index, weights=value, minlength=n_days * names.size
    ).reshape(n_days, names.size)
    rows, inverse = np.unique(fills.row, return_inverse=True)
    notional = np.abs(fills.quantity * fills.price)
    bought = _sum_by(inverse, np.where(fills.quantity > 0, notional, 0.0), rows.size)
    sold = _sum_by(inverse, np.where(fills.quantity < 0, notional, 0.0), rows.size)
    before = np.where(rows > 0, equity[np.maximum(rows - 1, 0)], initial_capital)
    return {
        "holdings": count.astype(np.int64),
        "invested": _sum_by(day, value, n_days) / equity,
        "sector_weights": {
            str(n): by_sector[:, j] / equity for j, n in enumerate(names)
        },
        "rebalances": {
            "row": rows.astype(np.int64),
            "turnover": (bought + sold) / 2.0 / before,
            "bought": bought,
            "sold": sold,
            "fills": np.bincount(inverse, minlength=rows.size).astype(np.int64),
        },
    }


# ----------------------------------------------------------------------- holdings
def holdings_book(positions: FloatArray, mark: FloatArray) -> dict[str, Any]:
    """What was held at each close, stored sparsely: ``ptr`` (n_days + 1,) int64
    offsets into ``col`` (int32), ``shares`` and ``mark`` (float64) of every held
    (day, symbol), by day then column. Size: 20 bytes per held symbol-day (before
    compression)."""
    day, col = np.nonzero(positions > 0)
    ptr = np.zeros(positions.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(day, minlength=positions.shape[0]), out=ptr[1:])
    return {
        "ptr": ptr,
        "col": col.astype(np.int32),
        "shares": positions[day, col],
        "mark": mark[day, col],
    }
