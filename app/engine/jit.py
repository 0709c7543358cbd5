"""Compiled (numba) inner loops of the simulator and the trade ledger.

Why numba, and why only *parts* of the event loop
    A daily rebalance of 500 symbols over 10 years is ~2,500 events; with numpy each
    event cost ~30 small array calls (~80 µs), so the Python/numpy call overhead, not
    arithmetic, dominated. A vectorised restructure cannot remove it: every event's
    sizing depends on the cash left by the previous one, so the loop over events is
    inherently sequential. The per-symbol work of an event (masks, sells, buys, fill
    log) therefore runs here as three compiled calls.

    Results must stay **bit-identical** to the numpy implementation they replace. The
    element-wise arithmetic is the same IEEE-754 operations in the same order (numba
    compiles without fast-math, so no FMA contraction and no reassociation). Sums
    that numpy computed with ``ndarray.sum`` use :func:`pairwise_sum`, a transcription
    of numpy's own pairwise summation. The two dot products of an event stay in
    numpy (``np.dot`` calls BLAS, whose accumulation order depends on the CPU kernel
    and cannot be reproduced portably), between the compiled calls.

Whole loops, sequential sums
    :func:`run_events` (the sweep batch) and :func:`app.engine.jit_portfolio.
    run_portfolio` (every run with flows, reinvestment or a band, single or batch)
    run the whole event loop in one call. They replace those two dot products by
    sequential sums, so they agree with the numpy/BLAS code to float rounding
    (~1e-15 relative), not bit for bit; the plain single-run loop above keeps the
    bit-identical form the golden and bt-parity tests pin.

Compilation
    Every function is ``cache=True``: the first import in a fresh environment compiles
    them (a few seconds, measured by ``scripts/bench_single.py``) and writes the
    machine code next to this file (``__pycache__``); later processes load it in
    milliseconds. :func:`warm_up` triggers compilation/loading explicitly; call it at
    worker start so that no request pays for it.

The functions take arrays only (time is axis 0, columns are symbols) and write into
preallocated outputs; :mod:`app.engine.simulator` and :mod:`app.engine.trades` wrap
them.
"""

# Kernels take positional arrays: numba dispatch of keyword arguments is slower.
# ruff: noqa: PLR0917

from __future__ import annotations

import time

import numba
import numpy as np
import numpy.typing as npt

from app.engine import jit_ledger

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_PW_BLOCKSIZE = 128  # numpy's PW_BLOCKSIZE (numpy/_core/src/umath/loops_utils.h.src)


