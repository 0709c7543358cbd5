"""The former Python event loop of investor portfolios (flows, dividend
reinvestment, a drift band), kept as the reference the compiled loop
(:func:`app.engine.jit_portfolio.run_portfolio`) is checked against in
tests/unit/test_portfolio_kernel.py. It was ``app.engine.simulator.
_simulate_portfolio`` until the kernel replaced it; the only change since is that a
band decision filling where a calendar rebalance fills is that calendar rebalance
(before, the band's older target was used and the calendar one skipped)."""

from __future__ import annotations

import heapq

import numpy as np

from app.engine import jit
from app.engine.config import Execution
from app.engine.errors import CancelledError
from app.engine.simulator import (
    _PHASE_CLOSE,
    _PHASE_DELIST,
    _PHASE_OPEN,
    BUY,
    SELL,
    CancelFn,
    Costs,
    FloatArray,
    IntArray,
    Portfolio,
    ProgressFn,
    Simulation,
    _Book,
    _check_exact,
    _run_rows,
    portfolio_simulation,
)

# event kinds of the portfolio loop, in their order within one (row, phase)
_FLOW, _REBALANCE, _REINVEST = 0, 1, 2


def simulate_portfolio_reference(
    *,
    open_: FloatArray,
    close: FloatArray,
    dividends: FloatArray | None,
    decisions: IntArray,
    weights: FloatArray,
    start_row: int,
    end_row: int,
    execution: Execution,
    initial_capital: float,
    costs: Costs,
    delist: IntArray,
    gone_after: IntArray,
    marks: FloatArray,
    first: int,
    portfolio: Portfolio,
    should_cancel: CancelFn | None,
    on_progress: ProgressFn | None,
    dividend_events: object = None,
) -> Simulation:
    """The event loop with flows, dividend reinvestment and a drift band.

    ``dividend_events`` (the kernel's sparse dividends, which the caller may pass)
    is ignored: this loop reads ``dividends`` itself.

    Events are (row, phase, kind): calendar rebalances, delisting cash-outs, flows
    (credited, then a rebalance to the current target at the same fill unless a
    calendar rebalance fills there anyway), reinvestments (the fill after each
    ex-date: the dividend cash each holding paid, plus its remainder from earlier
    reinvestments, buys whole shares of it at the fill price with the usual costs;
    skipped when a rebalance fills there, which spends the cash anyway and clears
    the remainders) and band rebalances (found by
    scanning the closes between events: at the close of day ``d``, with the
    holdings of that close, when ``max_i |w_i - target_i| > band`` a rebalance is
    decided there and fills at the run's next fill, like a calendar decision).
    A withdrawal that leaves nothing (cash + holdings at the fill prices <= 0)
    sells everything, withdraws only what there was, and ends the run: the
    portfolio stays empty (``depleted_row``).
    """
    n_symbols = close.shape[1]
    n_days = end_row - start_row + 1
    mark = marks[start_row - first :]
    fill_phase = _PHASE_OPEN if execution == "next_open" else _PHASE_CLOSE
    heap: list[tuple[int, int, int, int]] = []
    for k, r in enumerate(decisions):
        if execution == "next_open" and r < end_row:
            heap.append((int(r) + 1, _PHASE_OPEN, _REBALANCE, k))
        elif execution == "close":
            heap.append((int(r), _PHASE_CLOSE, _REBALANCE, k))
    heap += [
        (int(r), _PHASE_DELIST, _REBALANCE, -1 - c)
        for c, r in enumerate(delist)
        if r >= 0
    ]
    amount = portfolio.flow_amount
    if portfolio.flow_rows is not None:
        heap += [(int(r), fill_phase, _FLOW, 0) for r in portfolio.flow_rows]
    divs = _run_rows(dividends, start_row, end_row)
    # Reinvestment fills: after each ex-date. Without a band they are not heap
    # events: each stretch of them before the next other event runs in one
    # compiled call (_reinvest_run); with a band, one at a time between scans.
    rv = np.zeros(0, dtype=np.int64)
    if portfolio.reinvest and divs is not None:
        ex = np.flatnonzero(divs.any(axis=1)) + start_row
        ex += 1 if execution == "next_open" else 0
        rv = ex[(ex > start_row) & (ex <= end_row)].astype(np.int64)
    if portfolio.band is not None:
        heap += [(int(r), fill_phase, _REINVEST, 0) for r in rv]
        rv = rv[:0]
    heapq.heapify(heap)
    ptr = 0
    chunk = max(1, len(heap) // 50)

    book = _Book(n_symbols, initial_capital, costs)
    income = np.zeros(n_days)
    external = np.zeros(n_days)
    pending = np.zeros(n_symbols)  # dividend cash per holding since the last fill
    states: list[FloatArray] = [np.zeros(n_symbols)]
    rows_done: list[int] = []
    last = 0
    current = -1  # the decision whose weights are the target
    n_rebalances = 0
    depleted = -1
    check_from = -1  # first row whose close the band scan looks at (-1: none yet)
    last_fill: tuple[int, int] = (-1, -1)
    band = portfolio.band
    done = 0
    while heap or ptr < len(rv):
        if ptr < len(rv):
            if heap:
                top_row, top_phase = heap[0][0], heap[0][1]
                # a reinvestment at the top's row comes first only at an earlier phase
                at_row = fill_phase < top_phase
                stop = int(np.searchsorted(rv, top_row, "right" if at_row else "left"))
            else:
                stop = len(rv)
            if stop > ptr:
                run = rv[ptr:stop]
                ptr = stop
                if last_fill[1] == fill_phase:  # a rebalance there spent it
                    run = run[run != last_fill[0]]
                if run.size and divs is not None:  # rv is empty without divs
                    last = _reinvest_run(
                        book, divs, open_ if fill_phase == _PHASE_OPEN else close,
                        gone_after, pending, income, run, start_row, last, states,
                        rows_done,
                    )  # fmt: skip
                continue
        if band is not None and current >= 0 and check_from >= 0:
            limit = min(heap[0][0], end_row) - 1
            hit = _band_breach(
                book,
                divs,
                mark,
                weights[current],
                band,
                lo=check_from - start_row,
                hi=limit - start_row,
                last=last,
            )
            if hit >= 0:
                d = hit + start_row
                fill = (
                    (d + 1, _PHASE_OPEN)
                    if fill_phase == _PHASE_OPEN
                    else (d, _PHASE_CLOSE)
                )
                # where a calendar rebalance fills anyway, it is that rebalance
                if not any(e[:3] == (*fill, _REBALANCE) for e in heap):
                    heapq.heappush(heap, (*fill, _REBALANCE, current))
            check_from = -1
        row, phase, kind, idx = heapq.heappop(heap)
        local = row - start_row
        fills_before = book.n_fills
        if divs is not None and local > last:
            seg = divs[last + 1 : local + 1]
            day_income = seg @ book.q
            income[last + 1 : local + 1] = day_income
            book.credit(
                float(day_income[0])
                if len(day_income) == 1
                else float(day_income.sum())
            )
            if portfolio.reinvest:
                pending += seg.sum(axis=0) * book.q
        last = max(last, local)
        rebalanced = False
        if phase == _PHASE_DELIST:
            only = np.zeros(n_symbols)
            only[-1 - idx] = book.q[-1 - idx]
            book.trade(local, only, close[row], SELL)
        elif kind == _FLOW:
            price = (open_ if phase == _PHASE_OPEN else close)[row]
            mark_row = _mark_row(marks, row, phase, first)
            book.credit(amount)
            external[local] += amount
            value_px = np.where(np.isfinite(price), price, mark_row)
            liquid = (
                book.cash + float(np.dot(book.q, value_px)) * book.costs.sell_factor
            )
            calendar_next = bool(heap) and heap[0][:3] == (row, phase, _REBALANCE)
            if liquid > 0.0 and current >= 0 and not calendar_next:
                book.rebalance(
                    local, weights[current], price, mark_row, gone_after, row
                )
                rebalanced = True
            if liquid <= 0.0 or (rebalanced and book.cash < 0.0):
                # the withdrawal takes everything there is: sell all, end the run
                book.rebalance(
                    local, np.zeros(n_symbols), price, mark_row, gone_after, row
                )
                external[local] -= book.cash  # only what there was is withdrawn
                book.state[jit.CASH] = 0.0
                depleted = local
                states.append(book.q.copy())
                rows_done.append(local)
                break
        elif kind == _REBALANCE:
            if (row, phase) == last_fill:
                pass  # a band decision that a calendar rebalance already made
            else:
                current = max(current, idx)
                price = (open_ if phase == _PHASE_OPEN else close)[row]
                book.rebalance(
                    local,
                    weights[current],
                    price,
                    _mark_row(marks, row, phase, first),
                    gone_after,
                    row,
                )
                rebalanced = True
        elif (row, phase) != last_fill and pending.any():  # _REINVEST, with a band
            price = (open_ if phase == _PHASE_OPEN else close)[row]
            _reinvest(book, pending, price, gone_after, row, local)
        if rebalanced:
            n_rebalances += 1
            last_fill = (row, phase)
            pending[:] = 0.0
        if book.n_fills != fills_before:  # holdings changed: a new state
            states.append(book.q.copy())
            rows_done.append(local)
        check_from = row if phase == _PHASE_OPEN else row + 1
        done += 1
        if done % chunk == 0:
            if should_cancel is not None and should_cancel():
                raise CancelledError("backtest cancelled")
            if on_progress is not None:
                on_progress(min(local / max(n_days - 1, 1), 1.0), local, book.n_fills)
    if band is not None and depleted < 0 and current >= 0 and check_from >= 0:
        # no event left: band rebalances until the end, one at a time
        while check_from >= 0:
            hit = _band_breach(
                book,
                divs,
                mark,
                weights[current],
                band,
                lo=check_from - start_row,
                hi=end_row - 1 - start_row,
                last=last,
            )
            if hit < 0:
                break
            d = hit + start_row
            row, phase = (
                (d + 1, _PHASE_OPEN) if fill_phase == _PHASE_OPEN else (d, _PHASE_CLOSE)
            )
            local = row - start_row
            if divs is not None and local > last:
                seg = divs[last + 1 : local + 1]
                day_income = seg @ book.q
                income[last + 1 : local + 1] = day_income
                book.credit(float(day_income.sum()))
            last = max(last, local)
            price = (open_ if phase == _PHASE_OPEN else close)[row]
            book.rebalance(
                local,
                weights[current],
                price,
                _mark_row(marks, row, phase, first),
                gone_after,
                row,
            )
            n_rebalances += 1
            states.append(book.q.copy())
            rows_done.append(local)
            check_from = row if phase == _PHASE_OPEN else row + 1
    if divs is not None and last < n_days - 1:
        income[last + 1 :] = divs[last + 1 :] @ book.q
    if on_progress is not None:
        on_progress(1.0, n_days - 1, book.n_fills)
    q_after = np.array(states)
    fill_rows = np.array(rows_done, dtype=np.int64)
    _check_exact(q_after, fill_rows, start_row)
    return portfolio_simulation(
        initial_capital=initial_capital,
        fills=book.fills(),
        states=q_after,
        fill_rows=fill_rows,
        income=income,
        external=external,
        mark=mark,
        depleted=depleted,
        rebalances=n_rebalances,
    )


def _mark_row(marks: FloatArray, row: int, phase: int, first: int) -> FloatArray:
    """The closes that value untradeable holdings at a fill (the previous close
    for an open fill)."""
    row_mark: FloatArray = marks[
        row - first - (1 if phase == _PHASE_OPEN and row > 0 else 0)
    ]
    return row_mark


def _band_breach(
    book: _Book,
    divs: FloatArray | None,
    mark: FloatArray,
    target: FloatArray,
    band: float,
    *,
    lo: int,
    hi: int,
    last: int,
) -> int:
    """The first local row in ``lo..hi`` at whose close some holding's weight is
    more than ``band`` from its target, holdings fixed; -1 if none. Cash there is
    the book's plus the dividends credited after local row ``last``."""
    if hi < lo or lo < 0:
        return -1
    q = book.q
    cols = np.flatnonzero((q != 0.0) | (target > 0.0))
    values = mark[lo : hi + 1][:, cols] * q[cols]
    cash = np.full(hi - lo + 1, book.cash)
    if divs is not None:
        extra = np.zeros(hi - lo + 1)
        start = max(last + 1, lo)
        pre = float((divs[last + 1 : start] @ q).sum()) if start > last + 1 else 0.0
        if start <= hi:
            extra[start - lo :] = np.cumsum(divs[start : hi + 1] @ q)
        cash += pre + extra
    equity = cash + values.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        drift = np.abs(values / equity[:, None] - target[cols]).max(axis=1)
    over = np.flatnonzero(drift > band)
    return int(over[0]) + lo if over.size else -1


def _reinvest_run(
    book: _Book,
    divs: FloatArray,
    px: FloatArray,
    gone_after: IntArray,
    pending: FloatArray,
    income: FloatArray,
    fill_rows: IntArray,
    start_row: int,
    last: int,
    states: list[FloatArray],
    rows_done: list[int],
) -> int:
    """Consecutive reinvestments (no other event between them): dividends credited
    day by day up to each fill (to cash and to the paying holding's ``pending``),
    then :func:`_reinvest`. (The engine ran this stretch in one compiled call,
    ``jit.reinvest_run``, with the same rule.) Returns the last credited local
    row."""
    for row in fill_rows:
        local = int(row) - start_row
        for t in range(last + 1, local + 1):
            day = divs[t] * book.q
            income[t] = float(day.sum())
            book.credit(income[t])
            pending += day
        last = max(last, local)
        before = book.n_fills
        _reinvest(book, pending, px[row], gone_after, int(row), local)
        if book.n_fills != before:
            states.append(book.q.copy())
            rows_done.append(local)
    return last


def _reinvest(
    book: _Book,
    pending: FloatArray,
    price: FloatArray,
    gone_after: IntArray,
    row: int,
    local: int,
) -> None:
    """Buy whole shares of each holding with the dividend cash it paid
    (``floor(cash / (price * buy factor))``), never more than the cash there is.
    The remainder (less than a share) stays in ``pending`` and joins the holding's
    next dividend, so reinvested cash never sits idle by more than one share."""
    ok = np.isfinite(price) & (gone_after > row) & (pending > 0.0)
    if not ok.any():
        return
    bf = book.costs.buy_factor
    px = np.where(ok, price, 1.0)
    qty = np.where(ok, np.floor(pending / (px * bf)), 0.0)
    cost = float(np.dot(qty, px)) * bf
    if cost > book.cash:
        k = max(book.cash, 0.0) / float(pending[ok].sum())
        qty = np.where(ok, np.floor(pending * k / (px * bf)), 0.0)
    if qty.any():
        book.trade(local, qty, px, BUY)
        # what did not make a whole share waits for the holding's next dividend
        np.maximum(pending - qty * px * bf, 0.0, out=pending)
