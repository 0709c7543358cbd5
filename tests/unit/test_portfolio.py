"""Investor portfolios on the bundled data (issue 16): allocations, the drift band,
cash flows, reinvested dividends and allocation benchmarks, each checked against an
independent computation written here (not the engine's code)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math

import numpy as np
import pytest
from scipy import optimize

from app.data.store import load_dataset
from app.engine.backtest import check_config, run_backtest
from app.engine.config import AllocationBenchmark, BacktestConfig, CashFlowPlan
from app.engine.data import MarketData
from app.engine.errors import InvalidInputError

SIXTY_FORTY = (("SPY", 0.6), ("AGG", 0.4))
START, END = dt.date(2010, 1, 4), dt.date(2019, 12, 31)


@pytest.fixture(scope="module")
def data() -> MarketData:
    return load_dataset()


def _rows(data: MarketData, start: dt.date, end: dt.date) -> tuple[int, int]:
    s = data.row_of(np.datetime64(start, "D"))
    e = data.row_of(np.datetime64(end, "D"), side="right") - 1
    return s, e


def _independent_sixty_forty(
    data: MarketData, commission: float, slippage: float
) -> np.ndarray:
    """Day by day, in plain Python: decide at each month's last close, fill at the
    next open by the whole-share rule (sell over-weight holdings by ceil, buy
    under-weight ones by floor, amounts from the value at the fill prices), credit
    dividends on the ex-date to the holding's pending cash and buy whole shares of
    it at the next open unless a rebalance fills there (what does not make a whole
    share waits for the next dividend)."""
    s, e = _rows(data, START, END)
    cols = [data.column_of["SPY"], data.column_of["AGG"]]
    weights = [0.6, 0.4]
    months = data.dates.astype("datetime64[M]")
    decide = {s} | {t for t in range(s, e) if months[t + 1] != months[t]}
    ex_days = {
        t for t in range(s, e + 1)
        if any(data.dividends_per_share[t, c] != 0.0 for c in cols)
    }  # fmt: skip
    bf = (1 + slippage) * (1 + commission)
    sf = (1 - slippage) * (1 - commission)
    cash, q, pending = 100_000.0, [0.0, 0.0], [0.0, 0.0]
    equity = []
    for t in range(s, e + 1):
        if t > s:
            for i, c in enumerate(cols):
                d = float(data.dividends_per_share[t, c]) * q[i]
                cash += d
                pending[i] += d
        opens = [float(data.open[t, c]) for c in cols]
        if t - 1 in decide and t > s:
            value = cash + sum(q[i] * opens[i] for i in range(2))
            amounts = [weights[i] * value - q[i] * opens[i] for i in range(2)]
            for i in range(2):  # sells first
                if amounts[i] < 0:
                    n = min(q[i], math.ceil(-amounts[i] / (opens[i] * sf)))
                    px = opens[i] * (1 - slippage)
                    cash += n * px - n * px * commission
                    q[i] -= n
            for i in range(2):
                if amounts[i] > 0:
                    n = math.floor(amounts[i] / (opens[i] * bf))
                    px = opens[i] * (1 + slippage)
                    cash -= n * px + n * px * commission
                    q[i] += n
            pending = [0.0, 0.0]
        elif t - 1 in ex_days and t > s:
            for i in range(2):
                n = math.floor(pending[i] / (opens[i] * bf)) if pending[i] > 0 else 0
                px = opens[i] * (1 + slippage)
                cost = n * px + n * px * commission
                cash -= cost
                q[i] += n
                pending[i] = max(pending[i] - cost, 0.0)  # the rest waits
        equity.append(cash + sum(q[i] * float(data.close[t, c]) for i, c in
                                 enumerate(cols)))  # fmt: skip
    return np.array(equity)


def test_sixty_forty_monthly_equals_an_independent_recomputation(
    data: MarketData,
) -> None:
    config = BacktestConfig(
        start_date=START, end_date=END, allocation=SIXTY_FORTY,
        commission_rate=0.001, slippage_rate=0.0005,
    )  # fmt: skip
    result = run_backtest(config, data)
    expected = _independent_sixty_forty(data, 0.001, 0.0005)
    np.testing.assert_allclose(result.equity, expected, rtol=1e-6)
    # dividends were reinvested: more buy fills than the monthly rebalances give
    buys = result.fills.quantity > 0
    assert int(buys.sum()) > result.metrics["rebalance_count"] + 1
    assert result.metrics["rebalance_count"] == 119  # 120 months, the first invests


def test_band_rebalances_exactly_where_the_drift_exceeds_it(data: MarketData) -> None:
    band = 0.03
    config = BacktestConfig(
        start_date=START, end_date=END, allocation=SIXTY_FORTY,
        rebalancing="never", rebalance_band=band, reinvest_dividends=False,
    )  # fmt: skip
    result = run_backtest(config, data)
    sim = result.simulation
    value = sim.positions * sim.mark
    drift = np.abs(value / result.equity[:, None] - np.array([0.6, 0.4])).max(axis=1)
    breach = set(np.flatnonzero(drift[:-1] > band).tolist())
    fill_rows = sorted(set(result.fills.row.tolist()))
    assert fill_rows[0] == 1  # the initial purchase at the second session's open
    # every later fill is the open after a close whose drift exceeded the band,
    # and every such close is followed by one
    assert {r - 1 for r in fill_rows[1:]} == breach - {0}
    assert result.metrics["rebalance_count"] == len(fill_rows) - 1 > 2


def _ledger_xirr(days: np.ndarray, amounts: np.ndarray) -> float:
    t = (days - days[0]) / 365.0

    def npv(rate: float) -> float:
        return float(np.sum(amounts / (1.0 + rate) ** t))

    return float(optimize.brentq(npv, -0.99, 10.0, xtol=1e-14))


def test_monthly_contributions_irr_and_twr(data: MarketData) -> None:
    config = BacktestConfig(
        start_date=START, end_date=END, allocation=(("SPY", 1.0),),
        cash_flows=CashFlowPlan(amount=1000.0, frequency="monthly"),
    )  # fmt: skip
    result = run_backtest(config, data)
    flows = result.flows
    assert flows is not None
    flow_rows = np.flatnonzero(flows)
    assert len(flow_rows) == 119 and np.all(flows[flow_rows] == 1000.0)
    m = result.metrics
    assert m["total_contributions"] == 119_000.0 and m["total_withdrawals"] == 0.0
    # IRR: scipy's root of the ledger's dated flows (initial, contributions, final)
    days = result.dates.astype("datetime64[D]").astype(np.int64)
    ledger_days = np.concatenate(([days[0]], days[flow_rows], [days[-1]]))
    amounts = np.concatenate(([-100_000.0], -flows[flow_rows], [m["final_value"]]))
    assert m["money_weighted_return"] == pytest.approx(
        _ledger_xirr(ledger_days, amounts), abs=1e-9
    )
    # TWR: chained sub-period returns between flows (a flow starts a sub-period)
    e = result.equity
    bounds = [*flow_rows.tolist(), len(e)]
    growth = e[bounds[0] - 1] / e[0]
    for a, b in itertools.pairwise(bounds):
        growth *= e[b - 1] / (e[a - 1] + flows[a])
    assert m["total_return"] == pytest.approx(growth - 1.0, rel=1e-10)
    assert m["final_value"] == m["final_equity"] == pytest.approx(e[-1])


def test_allocation_benchmark_equals_the_allocation_run(data: MarketData) -> None:
    plan = CashFlowPlan(amount=-300.0, frequency="quarterly")
    config = BacktestConfig(
        start_date=START, end_date=END, strategy_id=7, symbols=("SPY",),
        cash_flows=plan,
        benchmarks=("AGG", AllocationBenchmark("60/40", SIXTY_FORTY, "quarterly")),
    )  # fmt: skip
    result = run_backtest(config, data)
    alone = run_backtest(
        BacktestConfig(
            start_date=START,
            end_date=END,
            allocation=SIXTY_FORTY,
            rebalancing="quarterly",
            cash_flows=plan,
        ),
        data,
    )
    run = result.benchmark_runs[1]
    assert run.name == "60/40" and run.allocation == dict(SIXTY_FORTY)
    np.testing.assert_array_equal(run.equity, alone.equity)
    # the first benchmark keeps filling the single-benchmark fields
    np.testing.assert_array_equal(
        result.benchmark_equity, result.benchmark_runs[0].equity
    )
    assert result.metrics["beta"] == pytest.approx(
        result.benchmark_runs[0].metrics["beta"], rel=1e-12
    )
    for key in ("alpha", "beta", "correlation", "tracking_error",
                "information_ratio", "up_capture", "down_capture"):  # fmt: skip
        assert key in run.metrics


def test_buy_and_hold_spy_agrees_with_benchmark_spy(data: MarketData) -> None:
    """Reinvested dividends make strategy 7 on SPY track "benchmark SPY" (total
    return) within 0.5 % over ten years with zero costs; with dividends kept as
    cash (the earlier behaviour) they are far apart."""
    config = BacktestConfig(
        start_date=dt.date(2014, 8, 26), end_date=dt.date(2024, 8, 26),
        strategy_id=7, symbols=("SPY",), benchmark="SPY",
        commission_rate=0.0, slippage_rate=0.0,
    )  # fmt: skip
    result = run_backtest(config, data)
    assert result.benchmark_equity is not None
    bench = float(result.benchmark_equity[-1])
    assert abs(result.final_equity - bench) / bench < 0.005
    cash = run_backtest(dataclasses.replace(config, reinvest_dividends=False), data)
    assert abs(cash.final_equity - bench) / bench > 0.02


def test_a_withdrawal_larger_than_the_portfolio_empties_it(data: MarketData) -> None:
    config = BacktestConfig(
        start_date=START, end_date=END, allocation=SIXTY_FORTY,
        cash_flows=CashFlowPlan(amount=-4000.0),
    )  # fmt: skip
    result = run_backtest(config, data)
    m = result.metrics
    assert m["portfolio_depleted"] is True and m["final_value"] == 0.0
    row = result.depleted_row
    assert row > 0 and np.all(result.equity[row:] == 0.0)
    assert result.flows is not None
    # the last withdrawal took what there was, less than asked
    assert -4000.0 < result.flows[row] < 0.0
    assert m["total_withdrawals"] < 4000.0 * len(np.flatnonzero(result.flows))
    assert m["money_weighted_return"] is not None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"allocation": (("SPY", 0.6), ("NOPE", 0.4))}, "allocation"),
        ({"allocation": (("SPY", 0.7), ("AGG", 0.4))}, "allocation"),
        ({"allocation": SIXTY_FORTY, "strategy_id": 2}, "allocation"),
        ({"benchmarks": ("NOPE",)}, "benchmarks[0]"),
        ({"benchmarks": ("SPY", AllocationBenchmark("x", (("ZZZ", 1.0),)))},
         "benchmarks[1].allocation"),
        ({"rebalance_band": 0.0}, "rebalance_band"),
    ],
)  # fmt: skip
def test_bad_portfolio_fields_name_the_field(
    data: MarketData, changes: dict[str, object], field: str
) -> None:
    config = dataclasses.replace(
        BacktestConfig(start_date=START, end_date=END), **changes
    )
    with pytest.raises(InvalidInputError) as err:
        check_config(config, data)
    assert err.value.field == field