@numba.njit(cache=True)
def _block_sum(a: FloatArray, lo: int, n: int) -> float:  # pragma: no cover - jitted
    """numpy's pairwise_sum for ``n <= 128``: 8 accumulators, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    total: float = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        total += a[lo + i]
        i += 1
    return total


@numba.njit(cache=True)
def _pairwise(a: FloatArray, lo: int, n: int) -> float:  # pragma: no cover - jitted
    """numpy's recursive pairwise_sum, unrolled onto an explicit stack (numba's
    on-disk cache does not support recursive functions)."""
    if n <= _PW_BLOCKSIZE:
        return _block_sum(a, lo, n)
    starts = np.empty(64, dtype=np.int64)
    sizes = np.empty(64, dtype=np.int64)
    state = np.zeros(64, dtype=np.int64)
    left = np.empty(64)
    starts[0], sizes[0], sp, ret = lo, n, 1, 0.0
    while sp > 0:
        top = sp - 1
        size = sizes[top]
        if size <= _PW_BLOCKSIZE:
            ret = _block_sum(a, starts[top], size)
            sp -= 1
            continue
        half = size // 2
        half -= half % 8
        if state[top] == 0:  # evaluate the left half first
            state[top] = 1
            starts[sp], sizes[sp], state[sp] = starts[top], half, 0
            sp += 1
        elif state[top] == 1:  # then the right half
            left[top] = ret
            state[top] = 2
            starts[sp], sizes[sp], state[sp] = starts[top] + half, size - half, 0
            sp += 1
        else:
            ret = left[top] + ret
            sp -= 1
    return ret


@numba.njit(cache=True)
def pairwise_sum(a: FloatArray, n: int) -> float:  # pragma: no cover - jitted
    """``a[:n].sum()`` exactly as numpy computes it (identity 0, then pairwise)."""
    total: float = 0.0 + _pairwise(a, 0, n)
    return total


# Layout of the packed arrays the event kernels share (few arguments keep numba's
# per-call dispatch cheap: it is paid ~3 times per event).
#: rows of ``work`` (9, n_symbols): shares held, then per-event scratch
Q, PX, TARGET, VALUE_PX, AMOUNT, BUY_QTY, QTY, SCRATCH_A, SCRATCH_B = range(9)
N_WORK = 9
#: rows of ``log`` (5, capacity): fill row, column, signed quantity, price, commission
F_ROW, F_COL, F_QTY, F_PX, F_FEE = range(5)
#: ``state`` (2,): running cash, number of fills logged
CASH, N_FILLS = 0, 1
#: ``params`` (4,): slippage rate, commission rate, sell factor, buy factor
SLIP, COMM, SELL_FACTOR, BUY_FACTOR = range(4)


@numba.njit(cache=True)
def _trade(  # pragma: no cover - jitted
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    qty_row: int,
    px: FloatArray,
    sign: float,
    row: int,
    cols: IntArray,
    n_cols: int,
) -> None:
    """Buy (``sign`` +1) or sell (-1) ``work[qty_row, c]`` shares of every column
    ``c`` of ``cols[:n_cols]`` (ascending) where that is > 0, at ``px[c]`` moved
    against the trader by slippage; log the fills. A sell adds ``sum(notional) -
    sum(commission)`` to cash, a buy subtracts ``sum(notional) + sum(commission)``
    (numpy pairwise sums in column order)."""
    q, qty = work[Q], work[qty_row]
    notional_of, fee_of = work[SCRATCH_A], work[SCRATCH_B]
    slip, comm = params[SLIP], params[COMM]
    factor = 1.0 + slip if sign > 0 else 1.0 - slip
    n = int(state[N_FILLS])
    k = 0
    for j in range(n_cols):
        c = cols[j]
        amount = qty[c]
        if amount > 0:
            price = px[c] * factor
            notional = amount * price
            fee = notional * comm
            notional_of[k] = notional
            fee_of[k] = fee
            if sign > 0:
                q[c] += amount
                log[F_QTY, n + k] = amount
            else:
                q[c] -= amount
                log[F_QTY, n + k] = -amount
            log[F_ROW, n + k] = row
            log[F_COL, n + k] = c
            log[F_PX, n + k] = price
            log[F_FEE, n + k] = fee
            k += 1
    if k == 0:
        return
    total = pairwise_sum(notional_of, k)
    fees = pairwise_sum(fee_of, k)
    if sign > 0:
        state[CASH] -= total + fees
    else:
        state[CASH] += total - fees
    state[N_FILLS] = n + k


@numba.njit(cache=True)
def close_out(  # pragma: no cover - jitted
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    price: FloatArray,
    weights: FloatArray,
    mark: FloatArray,
    gone_after: IntArray,
    fill_row: int,
    row: int,
) -> None:
    """First step of a rebalance: tradeable prices, targets, and the full sale of
    every held position whose target is 0.

    A column is tradeable when its price is finite and it has not been cashed out
    at or before ``fill_row`` (``gone_after[c] > fill_row``). Writes ``PX`` (0 where
    untradeable), ``TARGET`` (0 where untradeable) and ``VALUE_PX`` (the price, or
    ``mark`` where untradeable: what values the book for sizing).
    """
    q = work[Q]
    for c in range(q.shape[0]):
        p = price[c]
        ok = np.isfinite(p) and gone_after[c] > fill_row
        work[PX, c] = p if ok else 0.0
        work[TARGET, c] = weights[c] if ok else 0.0
        work[VALUE_PX, c] = p if ok else mark[c]
        work[QTY, c] = q[c] if ok and work[TARGET, c] <= 0.0 else 0.0
    cols = np.arange(q.shape[0])
    _trade(work, log, state, params, QTY, work[PX], -1.0, row, cols, len(cols))


@numba.njit(cache=True)
def resize(  # pragma: no cover - jitted
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    value: float,
    row: int,
) -> None:
    """Second step: ``amount = w·V - q·p`` per column; sell the over-weight ones
    (``min(q, ceil(-a / (p·sf)))``) and write the buy quantities
    (``floor(a / (p·bf))``) of the under-weight ones into ``BUY_QTY``."""
    q, px, target = work[Q], work[PX], work[TARGET]
    sell_factor, buy_factor = params[SELL_FACTOR], params[BUY_FACTOR]
    for c in range(q.shape[0]):
        a = target[c] * value - q[c] * px[c] if target[c] > 0.0 else 0.0
        work[AMOUNT, c] = a
        if a < 0.0:
            work[QTY, c] = min(q[c], np.ceil(-a / (px[c] * sell_factor)))
        else:
            work[QTY, c] = 0.0
        work[BUY_QTY, c] = np.floor(a / (px[c] * buy_factor)) if a > 0.0 else 0.0
    cols = np.arange(q.shape[0])
    _trade(work, log, state, params, QTY, px, -1.0, row, cols, len(cols))


@numba.njit(cache=True)
def trade(  # pragma: no cover - jitted
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    qty_row: int,
    px: FloatArray,
    sign: float,
    row: int,
) -> None:
    """:func:`_trade` over every column, callable from Python (the buy step and
    delisting sales)."""
    cols = np.arange(px.shape[0])
    _trade(work, log, state, params, qty_row, px, sign, row, cols, len(cols))


@numba.njit(cache=True)
def cumsum_rows(x: FloatArray) -> FloatArray:  # pragma: no cover - jitted
    """``np.cumsum(x, axis=0)`` (same sequential additions, so the same bits),
    walking ``x`` in memory order: ~3x faster on a C-ordered ``(n_days, n)``."""
    out = np.empty(x.shape)
    if x.shape[0] == 0:
        return out
    out[0] = x[0]
    for t in range(1, x.shape[0]):
        for c in range(x.shape[1]):
            out[t, c] = out[t - 1, c] + x[t, c]
    return out


@numba.njit(cache=True)
def _lean_rebalance(  # pragma: no cover - jitted
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    price: FloatArray,
    weights: FloatArray,
    mark: FloatArray,
    gone_after: IntArray,
    fill_row: int,
    row: int,
    active: IntArray,
) -> None:
    """:func:`close_out` + :func:`resize` + the buy, over the *active* columns only
    (held, or with a positive weight): the others neither trade nor add to a sum,
    so skipping them changes nothing but the time."""
    q = work[Q]
    m = 0
    for c in range(q.shape[0]):
        if weights[c] > 0.0 or q[c] != 0.0:
            active[m] = c
            m += 1
    for j in range(m):
        c = active[j]
        p = price[c]
        ok = np.isfinite(p) and gone_after[c] > fill_row
        work[PX, c] = p if ok else 0.0
        work[TARGET, c] = weights[c] if ok else 0.0
        work[VALUE_PX, c] = p if ok else mark[c]
        work[QTY, c] = q[c] if ok and work[TARGET, c] <= 0.0 else 0.0
    px = work[PX]
    _trade(work, log, state, params, QTY, px, -1.0, row, active, m)
    value = 0.0
    for j in range(m):
        value += q[active[j]] * work[VALUE_PX, active[j]]
    value += state[CASH]
    sell_factor, buy_factor = params[SELL_FACTOR], params[BUY_FACTOR]
    cost = 0.0
    for j in range(m):
        c = active[j]
        t = work[TARGET, c]
        a = t * value - q[c] * px[c] if t > 0.0 else 0.0
        work[AMOUNT, c] = a
        if a < 0.0:
            work[QTY, c] = min(q[c], np.ceil(-a / (px[c] * sell_factor)))
        else:
            work[QTY, c] = 0.0
        work[BUY_QTY, c] = np.floor(a / (px[c] * buy_factor)) if a > 0.0 else 0.0
        cost += work[BUY_QTY, c] * px[c]
    _trade(work, log, state, params, QTY, px, -1.0, row, active, m)
    if cost * buy_factor > state[CASH]:
        wanted = 0.0
        for j in range(m):
            if work[AMOUNT, active[j]] > 0.0:
                wanted += work[AMOUNT, active[j]]
        # wanted is 0 only when cash is below 0 (a withdrawal): buy nothing
        k = max(state[CASH], 0.0) / wanted if wanted > 0.0 else 0.0
        for j in range(m):
            c = active[j]
            a = work[AMOUNT, c]
            work[BUY_QTY, c] = (
                np.floor(a * k / (px[c] * buy_factor)) if a > 0.0 else 0.0
            )
    _trade(work, log, state, params, BUY_QTY, px, 1.0, row, active, m)


#: event phases (as in :mod:`app.engine.simulator`)
PHASE_OPEN, PHASE_DELIST, PHASE_CLOSE = 0, 1, 2


@numba.njit(cache=True)
def run_events(
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    open_: FloatArray,
    close: FloatArray,
    marks: FloatArray,
    divs: FloatArray,
    weights: FloatArray,
    ev_row: IntArray,
    ev_phase: IntArray,
    ev_idx: IntArray,
    gone_after: IntArray,
    start_row: int,
    first: int,
    equity: FloatArray,
    invested: FloatArray,
) -> None:  # pragma: no cover - jitted
    """The simulator's whole event loop in one call, for parameter sweeps.

    Same rules and the same per-symbol arithmetic as :func:`app.engine.simulator.
    simulate` (it calls the same :func:`close_out`, :func:`resize`, :func:`_trade`),
    but its dot products (portfolio value, buy cost, dividend income) are plain
    sequential sums instead of BLAS calls, and the daily cash is the running balance
    instead of a cumulative sum of the fill log. Results therefore agree with
    ``simulate`` to float rounding (~1e-15 relative), not bit for bit; a whole-share
    rounding could differ only if a quantity lands within that rounding of an
    integer. ``log`` must hold one fill per symbol per event. Writes ``equity`` and
    ``invested`` (market value of positions) per day, rows local to the run.
    """
    q = work[Q]
    n_sym = q.shape[0]
    active = np.empty(n_sym, dtype=np.int64)
    one = np.empty(1, dtype=np.int64)
    held = np.empty(n_sym, dtype=np.int64)
    n_held = 0
    n_ev = ev_row.shape[0]
    e = 0
    for t in range(equity.shape[0]):
        if divs.shape[0] > 0 and t > 0:
            income = 0.0
            for j in range(n_held):
                income += divs[t, held[j]] * q[held[j]]
            state[CASH] += income
        while e < n_ev and ev_row[e] - start_row == t:
            row, phase, idx = ev_row[e], ev_phase[e], ev_idx[e]
            e += 1
            if phase == PHASE_DELIST:
                work[QTY, idx] = q[idx]
                one[0] = idx
                _trade(work, log, state, params, QTY, close[row], -1.0, t, one, 1)
            else:
                _lean_rebalance(
                    work, log, state, params,
                    open_[row] if phase == PHASE_OPEN else close[row],
                    weights[idx],
                    marks[row - first - (1 if phase == PHASE_OPEN and row > 0 else 0)],
                    gone_after, row, t, active,
                )  # fmt: skip
            n_held = 0
            for c in range(n_sym):
                if q[c] != 0.0:
                    held[n_held] = c
                    n_held += 1
        mark = marks[t + start_row - first]
        value = 0.0
        for j in range(n_held):
            value += q[held[j]] * mark[held[j]]
        invested[t] = value
        equity[t] = state[CASH] + value


@numba.njit(cache=True)
def fifo_pieces(  # pragma: no cover - jitted
    col: IntArray, quantity: FloatArray, n_symbols: int
) -> tuple[IntArray, IntArray, FloatArray, int]:
    """Match fills (execution order) first-in first-out per column.

    Returns ``(buy_fill, sell_fill, quantity, status)``: one piece per (lot, sell)
    overlap, ``sell_fill`` -1 for the unsold rest of a lot. ``status`` is -1 when
    fine, else the index of a sell fill that found no open lot to consume (possible
    only when share counts are too large for exact float arithmetic).
    """
    n = col.shape[0]
    cap = 2 * n + 1
    out_b = np.empty(cap, dtype=np.int64)
    out_s = np.empty(cap, dtype=np.int64)
    out_q = np.empty(cap, dtype=np.float64)
    head = np.full(n_symbols, -1, dtype=np.int64)
    tail = np.full(n_symbols, -1, dtype=np.int64)
    nxt = np.full(n, -1, dtype=np.int64)
    rem = np.zeros(n, dtype=np.float64)
    k = 0
    for i in range(n):
        c = col[i]
        qty = quantity[i]
        if qty > 0:
            rem[i] = qty
            if tail[c] < 0:
                head[c] = i
            else:
                nxt[tail[c]] = i
            tail[c] = i
            continue
        left = -qty
        while left > 0:
            lot = head[c]
            if lot < 0:
                return out_b[:k], out_s[:k], out_q[:k], i
            take = min(rem[lot], left)
            out_b[k] = lot
            out_s[k] = i
            out_q[k] = take
            k += 1
            rem[lot] -= take
            left -= take
            if rem[lot] == 0.0:
                head[c] = nxt[lot]
                if head[c] < 0:
                    tail[c] = -1
    for i in range(n):
        if rem[i] > 0:
            out_b[k] = i
            out_s[k] = -1
            out_q[k] = rem[i]
            k += 1
    return out_b[:k], out_s[:k], out_q[:k], -1


def warm_up() -> float:
    """Compile (or load from the on-disk cache) every kernel; returns seconds taken.

    Call once at process start (a Celery worker's ``worker_process_init``) so that no
    backtest request pays for compilation.
    """
    t0 = time.perf_counter()
    n = 3
    work, log = np.zeros((N_WORK, n)), np.zeros((5, 4 * n))
    state, params = np.array([1e3, 0.0]), np.array([0.0, 0.0, 1.0, 1.0])
    px = np.ones(n)
    for ro in (False, True):  # the engine passes read-only views of the data
        price = px.copy()
        price.flags.writeable = not ro
        gone = np.full(n, 9, dtype=np.int64)
        close_out(work, log, state, params, price, price, price, gone, 0, 0)
    resize(work, log, state, params, 1e3, 0)
    trade(work, log, state, params, BUY_QTY, work[PX], 1.0, 0)
    trade(work, log, state, params, QTY, px, -1.0, 0)
    fifo_pieces(np.zeros(2, dtype=np.int64), np.array([1.0, -1.0]), 1)
    pairwise_sum(np.ones(3), 3)
    cumsum_rows(np.ones((2, 2)))
    frozen = np.ones((2, 2))
    frozen.flags.writeable = False
    cumsum_rows(frozen)
    jit_ledger.warm_up()
    from app.engine import jit_portfolio  # noqa: PLC0415 - it imports this module

    jit_portfolio.warm_up()
    return time.perf_counter() - t0
