"""Time what a backtest's completion adds on the worker (positions, metrics, analysis
with its bootstrap, exposure, compressed book) and the size of what it stores.

    .venv/bin/python scripts/bench_results.py [--repeat 5]

Ten years of daily sessions (2010-2019) from the bundled dataset, with SPY as the
benchmark: momentum top 20 rebalanced monthly, and an equal-weight 50-name portfolio
rebalanced daily. Prints the best of ``--repeat`` calls of
``app.backtests.results.build`` (wall and process CPU time; on a shared machine the
CPU time is the better estimate of a quiet run) and the stored sizes; then the CPU
time of rendering the HTML report from the stored form, and its size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
import uuid

import orjson

from app.backtests.charts import series_payload
from app.backtests.report import render_report
from app.backtests.results import Stored, build, load_book
from app.backtests.results_service import Loaded
from app.backtests.schemas import BacktestRequest
from app.data.membership import membership_mask_for
from app.data.store import load_dataset
from app.db.models import BacktestResult as BacktestResultRow
from app.db.models import Job, Position
from app.engine.analysis import analyse_backtest
from app.engine.backtest import BacktestResult, run_backtest

CASES = {
    "momentum top 20, monthly": {
        "strategy_id": 2,
        "strategy_params": {"top_n": 20},
        "rebalancing": "monthly",
    },
    "equal weight 50, daily": {"strategy_id": 1, "rebalancing": "daily"},
}


def _time_report(
    result: BacktestResult, stored: Stored, repeat: int
) -> tuple[float, int]:
    """CPU time of the report of ``result`` rendered from its stored form (the
    route's work after reading the rows) and the size of the HTML."""
    job = Job(
        id=uuid.uuid4(),
        name="bench",
        config={"strategy_id": result.config.strategy_id},
        metrics=stored.metrics,
        completed_at=dt.datetime.now(dt.UTC),
    )
    row = BacktestResultRow(
        analysis=stored.analysis,
        symbols=stored.symbols,
        sectors=stored.sectors,
        book=stored.book,
    )
    loaded = Loaded(
        series=series_payload(result), stored=row, book=load_book(stored.book)
    )
    positions = [Position(**p) for p in stored.positions]
    best = float("inf")
    for _ in range(repeat):
        cpu = time.process_time()
        html = render_report(job, loaded, stored.analysis, positions)
        best = min(best, time.process_time() - cpu)
    return best * 1e3, len(html.encode())


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
        # as the worker runs it: a whole-universe run defaults to sp500_pit
        membership = (
            membership_mask_for(data) if config.universe == "sp500_pit" else None
        )
        result = run_backtest(config, data, membership=membership)
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
        ms, size = _time_report(result, stored, args.repeat)
        print(
            f"{label}: report render best of {args.repeat}: cpu {ms:.1f} ms, "
            f"{size / 1024:.0f} KiB"
        )
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
