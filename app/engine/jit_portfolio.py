"""The investor-portfolio event loop (flows, dividend reinvestment, a drift band) as
one compiled (numba) kernel, day by day.

:func:`run_portfolio` runs the rules of :func:`app.engine.simulator.
_simulate_portfolio` (see its docstring for the conventions) over a range of days
of the run, carrying every piece of state in arrays, so the caller can run a whole
backtest in one call (the sweep batch) or in slices with progress and cancel
checks between them (single runs). Rebalances are :func:`app.engine.jit.
_lean_rebalance`, fills :func:`app.engine.jit._trade`, the reinvestment rule
:func:`reinvest_fill`: the same per-symbol arithmetic as the plain loop.

Convention (sums)
    Like :func:`app.engine.jit.run_events`, the sums over symbols (portfolio value,
    buy cost, dividend income, the liquid value that decides a depletion, the band's
    equity) are plain sequential sums, not BLAS dot products, so results agree with
    the former Python event loop to float rounding (~1e-15 relative), not bit for
    bit: a whole-share count could differ only where a quantity lands within that
    rounding of an integer (tests/unit/test_portfolio_kernel.py compares the two on
    randomised runs).

What a day costs
    Dividends arrive as the run's ex-date entries (:func:`sparse_rows`, or
    :func:`select_rows` of the dataset's list), so a day without an ex-date does
    no dividend work and one with a few ex-dates touches those columns only (the
    same sequential sum: the holdings skipped would add 0). A reinvestment day
    whose pending cash cannot buy a whole share anywhere (:func:`_may_buy`, one
    vectorised test; the common day) only marks the event. The daily valuation
    runs only when the caller asks for ``equity`` (the sweep batch); single runs
    keep the daily positions and value them afterwards
    (:func:`app.engine.simulator._daily`).

Order within one day ``t`` (local row; window row ``t + start_row``)
    1. dividends of ex-date ``t`` (``t > 0``) credited to cash, and with
       reinvestment to each holding's pending cash;
    2. the open fill (``next_open``): flows (credited; then a rebalance to the
       current target unless a calendar or band rebalance fills there; the
       depletion rule), the calendar rebalance (decided at close ``t-1``) or else a
       band rebalance decided at close ``t-1``, then the reinvestment (skipped where
       a rebalance filled);
    3. delisting cash-outs (descending column);
    4. the close fill (``close``): the same as 2. at the close;
    5. the band scan of close ``t``: with ``next_open`` the decision fills at the
       open of ``t+1``; with ``close`` it fills at once. A close is scanned when a
       fill or cash-out happened before it (``check_from``, as in the Python loop:
       not the close of a day with a cash-out, nor with ``close`` the close of a
       day with an event), never the run's last close.
"""

