"""Time what a backtest's completion adds on the worker (positions, metrics, analysis
with its bootstrap, exposure, compressed book) and the size of what it stores.

    .venv/bin/python scripts/bench_results.py [--repeat 5]

Ten years of daily sessions (2010-2019) from the bundled dataset, with SPY as the
benchmark: momentum top 20 rebalanced monthly, and an equal-weight 50-name portfolio
rebalanced daily. Prints the best of ``--repeat`` calls of
``app.backtests.results.build`` (wall and process CPU time; on a shared machine the
CPU time is the better estimate of a quiet run) and the stored sizes.
"""

from __future__ import annotations

import argparse
import time
import uuid

import orjson

from app.backtests.results import build
from app.backtests.schemas import BacktestRequest
from app.data.store import load_dataset
from app.engine.analysis import analyse_backtest
from app.engine.backtest import run_backtest

CASES = {
    "momentum top 20, monthly": {
        "strategy_id": 2,
        "strategy_params": {"top_n": 20},
        "rebalancing": "monthly",
    },
    "equal weight 50, daily": {"strategy_id": 1, "rebalancing": "daily"},
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    data = load_dataset(None)
    symbols = list(data.stocks[:50])
    for label, extra in CASES.items():
        body = {
            "start_date": "2010-01-01",
            "end_date": "2019-12-31",
            "benchmark": "SPY",
            **extra,
        }
        if extra.get("strategy_id") == 1:
            body["symbols"] = symbols
        config = BacktestRequest.model_validate(body).to_config()
        t0 = time.perf_counter()
        result = run_backtest(config, data)
        engine_ms = (time.perf_counter() - t0) * 1e3
        build(result, data, uuid.uuid4())  # warm: lazy imports (arch, scipy)
        runs = []
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            stored = build(result, data, uuid.uuid4())
            runs.append((time.perf_counter() - wall, time.process_time() - cpu))
        bench = {"SPY": result.benchmark_equity}
        cpu_analysis = []
        for _ in range(args.repeat):
            cpu = time.process_time()
            analyse_backtest(
                dates=result.dates, equity=result.equity, benchmarks=bench, seed=1
            )
            cpu_analysis.append(time.process_time() - cpu)
        analysis_kb = len(orjson.dumps(stored.analysis)) / 1024
        positions_kb = len(orjson.dumps(stored.positions, default=str)) / 1024
        print(
            f"{label}: {len(result.dates)} sessions, {len(result.fills)} fills, "
            f"{len(result.trades)} lots, {len(stored.positions)} positions; "
            f"engine {engine_ms:.0f} ms; completion adds best of {args.repeat}: "
            f"wall {min(w for w, _ in runs) * 1e3:.1f} ms, "
            f"cpu {min(c for _, c in runs) * 1e3:.1f} ms (of which the analysis "
            f"alone: cpu {min(cpu_analysis) * 1e3:.1f} ms); stored: book "
            f"{len(stored.book) / 1024:.0f} KiB, analysis {analysis_kb:.0f} KiB, "
            f"positions {positions_kb:.0f} KiB as JSON"
        )


if __name__ == "__main__":
    main()
