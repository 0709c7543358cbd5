"""Chart payloads: stored once at completion at full resolution, down-sampled on read.

Every benchmark's curve is down-sampled at the equity curve's points; the cash flows
(``flows``, one entry per flow day) are never down-sampled.

Down-sampling keeps what a reader of a chart must not lose: the first and last points,
the equity extremes (MinMaxLTTB: min/max preselection, then Largest-Triangle-Three-
Buckets, from the ``tsdownsample`` library) and always the day of the deepest drawdown.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tsdownsample import MinMaxLTTBDownsampler

from app.engine.backtest import BacktestResult

MIN_POINTS = 10
MAX_POINTS = 10_000
DEFAULT_POINTS = 1_000


def series_payload(result: BacktestResult) -> dict[str, Any]:
    """The full-resolution chart data stored with a completed backtest."""
    bench = result.benchmark_equity
    days = result.dates.astype("datetime64[D]").astype(str).tolist()
    runs = result.benchmark_runs
    flows = result.flows
    depleted = result.depleted_row
    return {
        "dates": days,
        "equity": result.equity.tolist(),
        "benchmark": None if bench is None else bench.tolist(),
        "drawdown": result.drawdown.tolist(),
        "monthly_returns": result.monthly_returns,
        # the first benchmark's label, as before benchmarks became a list
        "benchmark_symbol": runs[0].name if runs else result.config.benchmark,
        "benchmarks": [
            {
                "name": run.name,
                "symbol": run.symbol,
                "allocation": run.allocation,
                "rebalancing": run.rebalancing,
                "equity": run.equity.tolist(),
                "metrics": run.metrics,
            }
            for run in runs
        ],
        "flows": []
        if flows is None
        else [
            {"date": days[i], "amount": float(flows[i])} for i in np.flatnonzero(flows)
        ],
        "depleted_on": days[depleted] if depleted >= 0 else None,
    }


def keep_indices(
    equity: np.ndarray, drawdown: np.ndarray, max_points: int
) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points to draw."""
    n = len(equity)
    if n <= max_points:
        return np.arange(n)
    chosen = MinMaxLTTBDownsampler().downsample(  # type: ignore[no-untyped-call]
        np.ascontiguousarray(equity, dtype=np.float64), n_out=max_points - 1
    )
    # LTTB always keeps the first and last points, so adding the drawdown minimum
    # gives at most max_points (tests/unit/test_charts.py holds the library to it).
    keep = np.union1d(chosen, [0, n - 1, int(np.argmin(drawdown))])
    return keep.astype(np.int64)


def chart_response(payload: dict[str, Any], max_points: int) -> dict[str, Any]:
    """The ``GET /chart`` body from a stored payload, down-sampled to ``max_points``."""
    equity = np.asarray(payload["equity"], dtype=np.float64)
    drawdown = np.asarray(payload["drawdown"], dtype=np.float64)
    idx = keep_indices(equity, drawdown, max_points)
    dates, bench = payload["dates"], payload.get("benchmark")
    return {
        "equity_curve": [
            {
                "date": dates[i],
                "equity": equity[i],
                "benchmark": None if bench is None else bench[i],
            }
            for i in idx
        ],
        "drawdown_series": [{"date": dates[i], "drawdown": drawdown[i]} for i in idx],
        "monthly_returns": payload["monthly_returns"],
        "benchmark_symbol": payload.get("benchmark_symbol"),
        # absent from payloads stored before portfolios existed: empty, not missing
        "benchmarks": [
            {**b, "equity": [b["equity"][i] for i in idx]}
            for b in payload.get("benchmarks") or []
        ],
        "flows": payload.get("flows") or [],
        "depleted_on": payload.get("depleted_on"),
    }