# Kernels take positional arrays: numba dispatch of keyword arguments is slower.
# ruff: noqa: PLR0917, PLR0912, PLR0915

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from app.engine.jit import (
    BUY_FACTOR,
    CASH,
    N_FILLS,
    PX,
    QTY,
    SELL_FACTOR,
    Q,
    _lean_rebalance,
    _trade,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: ``ist`` (int64 state carried between calls): the decision whose weights are the
#: target (-1 none yet), the first close the band scan may look at (-1: none), the
#: local row of the last rebalance fill, rebalances so far, the local row a
#: withdrawal emptied the portfolio (-1), the local row a band decision fills at
#: the open (-1 none) and its decision index.
CURRENT, CHECK_FROM, LAST_FILL, N_REBALANCES, DEPLETED, BAND_AT, BAND_IDX = range(7)
N_IST = 7


def new_state() -> IntArray:
    """The ``ist`` array of a run that has not started."""
    ist = np.full(N_IST, -1, dtype=np.int64)
    ist[N_REBALANCES] = 0
    return ist


@numba.njit(cache=True)
def sparse_rows(  # pragma: no cover - jitted
    x: FloatArray,
) -> tuple[IntArray, IntArray, FloatArray]:
    """The nonzero entries of ``x`` row by row, as ``(ptr, cols, values)``: row
    ``t``'s are ``cols[ptr[t]:ptr[t+1]]`` (ascending) and their values, as
    :func:`numpy.nan_to_num` gives them (NaN dropped as 0, +-inf as +-max float).

    Dividends are sparse (a column goes ex-dividend a few days a year), so the
    kernel credits them from this list instead of looking at every holding every
    day; one pass over the matrix replaces the finite-sum check and the per-day
    ``any`` the callers made before."""
    n_rows, n = x.shape
    ptr = np.zeros(n_rows + 1, dtype=np.int64)
    k = 0
    for t in range(n_rows):  # count first (branch-free: NaN != 0 but NaN != NaN)
        for c in range(n):
            v = x[t, c]
            k += (v != 0.0) & (v == v)  # noqa: PLR0124 - NaN test, vectorised
        ptr[t + 1] = k
    cols = np.empty(k, dtype=np.int64)
    vals = np.empty(k)
    big = np.finfo(np.float64).max
    for t in range(n_rows):
        k = ptr[t]
        if ptr[t + 1] == k:
            continue
        for c in range(n):
            v = x[t, c]
            if v != 0.0 and v == v:  # noqa: PLR0124 - as above
                cols[k] = c
                vals[k] = v if abs(v) <= big else (big if v > 0 else -big)
                k += 1
    return ptr, cols, vals


@numba.njit(cache=True)
def select_rows(  # pragma: no cover - jitted
    ptr: IntArray,
    cols: IntArray,
    vals: FloatArray,
    r0: int,
    r1: int,
    colmap: IntArray,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Rows ``r0..r1`` (inclusive) of a :func:`sparse_rows` list, columns renamed
    by ``colmap`` (old column -> new, -1: dropped) and ascending in the new order
    within each row: what :func:`sparse_rows` gives for the selected submatrix."""
    n_rows = r1 - r0 + 1
    out_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    out_cols = np.empty(ptr[r1 + 1] - ptr[r0], dtype=np.int64)
    out_vals = np.empty(ptr[r1 + 1] - ptr[r0])
    k = 0
    for t in range(n_rows):
        start = k
        for e in range(ptr[r0 + t], ptr[r0 + t + 1]):
            c = colmap[cols[e]]
            if c >= 0:
                # insertion into this row's sorted run (a row has few entries)
                i = k
                while i > start and out_cols[i - 1] > c:
                    out_cols[i] = out_cols[i - 1]
                    out_vals[i] = out_vals[i - 1]
                    i -= 1
                out_cols[i] = c
                out_vals[i] = vals[e]
                k += 1
        out_ptr[t + 1] = k
    return out_ptr, out_cols[:k].copy(), out_vals[:k].copy()


def no_dividends(n_days: int) -> tuple[IntArray, IntArray, FloatArray]:
    """:func:`sparse_rows` of a run without dividends."""
    return (
        np.zeros(n_days + 1, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
    )


@numba.njit(cache=True)
def _may_buy(  # pragma: no cover - jitted
    pending: FloatArray, px: FloatArray, bf: float, pend: IntArray, n_pend: int
) -> bool:
    """Whether some column with pending cash could buy a whole share at ``px``:
    the first test of :func:`reinvest_fill` (``not pending < 0.999·px·bf``, false
    for a NaN price) over the columns ``pend[:n_pend]``, which include every column
    with pending cash. False means :func:`reinvest_fill` would buy nothing.

    With many such columns it tests every column instead, in a branch-free loop
    the compiler vectorises (a column without pending cash fails the test unless
    its price is 0 or less: then the full check in :func:`reinvest_fill` runs and
    finds nothing)."""
    n = px.shape[0]
    if 8 * n_pend >= n:
        hits = 0
        for c in range(n):
            hits += pending[c] >= 0.999 * (px[c] * bf)
        return hits > 0
    for j in range(n_pend):
        c = pend[j]
        if pending[c] >= 0.999 * (px[c] * bf):
            return True
    return False


@numba.njit(cache=True)
def reinvest_fill(  # pragma: no cover - jitted
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    px: FloatArray,
    gone_after: IntArray,
    pending: FloatArray,
    row: int,
    local: int,
    cols: IntArray,
    held: IntArray,
    n_held: int,
) -> None:
    """One reinvestment: buy ``floor(pending / (px * buy factor))`` shares of every
    tradeable column (finite price, ``gone_after > row``) with pending cash, scaled
    down (``k = cash / sum(pending)``) if the cash would not cover them; the
    remainder (less than a share) stays in ``pending`` for the holding's next
    dividend. Fills are logged at local row ``local``. Only the columns
    ``held[:n_held]`` (ascending) are looked at: pending cash comes from holdings,
    and a holding that is no longer held was sold by a rebalance (which clears
    ``pending``) or cashed out (untradeable)."""
    bf = params[BUY_FACTOR]
    # Most days no pending cash makes a whole share: find that out without a
    # division for the holdings clearly short of one (pending < 0.999·price·bf).
    buys = False
    for j in range(n_held):
        c = held[j]
        if pending[c] > 0.0:
            p = px[c]
            if np.isfinite(p) and gone_after[c] > row:
                unit = p * bf
                if not pending[c] < 0.999 * unit and np.floor(pending[c] / unit) > 0:
                    buys = True
                    break
    if not buys:
        return
    m = 0
    cost = 0.0
    wanted = 0.0
    for j in range(n_held):
        c = held[j]
        if pending[c] > 0.0:
            p = px[c]
            if np.isfinite(p) and gone_after[c] > row:
                n = np.floor(pending[c] / (p * bf))
                work[QTY, c] = n
                work[PX, c] = p
                cost += n * p * bf
                wanted += pending[c]
                cols[m] = c
                m += 1
    if cost == 0.0:  # no whole share anywhere (QTY is 0 where it was written)
        return
    if cost > state[CASH]:
        k = max(state[CASH], 0.0) / wanted
        for i in range(m):
            c = cols[i]
            work[QTY, c] = np.floor(pending[c] * k / (work[PX, c] * bf))
    _trade(work, log, state, params, QTY, work[PX], 1.0, local, cols, m)
    for i in range(m):
        c = cols[i]
        left = pending[c] - work[QTY, c] * work[PX, c] * bf
        pending[c] = left if left > 0.0 else 0.0
        work[QTY, c] = 0.0


@numba.njit(cache=True)
def _band_breach(  # pragma: no cover - jitted
    q: FloatArray,
    cash: float,
    mark: FloatArray,
    target: FloatArray,
    band: float,
    cols: IntArray,
    n: int,
) -> bool:
    """Whether some holding's weight at these closes is more than ``band`` from its
    target, over ``cols[:n]`` (the columns held or with a positive target). As
    numpy's ``max`` in the former loop: a NaN weight (0/0) anywhere means no
    breach."""
    if n == 0:
        return False
    equity = cash
    for j in range(n):
        c = cols[j]
        equity += mark[c] * q[c]
    breach = False
    for j in range(n):
        c = cols[j]
        v = mark[c] * q[c]
        if equity == 0.0:
            if v == 0.0:
                return False  # 0/0: NaN
            breach = True  # +-inf
        elif abs(v / equity - target[c]) > band:
            breach = True
    return breach


@numba.njit(cache=True)
def _held(q: FloatArray, held: IntArray) -> int:  # pragma: no cover - jitted
    """Write the columns with shares into ``held``; return how many."""
    n = 0
    for c in range(q.shape[0]):
        if q[c] != 0.0:
            held[n] = c
            n += 1
    return n


@numba.njit(cache=True)
def _fill_phase(  # pragma: no cover - jitted
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    ist: IntArray,
    pending: FloatArray,
    px: FloatArray,
    mark_row: FloatArray,
    weights: FloatArray,
    zeros: FloatArray,
    cal_idx: int,
    n_flows: int,
    flow_amount: float,
    reinvest_here: bool,
    gone_after: IntArray,
    row: int,
    t: int,
    is_open: bool,
    external: FloatArray,
    active: IntArray,
    held: IntArray,
    n_held: int,
    pend: IntArray,
    n_pend: int,
) -> None:
    """The events at one fill (``row``, local ``t``): flows, the calendar or band
    rebalance, the reinvestment (attempted only when :func:`_may_buy` finds a
    column whose pending cash could buy a share); sets ``ist[DEPLETED]`` when a
    withdrawal empties the portfolio. A rebalance here zeroes ``pending`` (the
    caller then empties ``pend``)."""
    q = work[Q]
    sf = params[SELL_FACTOR]
    band_here = is_open and ist[BAND_AT] == t
    rebalance_here = cal_idx >= 0 or band_here
    event = False
    for _ in range(n_flows):
        event = True
        state[CASH] += flow_amount
        external[t] += flow_amount
        worth = 0.0
        for c in range(q.shape[0]):
            if q[c] != 0.0:
                p = px[c]
                worth += q[c] * (p if np.isfinite(p) else mark_row[c])
        liquid = state[CASH] + worth * sf
        current = ist[CURRENT]
        rebalanced = False
        if liquid > 0.0 and current >= 0 and not rebalance_here:
            _lean_rebalance(
                work, log, state, params, px, weights[current], mark_row,
                gone_after, row, t, active,
            )  # fmt: skip
            rebalanced = True
        if liquid <= 0.0 or (rebalanced and state[CASH] < 0.0):
            # the withdrawal takes everything there is: sell all, end the run
            _lean_rebalance(
                work, log, state, params, px, zeros, mark_row, gone_after, row, t,
                active,
            )  # fmt: skip
            external[t] -= state[CASH]  # only what there was is withdrawn
            state[CASH] = 0.0
            ist[DEPLETED] = t
            return
        if rebalanced:
            ist[N_REBALANCES] += 1
            ist[LAST_FILL] = t
            pending[:] = 0.0
    if rebalance_here:
        event = True
        # a band decision where a calendar rebalance fills anyway is that rebalance
        idx = cal_idx if cal_idx >= 0 else ist[BAND_IDX]
        ist[BAND_AT] = -1
        if ist[LAST_FILL] != t:
            ist[CURRENT] = max(ist[CURRENT], idx)
            _lean_rebalance(
                work, log, state, params, px, weights[ist[CURRENT]], mark_row,
                gone_after, row, t, active,
            )  # fmt: skip
            ist[N_REBALANCES] += 1
            ist[LAST_FILL] = t
            pending[:] = 0.0
    if reinvest_here:
        event = True
        if ist[LAST_FILL] != t and _may_buy(
            pending, px, params[BUY_FACTOR], pend, n_pend
        ):
            reinvest_fill(work, log, state, params, px, gone_after, pending, row, t,
                          active, held, n_held)  # fmt: skip
    if event:
        ist[CHECK_FROM] = t if is_open else t + 1


@numba.njit(cache=True)
def run_portfolio(  # pragma: no cover - jitted
    work: FloatArray,
    log: FloatArray,
    state: FloatArray,
    params: FloatArray,
    ist: IntArray,
    pending: FloatArray,
    fill_px: FloatArray,
    close: FloatArray,
    marks: FloatArray,
    div_ptr: IntArray,
    div_cols: IntArray,
    div_vals: FloatArray,
    weights: FloatArray,
    cal_idx: IntArray,
    n_flows: IntArray,
    flow_amount: float,
    reinvest_at: BoolArray,
    delist_ptr: IntArray,
    delist_cols: IntArray,
    gone_after: IntArray,
    start_row: int,
    first: int,
    is_open: bool,
    reinvest: bool,
    band: float,
    t0: int,
    t1: int,
    income: FloatArray,
    external: FloatArray,
    positions: FloatArray,
    equity: FloatArray,
    invested: FloatArray,
) -> int:
    """Run local days ``t0 .. t1-1`` of the portfolio loop (module docstring).

    ``fill_px``: the fill prices (``open`` or ``close``), window rows; ``marks``:
    valuation closes from window row ``first``; ``div_ptr, div_cols, div_vals``:
    the cash dividends per share of the run's rows (local) as :func:`sparse_rows`
    lists them (:func:`no_dividends` without dividends); ``cal_idx[t]``: the
    decision filling on local day ``t`` (-1 none); ``n_flows[t]``: flows of
    ``flow_amount`` on day ``t``; ``reinvest_at[t]``: a reinvestment fill on day
    ``t``; ``delist_cols[delist_ptr[t]:delist_ptr[t+1]]``: the columns cashed out
    on day ``t`` (descending); ``band`` < 0: no band.
    Writes ``income`` and ``external`` (flows) per day; when ``positions`` has
    rows, the shares held at each close; when ``equity`` has rows, ``equity`` and
    ``invested`` per day (from the running cash; a caller that keeps positions
    values them afterwards instead, vectorised). Returns the first day not run:
    ``t1``, or earlier when the fill log has no room for a day's fills (grow it and
    call again from there).
    """
    q = work[Q]
    n_sym = q.shape[0]
    n_days = income.shape[0]
    active = np.empty(n_sym, dtype=np.int64)
    one = np.empty(1, dtype=np.int64)
    zeros = np.zeros(n_sym)
    keep_positions = positions.shape[0] > 0
    keep_equity = equity.shape[0] > 0
    bf = params[BUY_FACTOR]
    # the columns held (and, for the band, those with a positive target), rebuilt
    # when a fill changes the holdings or the target changes
    held = np.empty(n_sym, dtype=np.int64)
    n_held = _held(q, held)
    band_cols = np.empty(n_sym, dtype=np.int64)
    n_band = -1
    band_target = -2
    # every column with pending cash (those a reinvestment could buy), in the order
    # they got it; emptied when a rebalance zeroes ``pending``
    pend = np.empty(n_sym, dtype=np.int64)
    in_pend = np.zeros(n_sym, dtype=np.bool_)
    n_pend = 0
    for c in range(n_sym):
        if pending[c] > 0.0:
            pend[n_pend] = c
            in_pend[c] = True
            n_pend += 1
    for t in range(t0, t1):
        if int(state[N_FILLS]) + (2 * n_flows[t] + 6) * n_sym > log.shape[1]:
            return t
        fills_before = state[N_FILLS]
        row = t + start_row
        if t > 0 and div_ptr[t + 1] > div_ptr[t]:
            # the day's ex-dates (ascending columns): the same sequential sum as
            # over every holding, whose other terms are 0 * shares = 0
            day = 0.0
            for k in range(div_ptr[t], div_ptr[t + 1]):
                c = div_cols[k]
                if q[c] != 0.0:
                    amount = div_vals[k] * q[c]
                    day += amount
                    if reinvest:
                        pending[c] += amount
                        if not in_pend[c] and pending[c] > 0.0:
                            in_pend[c] = True
                            pend[n_pend] = c
                            n_pend += 1
            income[t] = day
            if ist[DEPLETED] < 0:  # an emptied portfolio's cash stays 0
                state[CASH] += day
        events = (
            cal_idx[t] >= 0
            or n_flows[t] > 0
            or reinvest_at[t]
            or (is_open and ist[BAND_AT] == t)
        )
        # the common day: only a reinvestment, and no pending cash buys a share
        idle = (
            events
            and ist[DEPLETED] < 0
            and cal_idx[t] < 0
            and n_flows[t] == 0
            and not (is_open and ist[BAND_AT] == t)
            and not _may_buy(pending, fill_px[row], bf, pend, n_pend)
        )
        if idle:
            # what the fill phase would do: nothing but mark the event
            ist[CHECK_FROM] = t if is_open else t + 1
            events = False
        if ist[DEPLETED] < 0 and events:
            prev = row - first - (1 if row > 0 else 0)
            if is_open:
                _fill_phase(
                    work, log, state, params, ist, pending, fill_px[row],
                    marks[prev], weights, zeros, cal_idx[t], n_flows[t],
                    flow_amount, reinvest_at[t], gone_after, row, t, True, external,
                    active, held, n_held, pend, n_pend,
                )  # fmt: skip
        cashed_out = delist_ptr[t + 1] > delist_ptr[t]
        if ist[DEPLETED] < 0:
            for j in range(delist_ptr[t], delist_ptr[t + 1]):
                c = delist_cols[j]
                work[QTY, c] = q[c]
                one[0] = c
                _trade(work, log, state, params, QTY, close[row], -1.0, t, one, 1)
                work[QTY, c] = 0.0
                ist[CHECK_FROM] = t + 1
            if not is_open and events:
                _fill_phase(
                    work, log, state, params, ist, pending, fill_px[row],
                    marks[row - first], weights, zeros, cal_idx[t], n_flows[t],
                    flow_amount, reinvest_at[t], gone_after, row, t, False,
                    external, active, held, n_held, pend, n_pend,
                )  # fmt: skip
        mark = marks[row - first]
        if ist[LAST_FILL] == t and n_pend > 0:  # a rebalance zeroed ``pending``
            for j in range(n_pend):
                in_pend[pend[j]] = False
            n_pend = 0
        # reinvestment buys only add shares to holdings: the held set changes
        # only with a rebalance, a cash-out or a depletion
        if state[N_FILLS] != fills_before and (
            ist[LAST_FILL] == t or ist[DEPLETED] == t or cashed_out
        ):
            n_held = _held(q, held)
            n_band = -1
        if (
            band >= 0.0
            and ist[DEPLETED] < 0
            and ist[CURRENT] >= 0
            and 0 <= ist[CHECK_FROM] <= t <= n_days - 2
        ):
            target = weights[ist[CURRENT]]
            if n_band < 0 or band_target != ist[CURRENT]:
                n_band = 0
                for c in range(n_sym):
                    if q[c] != 0.0 or target[c] > 0.0:
                        band_cols[n_band] = c
                        n_band += 1
                band_target = ist[CURRENT]
            breach = _band_breach(q, state[CASH], mark, target, band, band_cols, n_band)
        else:
            breach = False
        if breach:
            if is_open:
                ist[BAND_AT] = t + 1
                ist[BAND_IDX] = ist[CURRENT]
            else:
                _lean_rebalance(
                    work, log, state, params, fill_px[row], weights[ist[CURRENT]],
                    mark, gone_after, row, t, active,
                )  # fmt: skip
                ist[N_REBALANCES] += 1
                ist[LAST_FILL] = t
                pending[:] = 0.0
                for j in range(n_pend):
                    in_pend[pend[j]] = False
                n_pend = 0
                ist[CHECK_FROM] = t + 1
                n_held = _held(q, held)
                n_band = -1
        if keep_equity:
            value = 0.0
            for j in range(n_held):
                value += q[held[j]] * mark[held[j]]
            invested[t] = value
            equity[t] = state[CASH] + value
        if keep_positions:
            positions[t] = q
    return t1


def _frozen(a: FloatArray) -> FloatArray:
    a.flags.writeable = False
    return a


def warm_up() -> None:
    """Compile (or load) :func:`run_portfolio` and :func:`sparse_rows` for the
    argument types the engine passes (see :func:`app.engine.jit.warm_up`): price
    views contiguous (whole windows) or strided (a column subset of the window),
    read-only or not; dividends reach the kernel as :func:`sparse_rows` lists
    (one type)."""
    n, days = 2, 4
    contiguous = _frozen(np.ones((days, n)))
    strided = _frozen(np.ones((days, 2 * n))[:, :n])
    for x in (contiguous, strided, np.ones((days, n)), np.ones((days, 2 * n))[:, :n]):
        ptr, cols, vals = sparse_rows(x)
    select_rows(ptr, cols, vals, 1, 2, np.array([1, 0], dtype=np.int64))
    for px in (contiguous, strided):
        for div_ptr, div_cols, div_vals in (
            no_dividends(days),
            sparse_rows(np.full((days, n), 0.1)),
        ):
            for positions, equity in (
                (np.empty((days, n)), np.zeros(0)),
                (np.empty((0, n)), np.zeros(days)),
            ):
                ist = new_state()
                run_portfolio(
                    np.zeros((9, n)), np.zeros((5, 64 * n)), np.array([1e3, 0.0]),
                    np.array([0.0, 0.0, 1.0, 1.0]), ist, np.zeros(n), px, px, px,
                    div_ptr, div_cols, div_vals,
                    np.full((1, n), 0.5), np.array([-1, 0, -1, -1], dtype=np.int64),
                    np.array([0, 0, 1, 0], dtype=np.int64), 10.0,
                    np.ones(days, dtype=np.bool_), np.zeros(days + 1, dtype=np.int64),
                    np.zeros(0, dtype=np.int64), np.full(n, 99, dtype=np.int64), 0,
                    0, True, True, 0.05, 0, days, np.zeros(days), np.zeros(days),
                    positions, equity, np.zeros(equity.shape[0]),
                )  # fmt: skip
