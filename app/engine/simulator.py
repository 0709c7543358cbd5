"""The portfolio simulator: target weights in, whole-share fills and daily equity out.

Two loops. Without portfolio options (:class:`Portfolio`: flows, reinvestment, a
band) the only Python loop is over *events* (rebalance fills and forced delisting
sales); the per-symbol work of an event runs in compiled kernels
(:mod:`app.engine.jit`, whose docstring says why numba and how results stay
bit-identical to the former numpy code). With them, the whole loop is one compiled
kernel (:mod:`app.engine.jit_portfolio`) whose sums over symbols are sequential, so
those runs agree with the former Python portfolio loop to float rounding (~1e-15
relative), not bit for bit (tests/unit/test_portfolio_kernel.py). Conventions:

Fill timing (``execution``)
    ``next_open`` (default): the decision taken at the close of day ``t`` fills at the
    **open of day t+1**. ``close``: it fills at the close of day ``t`` itself.
Costs
    ``slippage_rate`` moves the fill price against the trader: buys fill at
    ``p·(1+slippage)``, sells at ``p·(1-slippage)``. ``commission_rate`` is charged
    on the executed notional: a buy of ``q`` costs ``q·p·(1+s)·(1+c)``, a sell yields
    ``q·p·(1-s)·(1-c)``.
Sizing (bt's whole-share allocation rule, so results are comparable with bt)
    Positions the new targets drop (weight 0) are sold in full first. Then, with
    ``V`` the portfolio value at the fill prices after those sales, for each symbol
    ``a = w·V - q·p``; ``a > 0`` buys ``floor(a / (p·(1+s)·(1+c)))`` shares and
    ``a < 0`` sells ``min(q, ceil(|a| / (p·(1-s)·(1-c))))``. Sells execute before
    buys; if the buys would still cost more than the cash available (possible only
    when untradeable holdings are over weight), every buy amount is scaled down so
    cash never goes negative. Whole shares, long only, no leverage.

    bt 1.4.1's stock ``Rebalance`` takes ``V`` *before* closing the dropped
    positions, so its buys spend the closing costs twice and its cash goes negative by
    up to those costs; we never overdraw. bt configured to close dropped names first
    (``scripts/bt_compat.py``) reproduces our final equity to ~1e-15 on equal-weight
    and momentum runs, with costs (tests/unit/test_bt_parity.py, BENCHMARKS.md).
Untradeable symbols
    A symbol without a price at the fill bar is not traded (its position is kept and
    valued at its last close). A symbol whose data ends before the dataset's last day
    is sold in full at its last close (with costs), as a delisting cash-out.
Dividends
    With ``dividends`` given (cash dividend per share on each ex-date, see
    :attr:`MarketData.dividends_per_share`), shares held at the close of day ``t-1``
    earn the dividend of ex-date ``t`` in cash on day ``t``, before that day's fills.
Valuation
    Equity at the close of each day = cash + Σ shares × close, with the last known close
    carried forward over gaps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from app.engine import jit, jit_portfolio
from app.engine.config import Execution
from app.engine.data import forward_fill
from app.engine.errors import CancelledError, InvalidInputError, NumericLimitError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
ProgressFn = Callable[[float, int, int], None]  # (fraction, local row, fills so far)
CancelFn = Callable[[], bool]

# Phases order several events on the same row: an open fill happens before anything
# at that day's close, and a delisting cash-out before a close rebalance.
_PHASE_OPEN, _PHASE_DELIST, _PHASE_CLOSE = 0, 1, 2
Side = Literal[1, -1]
BUY: Side = 1
SELL: Side = -1
#: Whole-share counts are exact in float64 only below 2**53.
MAX_EXACT_SHARES = float(2**53)


@dataclass(frozen=True)
class Fills:
    """Executed orders, in execution order. ``row`` is local (0 = first day of the run).

    ``quantity`` is signed (+ buy, - sell) whole shares; ``price`` includes slippage;
    ``commission`` is the cash commission of the fill.
    """

    row: IntArray
    col: IntArray
    quantity: FloatArray
    price: FloatArray
    commission: FloatArray

    def __len__(self) -> int:
        return len(self.row)


@dataclass(frozen=True)
class Simulation:
    """Daily state of the portfolio over the run, all rows local to the run.

    ``equity``, ``cash``, ``invested``, ``dividend_income``: shape ``(n_days,)``.
    ``positions``: shares held at each close, shape ``(n_days, n_symbols)``.
    ``mark``: the close used to value each position, shape ``(n_days, n_symbols)``.
    """

    equity: FloatArray
    cash: FloatArray
    invested: FloatArray
    dividend_income: FloatArray
    positions: FloatArray
    mark: FloatArray
    fills: Fills
    #: external flows applied per day (> 0 contribution, < 0 withdrawal)
    flows: FloatArray | None = None
    #: rebalances after the initial one (calendar, band and flow-triggered)
    rebalance_count: int = 0
    #: local row on which a withdrawal emptied the portfolio, or -1
    depleted_row: int = -1
    #: the run's dividends per share as their nonzero entries per local row
    #: ``(ptr, cols, values)`` (:func:`jit_portfolio.sparse_rows`), when the
    #: portfolio loop built them (the trade ledger then sums only those)
    dividend_events: tuple[IntArray, IntArray, FloatArray] | None = None


@dataclass(frozen=True)
class Portfolio:
    """The investor-portfolio options of :func:`simulate` (all off by default).

    ``flow_rows`` (ascending rows of the window) get ``flow_amount`` each;
    ``reinvest``: dividends are bought back into the paying holding at the next
    fill; ``band``: rebalance every holding to target when one drifts further."""

    flow_rows: IntArray | None = None
    flow_amount: float = 0.0
    reinvest: bool = False
    band: float | None = None

    @property
    def active(self) -> bool:
        has_flows = self.flow_rows is not None and self.flow_rows.size > 0
        return has_flows or self.reinvest or self.band is not None


@dataclass(frozen=True)
class Costs:
    commission_rate: float
    slippage_rate: float

    @property
    def buy_factor(self) -> float:
        """Cash per unit of price for one share bought."""
        return (1.0 + self.slippage_rate) * (1.0 + self.commission_rate)

    @property
    def sell_factor(self) -> float:
        """Cash per unit of price for one share sold."""
        return (1.0 - self.slippage_rate) * (1.0 - self.commission_rate)


class _Book:
    """Mutable portfolio state during one simulation: cash, shares, the fill log.

    The state lives in packed arrays the compiled kernels share (see
    :mod:`app.engine.jit`): ``work[Q]`` is the shares held, ``state[CASH]`` the running
    cash the sizing rule spends. The daily cash series of :class:`Simulation` is
    rebuilt afterwards from the fill log (:func:`_daily`); the two agree up to float
    rounding, and each is pinned bit for bit by the golden tests, so both stay.
    """

    def __init__(self, n_symbols: int, capital: float, costs: Costs) -> None:
        self.costs = costs
        self.work = np.zeros((jit.N_WORK, n_symbols))
        self.q = self.work[jit.Q]  # a view: the kernels update it in place
        self.log = np.zeros((5, max(4 * n_symbols, 64)))
        self.state = np.array([float(capital), 0.0])
        # views and scalars the per-event code reads (no lookups in the hot loop)
        self._px = self.work[jit.PX]
        self._value_px = self.work[jit.VALUE_PX]
        self._buy_qty = self.work[jit.BUY_QTY]
        self._buy_factor = costs.buy_factor
        self.params = np.array(
            [
                costs.slippage_rate,
                costs.commission_rate,
                costs.sell_factor,
                costs.buy_factor,
            ]
        )

    @property
    def cash(self) -> float:
        return float(self.state[jit.CASH])

    @property
    def n_fills(self) -> int:
        return int(self.state[jit.N_FILLS])

    def credit(self, amount: float) -> None:
        self.state[jit.CASH] += amount

    def reserve(self) -> None:
        """Make room for one event's fills (at most one per symbol)."""
        n, cap = self.n_fills, self.log.shape[1]
        if n + len(self.q) > cap:
            grown = np.zeros((5, max(n + len(self.q), 2 * cap)))
            grown[:, :n] = self.log[:, :n]
            self.log = grown

    def trade(self, row: int, qty: FloatArray, price: FloatArray, side: Side) -> None:
        """Buy (``side`` +1) or sell (-1) ``qty`` shares where ``qty > 0``, at
        ``price`` moved against the trader by slippage."""
        self.reserve()
        self.work[jit.QTY] = qty
        jit.trade(
            self.work, self.log, self.state, self.params, jit.QTY, price,
            float(side), row,
        )  # fmt: skip

    def rebalance(  # noqa: PLR0917 - positional: called once per event
        self,
        row: int,
        weights: FloatArray,
        price: FloatArray,
        mark: FloatArray,
        gone_after: IntArray,
        fill_row: int,
    ) -> None:
        """Trade towards ``weights`` at ``price`` (NaN = untradeable) by bt's rule.

        ``mark`` values positions that cannot trade; columns with ``gone_after <=
        fill_row`` (cashed out already) are untradeable too. ``row`` is the local
        row the fills are logged at. See the module docstring.
        """
        state = self.state
        if state[jit.N_FILLS] + len(self.q) > self.log.shape[1]:
            self.reserve()
        work, log, params = self.work, self.log, self.params
        jit.close_out(
            work, log, state, params, price, weights, mark, gone_after, fill_row, row
        )
        value = state[jit.CASH] + float(np.dot(self.q, self._value_px))
        jit.resize(work, log, state, params, value, row)
        px = self._px
        if float(np.dot(self._buy_qty, px)) * self._buy_factor > state[jit.CASH]:
            # Only reachable when untradeable holdings are over weight: shrink every
            # buy amount by the same factor so that sum(floor(a*k / (p*bf)) * p*bf)
            # <= cash.
            amount = work[jit.AMOUNT]
            wanted = float(amount[amount > 0.0].sum())
            # wanted is 0 only when cash is below 0 (a withdrawal): buy nothing
            k = max(self.cash, 0.0) / wanted if wanted > 0.0 else 0.0
            with np.errstate(divide="ignore", invalid="ignore"):
                scaled = np.floor(amount * k / (px * self._buy_factor))
            self._buy_qty[:] = np.where(amount > 0.0, scaled, 0.0)
        jit.trade(work, log, state, params, jit.BUY_QTY, px, 1.0, row)

    def fills(self) -> Fills:
        n = self.n_fills
        log = self.log[:, :n]
        return Fills(
            row=log[jit.F_ROW].astype(np.int64),
            col=log[jit.F_COL].astype(np.int64),
            quantity=log[jit.F_QTY].copy(),
            price=log[jit.F_PX].copy(),
            commission=log[jit.F_FEE].copy(),
        )


