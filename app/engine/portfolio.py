"""Investor portfolios: fixed allocations, external cash flows, money-weighted return,
time-weighted returns and benchmark series.

Conventions (README "Portfolios: allocations, cash flows, dividends, benchmarks"):

Allocation
    :class:`AllocationStrategy` holds constant target weights over chosen symbols
    (ETFs included). A symbol without a close on a decision row (or not eligible
    there) gets weight 0 that row; the other weights are **not** renormalised (the
    rest stays cash), like every strategy's weights.
Cash flows
    ``amount`` per period on the **first session of each period** (month, quarter,
    year) after the run's first session (the initial capital is the first period's
    money), within the plan's ``start_date``..``end_date``. A flow is credited to cash
    before that session's fill (``next_open``: before the open; ``close``: at the
    close) and followed by a rebalance to the target weights at that fill.
Time-weighted return (TWR)
    A flow counts as made at the start of its session: the day's return is
    ``r_t = E_t / (E_{t-1} + F_t) - 1`` (0 when the base or ``E_t`` is <= 0, i.e.
    on the day a withdrawal empties the portfolio and after); return metrics chain
    these (:func:`twr_index`).
Money-weighted return
    XIRR: the annual rate ``r`` solving ``sum_i CF_i (1 + r) ** (-d_i / 365) = 0``
    over the initial capital and contributions (negative, paid in), withdrawals and
    the final value (positive, received), ``d_i`` actual days since the first
    session (actual/365), solved by :func:`xirr` (in closed form for one payment in
    and one out, else by bracketed bisection to 1e-12).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from app.engine.config import CashFlowPlan
from app.engine.data import FloatMatrix, IntArray, MarketData
from app.engine.errors import InvalidInputError
from app.engine.strategies.base import BoolMatrix, check_rows, tradable

FloatArray = npt.NDArray[np.float64]
DAYS_PER_YEAR_XIRR = 365.0


@dataclass(frozen=True)
class AllocationStrategy:
    """Constant target weights (a :class:`~app.engine.strategies.base.Strategy`).

    ``weights``: ``(n_symbols,)`` aligned to the data the simulator is given (the
    allocation's symbols, in order). ``rebalances`` False for ``"never"``: the
    weights are applied once (flows and the band still rebalance)."""

    weights: tuple[float, ...]
    rebalances: bool = True
    warmup_rows: int = 0

    def target_weights(
        self, data: MarketData, rows: IntArray, eligible: BoolMatrix | None = None
    ) -> FloatMatrix:
        rows = check_rows(rows, data.n_days)
        if len(self.weights) != data.n_symbols:
            raise InvalidInputError(
                "allocation weights must match the symbols", field="allocation"
            )
        ok = tradable(data, rows, eligible)
        out: FloatMatrix = np.where(ok, np.asarray(self.weights)[None, :], 0.0)
        return out


def flow_rows(
    dates: npt.NDArray[np.datetime64], start_row: int, end_row: int, plan: CashFlowPlan
) -> IntArray:
    """Rows (ascending) in ``start_row + 1 .. end_row`` on which a flow falls: the
    first session of each ``plan.frequency`` period, within the plan's dates."""
    span = dates[start_row : end_row + 1]
    months = span.astype("datetime64[M]").astype(np.int64)
    unit = {"monthly": 1, "quarterly": 3, "yearly": 12}[plan.frequency]
    keys = months // unit
    local = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    days = span.astype("datetime64[D]")
    if plan.start_date is not None:
        local = local[days[local] >= np.datetime64(plan.start_date, "D")]
    if plan.end_date is not None:
        local = local[days[local] <= np.datetime64(plan.end_date, "D")]
    rows: IntArray = (local + start_row).astype(np.int64)
    return rows


def twr_returns(equity: FloatArray, flows: FloatArray) -> FloatArray:
    """Daily time-weighted returns ``E_t / (E_{t-1} + F_t) - 1`` (shape ``n - 1``);
    0 where the base or ``E_t`` is <= 0 (an emptied portfolio has no performance)."""
    base = equity[:-1] + flows[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where((base > 0.0) & (equity[1:] > 0.0), equity[1:] / base - 1.0, 0.0)
    out: FloatArray = np.where(np.isfinite(r), r, 0.0)
    return out


def twr_index(equity: FloatArray, flows: FloatArray) -> FloatArray:
    """The time-weighted value index: ``E_0`` grown by the chained
    :func:`twr_returns` (equals ``equity`` when there are no flows)."""
    growth = np.concatenate(([1.0], np.cumprod(1.0 + twr_returns(equity, flows))))
    out: FloatArray = equity[0] * growth
    return out


def xirr(
    days: Sequence[int] | IntArray, amounts: Sequence[float] | FloatArray
) -> float | None:
    """The annual rate solving ``sum a_i (1 + r) ** (-(d_i - d_0) / 365) = 0``.

    ``days``: day numbers (e.g. days since 1970); ``amounts``: negative paid in,
    positive received. None when no sign change (no solution) or the rate is outside
    (-99.9999 %, 1e6 %)."""
    d = np.asarray(days, dtype=np.float64)
    a = np.asarray(amounts, dtype=np.float64)
    if not (a > 0).any() or not (a < 0).any():
        return None
    t = (d - d.min()) / DAYS_PER_YEAR_XIRR
    lo, hi = -0.999999, 1e4
    if len(a) == 2 and t[0] == 0.0 and t[1] > 0.0 and a[0] < 0.0:
        # one payment in, one out (a run without flows): the closed form
        # -a0 = a1 (1 + r) ** -t1, cheaper and more exact than the bisection
        rate = float((a[1] / -a[0]) ** (1.0 / t[1]) - 1.0)
        if lo < rate < hi:
            return rate

    def npv(rate: float) -> float:
        return float(np.sum(a * np.exp(-t * np.log1p(rate))))

    f_lo, f_hi = npv(lo), npv(hi)
    if f_lo == 0.0:
        return lo
    if np.sign(f_lo) == np.sign(f_hi):
        return None
    for _ in range(300):  # bisection: the NPV is monotone for one sign change
        mid = 0.5 * (lo + hi)
        f_mid = npv(mid)
        if f_mid == 0.0 or hi - lo < 1e-12:
            return mid
        if np.sign(f_mid) == np.sign(f_lo):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def money_weighted_return(
    dates: npt.NDArray[np.datetime64],
    initial_capital: float,
    flows: FloatArray,
    final_value: float,
) -> float | None:
    """XIRR of the run: ``-initial_capital`` on the first session, ``-F_t`` on each
    flow day (a contribution is paid in), ``+final_value`` on the last session."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    rows = np.flatnonzero(flows)
    all_days = np.concatenate(([days[0]], days[rows], [days[-1]]))
    amounts = np.concatenate(([-initial_capital], -flows[rows], [final_value]))
    return xirr(all_days, amounts)


def symbol_benchmark(
    price: FloatArray, initial_capital: float, flows: FloatArray
) -> FloatArray:
    """A frictionless one-symbol benchmark with the run's flows (fractional units,
    no costs). ``price`` is the run's rows of the series (``adj_close``: total
    return, or ``close``), gaps carried forward. Units are bought at the first
    close; a flow on day ``t`` buys (sells) units at the close of ``t - 1`` (the
    start of day ``t``, as the time-weighted returns assume); units never go below
    0 (a withdrawal larger than the holding empties it)."""
    units = np.empty(price.size)
    units[0] = initial_capital / price[0]
    held = units[0]
    for t in range(1, price.size):
        if flows[t] != 0.0:
            held = max(held + flows[t] / price[t - 1], 0.0)
        units[t] = held
    out: FloatArray = units * price
    return out
