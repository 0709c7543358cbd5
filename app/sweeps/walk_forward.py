"""Walk-forward analysis of a sweep: choose on a train span, run on the next span.

Windows step by ``test_months`` over the base request's date range:
``train = [start + k·test_months, + train_months)`` (anchored: the train span always
starts at the base's start date and grows), ``test`` = the ``test_months`` after it;
a window is used only when its test span ends on or before the base's end date.
In each window every valid combination runs on the train span, the best by the
objective is chosen (ties: the lowest index) and runs on the test span as its own
backtest from ``initial_capital`` (indicators may read history before the span, as
in any backtest). The out-of-sample curve chains the test spans' daily returns; its
metrics are the single-backtest metric set of that curve (positions, trades and
costs of each test run carried over, scaled to the chained capital). Efficiency =
mean test metric / mean train metric.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine import metrics as metrics_mod
from app.engine.backtest import (
    BacktestResult,
    run_backtest,
    time_weighted_curves,
)
from app.engine.config import BacktestConfig
from app.engine.data import MarketData

FloatArray = npt.NDArray[np.float64]
Window = tuple[dt.date, dt.date, dt.date, dt.date]


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved ``months`` on (the day clipped to the month's length)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def windows(
    start: dt.date, end: dt.date, *, train_months: int, test_months: int, anchored: bool
) -> list[Window]:
    """``(train_start, train_end, test_start, test_end)`` of every window (inclusive
    dates)."""
    out: list[Window] = []
    k = 0
    while True:
        train_start = start if anchored else add_months(start, k * test_months)
        test_start = add_months(start, train_months + k * test_months)
        test_end = add_months(test_start, test_months) - dt.timedelta(days=1)
        if test_end > end:
            return out
        out.append(
            (train_start, test_start - dt.timedelta(days=1), test_start, test_end)
        )
        k += 1


def parse(stored: Sequence[Sequence[str]]) -> list[Window]:
    """Windows as a job stores them (ISO dates) back to dates."""
    out: list[Window] = []
    for w in stored:
        a, b, c, d = (dt.date.fromisoformat(x) for x in w)
        out.append((a, b, c, d))
    return out


def _span(config: BacktestConfig, first: dt.date, last: dt.date) -> BacktestConfig:
    return dataclasses.replace(config, start_date=first, end_date=last)


def run(
    configs: Sequence[BacktestConfig],
    params: Sequence[dict[str, Any]],
    data: MarketData,
    *,
    spans: Sequence[Window],
    objective: str,
    score: Callable[[Any, str], float | None],
    evaluate: Callable[[Sequence[BacktestConfig]], list[dict[str, Any]]],
    should_cancel: Callable[[], bool],
    on_window: Callable[[int], None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The walk-forward block and its chart (the stitched out-of-sample curve and
    benchmark). ``evaluate(configs)`` gives each config's metrics in order."""
    results: list[dict[str, Any]] = []
    tests: list[BacktestResult] = []
    for k, (train_start, train_end, test_start, test_end) in enumerate(spans):
        train = evaluate([_span(c, train_start, train_end) for c in configs])
        scores = [score(m.get(objective), objective) for m in train]
        valid = [i for i, s in enumerate(scores) if s is not None]
        chosen = max(valid, key=lambda i: (scores[i], -i)) if valid else 0
        test = run_backtest(
            _span(configs[chosen], test_start, test_end),
            data,
            should_cancel=should_cancel,
        )
        tests.append(test)
        results.append(
            {
                "train_start": train_start.isoformat(),
                "train_end": train_end.isoformat(),
                "test_start": test_start.isoformat(),
                "test_end": test_end.isoformat(),
                "chosen": {"index": chosen, "params": params[chosen]},
                "train_metric": train[chosen].get(objective),
                "test_metric": test.metrics.get(objective),
                "test_metrics": test.metrics,
            }
        )
        on_window(k + 1)
    dates, equity, bench, oos = _stitched(tests)
    block = {
        "windows": results,
        "oos_metrics": oos,
        "efficiency": _efficiency(results),
        "objective": objective,
    }
    chart = {
        "dates": [str(d) for d in dates.astype("datetime64[D]")],
        "equity": equity.tolist(),
        "benchmark": None if bench is None else bench.tolist(),
    }
    return block, chart


def _efficiency(windows_out: Sequence[dict[str, Any]]) -> float | None:
    train = [w["train_metric"] for w in windows_out]
    test = [w["test_metric"] for w in windows_out]
    if not train or any(v is None for v in (*train, *test)):
        return None
    mean_train = float(np.mean(train))
    return None if mean_train == 0 else float(np.mean(test)) / mean_train


def _stitched(
    tests: Sequence[BacktestResult],
) -> tuple[npt.NDArray[Any], FloatArray, FloatArray | None, dict[str, Any]]:
    """Chain the test runs: each run's curves are scaled so that it starts where the
    previous one ended (its own first day is a zero return). The curves are those a
    single run's metrics use (:func:`app.engine.backtest.time_weighted_curves`):
    with cash flows the time-weighted ones, so a withdrawal is not a loss and a
    window whose withdrawals empty the portfolio (equity 0) does not zero every
    later window."""
    parts: dict[str, list[Any]] = {k: [] for k in ("d", "e", "i", "b", "p", "r")}
    scale, b_scale, notional, total_trades = 1.0, 1.0, 0.0, 0
    for test in tests:
        flows = test.flows if test.flows is not None else np.zeros(len(test.dates))
        curve, invested, bench = time_weighted_curves(
            test.equity, test.simulation.invested, flows, test.benchmark_equity
        )
        e0 = curve[0]
        parts["d"].append(test.dates)
        parts["e"].append(curve * scale)
        parts["i"].append(invested * scale)
        if bench is not None:
            parts["b"].append(bench * b_scale)
            b_scale *= bench[-1] / bench[0]
        closed = ~test.trades.is_open
        parts["p"].append(test.trades.pnl[closed] * scale)
        parts["r"].append(test.trades.pnl_percent[closed])
        notional += float(np.abs(test.fills.quantity * test.fills.price).sum()) * scale
        total_trades += len(test.trades)
        scale *= curve[-1] / e0
    dates = np.concatenate(parts["d"])
    equity = np.concatenate(parts["e"])
    bench = np.concatenate(parts["b"]) if parts["b"] else None
    oos = metrics_mod.compute_metrics(
        dates=dates,
        equity=equity,
        invested_value=np.concatenate(parts["i"]),
        closed_trade_pnl=np.concatenate(parts["p"]),
        closed_trade_returns=np.concatenate(parts["r"]),
        total_trades=total_trades,
        traded_notional=notional,
        benchmark_equity=bench,
        risk_free_rate=tests[0].config.risk_free_rate,
    )
    return dates, equity, bench, oos