def _events(
    decisions: IntArray, delist_rows: IntArray, *, execution: Execution, end_row: int
) -> list[tuple[int, int, int]]:
    """(fill row, phase, index) sorted; index is a decision index or a column."""
    if execution == "next_open":
        events = [
            (int(r) + 1, _PHASE_OPEN, k) for k, r in enumerate(decisions) if r < end_row
        ]
    elif execution == "close":
        events = [(int(r), _PHASE_CLOSE, k) for k, r in enumerate(decisions)]
    else:
        raise InvalidInputError(
            f"unknown execution {execution!r}; allowed: next_open, close",
            field="execution",
        )
    events += [
        (int(r), _PHASE_DELIST, int(c)) for c, r in enumerate(delist_rows) if r >= 0
    ]
    events.sort()
    return events


def simulate(
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
    delist_rows: IntArray | None = None,
    valuation_close: FloatArray | None = None,
    on_progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    portfolio: Portfolio | None = None,
    dividend_events: tuple[IntArray, IntArray, FloatArray] | None = None,
) -> Simulation:
    """Run the portfolio from ``start_row`` to ``end_row`` (inclusive).

    ``portfolio`` (flows, dividend reinvestment, a drift band) switches to the
    compiled portfolio loop of :func:`_simulate_portfolio` (sequential sums: equal to
    the former Python loop to float rounding); without it the loop below runs,
    unchanged (bit for bit) from before portfolios existed.

    Price matrices are ``(n_rows, n_symbols)`` over the whole window (rows before
    ``start_row`` are history: they provide the last close of symbols that do not
    trade on the first day). ``decisions`` are rows (ascending) whose close decides
    ``weights[k]`` (shape ``(len(decisions), n_symbols)``). ``delist_rows[c]`` is
    the last row of a symbol that stops trading before the data ends (its cash-out
    day), or -1.
    ``dividends`` is cash per share by ex-date, same shape as ``close``, or None for
    price return only (no NaN). ``valuation_close`` (optional, if the caller has it
    cached) is ``close`` forward-filled with 0 before each symbol's first close.
    ``dividend_events`` (optional, the portfolio loop only): rows ``start_row ..
    end_row`` of ``dividends`` as :func:`jit_portfolio.sparse_rows` lists them, if
    the caller has them (:func:`jit_portfolio.select_rows` of the dataset's
    :attr:`~app.engine.data.MarketData.dividend_entries`).
    Returns daily arrays local to the run (row 0 = ``start_row``).
    """
    n_symbols = close.shape[1]
    if weights.shape != (len(decisions), n_symbols):
        raise InvalidInputError(
            "weights must have one row per decision", field="weights"
        )
    # Valuation closes from the row before the start (an open fill on the first day
    # values untradeable holdings at the previous close): NaN -> 0, positions there are
    # 0.
    first = max(start_row - 1, 0)
    if valuation_close is None:
        marks = np.nan_to_num(forward_fill(close[: end_row + 1])[first:], nan=0.0)
    else:
        marks = valuation_close[first : end_row + 1]
    mark = marks[start_row - first :]
    delist = (
        np.full(n_symbols, -1, dtype=np.int64) if delist_rows is None else delist_rows
    )
    delist = np.where((delist >= start_row) & (delist <= end_row), delist, -1)
    events = _events(decisions, delist, execution=execution, end_row=end_row)
    # Columns that have been cashed out at a row <= r cannot be traded again at r.
    gone_after = np.where(delist >= 0, delist, np.iinfo(np.int64).max)
    if portfolio is not None and portfolio.active:
        return _simulate_portfolio(
            open_=open_,
            close=close,
            dividends=dividends,
            decisions=decisions,
            weights=weights,
            start_row=start_row,
            end_row=end_row,
            execution=execution,
            initial_capital=initial_capital,
            costs=costs,
            delist=delist,
            gone_after=gone_after,
            marks=marks,
            first=first,
            portfolio=portfolio,
            should_cancel=should_cancel,
            on_progress=on_progress,
            dividend_events=dividend_events,
        )

    book = _Book(n_symbols, initial_capital, costs)
    n_days = end_row - start_row + 1
    income = np.zeros(n_days)
    divs = _run_rows(dividends, start_row, end_row)
    q_after = np.zeros((len(events) + 1, n_symbols))  # row 0: before any event
    fill_rows = np.zeros(len(events), dtype=np.int64)
    only = np.zeros(n_symbols)
    last = 0  # local row up to which dividends have been credited
    chunk = max(1, len(events) // 50)
    for i, (row, phase, idx) in enumerate(events):
        local = row - start_row
        if divs is not None and local > last:
            seg = divs[last + 1 : local + 1] @ book.q
            income[last + 1 : local + 1] = seg
            # one day: seg.sum() is 0.0 + seg[0], the same cash either way
            book.credit(float(seg[0]) if len(seg) == 1 else float(seg.sum()))
        last = max(last, local)
        if phase == _PHASE_DELIST:
            only[idx] = book.q[idx]
            book.trade(local, only, close[row], SELL)
            only[idx] = 0.0
        else:
            price = (open_ if phase == _PHASE_OPEN else close)[row]
            mark_row = marks[
                row - first - (1 if phase == _PHASE_OPEN and row > 0 else 0)
            ]
            book.rebalance(local, weights[idx], price, mark_row, gone_after, row)
        q_after[i + 1] = book.q
        fill_rows[i] = local
        if (i + 1) % chunk == 0:
            if should_cancel is not None and should_cancel():
                raise CancelledError("backtest cancelled")
            if on_progress is not None:
                on_progress((i + 1) / len(events), local, book.n_fills)
    if divs is not None and last < n_days - 1:
        income[last + 1 :] = divs[last + 1 :] @ book.q
    _check_exact(q_after, fill_rows, start_row)
    daily = _daily(
        initial_capital=initial_capital,
        fills=book.fills(),
        states=q_after,
        fill_rows=fill_rows,
        income=income,
        mark=mark,
    )
    n_rebalances = sum(1 for _, phase, _ in events if phase != _PHASE_DELIST)
    return dataclasses.replace(daily, rebalance_count=max(n_rebalances - 1, 0))


def portfolio_inputs(
    *,
    decisions: IntArray,
    delist: IntArray,
    flow_rows: IntArray | None,
    ex_days: BoolArray | None,
    start_row: int,
    end_row: int,
    execution: Execution,
) -> tuple[IntArray, IntArray, BoolArray, IntArray, IntArray]:
    """The per-day event arrays of :func:`jit_portfolio.run_portfolio`:
    ``(cal_idx, n_flows, reinvest_at, delist_ptr, delist_cols)``, local rows.
    ``ex_days``: the run's days with a dividend (None: no reinvestment)."""
    n_days = end_row - start_row + 1
    cal_idx = np.full(n_days, -1, dtype=np.int64)
    k = np.arange(len(decisions), dtype=np.int64)
    local = np.asarray(decisions, dtype=np.int64) - start_row
    if execution == "next_open":
        ahead = local < n_days - 1
        cal_idx[local[ahead] + 1] = k[ahead]
    elif execution == "close":
        cal_idx[local] = k
    else:
        raise InvalidInputError(
            f"unknown execution {execution!r}; allowed: next_open, close",
            field="execution",
        )
    n_flows = np.zeros(n_days, dtype=np.int64)
    if flow_rows is not None and flow_rows.size:
        np.add.at(n_flows, np.asarray(flow_rows, dtype=np.int64) - start_row, 1)
    reinvest_at = np.zeros(n_days, dtype=np.bool_)
    if ex_days is not None:
        if execution == "next_open":
            reinvest_at[1:] = ex_days[:-1]
        else:
            reinvest_at[1:] = ex_days[1:]
    # cash-outs of one day in descending column order (the former heap's order)
    cols = np.flatnonzero(delist >= 0)[::-1]
    days = delist[cols] - start_row
    order = np.argsort(days, kind="stable")
    delist_cols = cols[order].astype(np.int64)
    delist_ptr = np.zeros(n_days + 1, dtype=np.int64)
    np.add.at(delist_ptr, days + 1, 1)
    return cal_idx, n_flows, reinvest_at, np.cumsum(delist_ptr), delist_cols


#: slices of days the portfolio kernel runs in (progress and cancel between them):
#: 50, like the plain loop's chunks of events, so both report progress and check for
#: a cancel equally often (a 10-year run: every ~50 sessions)
_SLICES = 50


def _simulate_portfolio(
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
    dividend_events: tuple[IntArray, IntArray, FloatArray] | None = None,
) -> Simulation:
    """The event loop with flows, dividend reinvestment and a drift band, in one
    compiled kernel (:func:`app.engine.jit_portfolio.run_portfolio`, whose
    docstring gives the order of a day's events) run in ``_SLICES`` slices of days,
    with the cancel check and progress between slices.

    Events: calendar rebalances, delisting cash-outs, flows
    (credited, then a rebalance to the current target at the same fill unless a
    calendar rebalance fills there anyway), reinvestments (the fill after each
    ex-date: the dividend cash each holding paid, plus its remainder from earlier
    reinvestments, buys whole shares of it at the fill price with the usual costs;
    skipped when a rebalance fills there, which spends the cash anyway and clears
    the remainders) and band rebalances (found by
    scanning the closes between events: at the close of day ``d``, with the
    holdings of that close, when ``max_i |w_i - target_i| > band`` a rebalance is
    decided there and fills at the run's next fill, like a calendar decision; where
    a calendar rebalance fills too, it is that one).
    A withdrawal that leaves nothing (cash + holdings at the fill prices <= 0)
    sells everything, withdraws only what there was, and ends the run: the
    portfolio stays empty (``depleted_row``).

    Sums over symbols are sequential (see :mod:`app.engine.jit_portfolio`): the
    results agree with the former Python loop to float rounding, not bit for bit.
    """
    n_symbols = close.shape[1]
    n_days = end_row - start_row + 1
    mark = marks[start_row - first :]
    # the run's dividends as sparse rows (NaN as 0, as _run_rows gives them)
    if dividends is None:
        div_ptr, div_cols, div_vals = jit_portfolio.no_dividends(n_days)
    elif dividend_events is not None:
        div_ptr, div_cols, div_vals = dividend_events
    else:
        divs = dividends[start_row : end_row + 1]
        div_ptr, div_cols, div_vals = jit_portfolio.sparse_rows(divs)
    cal_idx, n_flows, reinvest_at, delist_ptr, delist_cols = portfolio_inputs(
        decisions=decisions,
        delist=delist,
        flow_rows=portfolio.flow_rows,
        ex_days=div_ptr[1:] > div_ptr[:-1]
        if portfolio.reinvest and dividends is not None
        else None,
        start_row=start_row,
        end_row=end_row,
        execution=execution,
    )
    book = _Book(n_symbols, initial_capital, costs)
    ist = jit_portfolio.new_state()
    pending = np.zeros(n_symbols)
    income, external = np.zeros(n_days), np.zeros(n_days)
    positions = np.empty((n_days, n_symbols))
    no_equity = np.empty(0)  # valued afterwards from the positions (_daily)
    # one argument type whatever the strategy returned (no compile on a request)
    target = np.ascontiguousarray(weights, dtype=np.float64)
    step = max(1, -(-n_days // _SLICES))
    t = 0
    while t < n_days:
        stop = min(n_days, t + step)
        while t < stop:
            need = book.n_fills + (2 * int(n_flows[t]) + 6) * n_symbols
            if need > book.log.shape[1]:
                grown = np.zeros((5, max(need, 2 * book.log.shape[1])))
                grown[:, : book.n_fills] = book.log[:, : book.n_fills]
                book.log = grown
            t = jit_portfolio.run_portfolio(
                book.work, book.log, book.state, book.params, ist, pending,
                open_ if execution == "next_open" else close, close, marks,
                div_ptr, div_cols, div_vals, target,
                cal_idx, n_flows, float(portfolio.flow_amount), reinvest_at,
                delist_ptr, delist_cols, gone_after, start_row, first,
                execution == "next_open", portfolio.reinvest,
                -1.0 if portfolio.band is None else float(portfolio.band),
                t, stop, income, external, positions, no_equity, no_equity,
            )  # fmt: skip
        if t < n_days:
            if should_cancel is not None and should_cancel():
                raise CancelledError("backtest cancelled")
            if on_progress is not None:
                on_progress(t / max(n_days - 1, 1), t - 1, book.n_fills)
    if on_progress is not None:
        on_progress(1.0, n_days - 1, book.n_fills)
    fills = book.fills()
    # no column bought 2**53 shares in all: no position got there (skip the scan)
    bought = np.bincount(
        fills.col, weights=np.maximum(fills.quantity, 0.0), minlength=n_symbols
    )
    if bought.max(initial=0.0) >= MAX_EXACT_SHARES:
        _check_positions(positions, start_row)
    return portfolio_simulation(
        initial_capital=initial_capital,
        fills=fills,
        states=positions,
        fill_rows=None,
        income=income,
        external=external,
        mark=mark,
        depleted=int(ist[jit_portfolio.DEPLETED]),
        rebalances=int(ist[jit_portfolio.N_REBALANCES]),
        dividend_events=None if dividends is None else (div_ptr, div_cols, div_vals),
    )


def portfolio_simulation(
    *,
    initial_capital: float,
    fills: Fills,
    states: FloatArray,
    fill_rows: IntArray | None,
    income: FloatArray,
    external: FloatArray,
    mark: FloatArray,
    depleted: int,
    rebalances: int,
    dividend_events: tuple[IntArray, IntArray, FloatArray] | None = None,
) -> Simulation:
    """A portfolio run's :class:`Simulation` from its fills and holdings (see
    :func:`_daily`), its dividend ``income`` and ``external`` flows per day, the
    row a withdrawal emptied it on (``depleted``, -1 if none) and the number of
    rebalances including the initial one."""
    sim = _daily(
        initial_capital=initial_capital,
        fills=fills,
        states=states,
        fill_rows=fill_rows,
        income=income + external,
        mark=mark,
    )
    cash, equity = sim.cash, sim.equity
    if depleted >= 0:  # empty from then on: no float residue of the cash sum
        cash = np.where(np.arange(len(cash)) >= depleted, 0.0, cash)
        equity = cash + sim.invested
    return Simulation(
        equity=equity,
        cash=cash,
        invested=sim.invested,
        dividend_income=income,
        positions=sim.positions,
        mark=mark,
        fills=sim.fills,
        flows=external,
        rebalance_count=max(rebalances - 1, 0),
        depleted_row=depleted,
        dividend_events=dividend_events,
    )


def _run_rows(
    dividends: FloatArray | None, start_row: int, end_row: int
) -> FloatArray | None:
    """The run's rows of ``dividends`` with NaN/inf as 0 (no copy when clean)."""
    if dividends is None:
        return None
    divs = dividends[start_row : end_row + 1]
    # A finite sum proves every entry finite (NaN and inf propagate), at a third of
    # the cost of isfinite().all(); an overflowing sum just takes the slow path.
    return divs if np.isfinite(divs.sum()) else np.nan_to_num(divs)


def _check_exact(states: FloatArray, fill_rows: IntArray, start_row: int) -> None:
    """Refuse positions of 2**53 shares or more: beyond that float64 no longer
    holds every whole number, so share counts, cash and the trade ledger would be
    silently wrong. Only implausible prices get there (a symbol that falls to a
    millionth of a cent, or data errors that compound)."""
    if states.size == 0:
        return
    over = np.flatnonzero(states.max(axis=1) >= MAX_EXACT_SHARES)
    if over.size:
        i = int(over[0])
        col = int(np.argmax(states[i] >= MAX_EXACT_SHARES))
        raise NumericLimitError(
            f"the portfolio would hold {states[i, col]:.3g} shares of column {col} "
            f"on row {start_row + int(fill_rows[i - 1])}: share counts must stay below "
            "2**53 (about 9e15) to be exact. Prices this small or this volatile are "
            "implausible; check the data.",
            row=start_row + int(fill_rows[i - 1]),
            col=col,
        )


def _check_positions(positions: FloatArray, start_row: int) -> None:
    """:func:`_check_exact` for daily positions."""
    over = np.flatnonzero(positions.max(axis=1, initial=0.0) >= MAX_EXACT_SHARES)
    if over.size:
        local = int(over[0])
        _check_exact(
            np.stack([positions[local], positions[local]]),
            np.array([local], dtype=np.int64),
            start_row,
        )


def _daily(
    *,
    initial_capital: float,
    fills: Fills,
    states: FloatArray,
    fill_rows: IntArray | None,
    income: FloatArray,
    mark: FloatArray,
) -> Simulation:
    """Expand event states into daily positions, cash and equity (``fill_rows``
    None: ``states`` are the daily positions already)."""
    n_days = mark.shape[0]
    if fill_rows is None:
        positions = states
    else:
        # states[0] holds before the first event, states[i + 1] after event i
        which = np.searchsorted(fill_rows, np.arange(n_days), side="right")
        positions = states[which]
    flow = np.zeros(n_days)
    np.add.at(flow, fills.row, -fills.quantity * fills.price - fills.commission)
    cash = initial_capital + np.cumsum(flow + income)
    invested = np.einsum("ij,ij->i", positions, mark)
    return Simulation(
        equity=cash + invested,
        cash=cash,
        invested=invested,
        dividend_income=income,
        positions=positions,
        mark=mark,
        fills=fills,
    )
