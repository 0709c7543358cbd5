"""Latency of investor-portfolio runs (issue 16) of ``run_backtest`` on the bundled
data, 19 years (2005-2024, the whole dataset; the API caps a request at 10 years,
the engine does not):

* ``monthly+flows``: 60/40 SPY/AGG rebalanced monthly, 1,000 contributed monthly,
  dividends reinvested (target <= 10 ms on one core);
* ``band-daily``: 60/40 SPY/AGG, ``rebalancing="never"`` with a 5 % band checked at
  every close, dividends reinvested (target <= 30 ms).

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_portfolio.py [--repeat 21]

Prints per workload the median and minimum wall time and the median CPU time
(``time.process_time``) of ``--repeat`` runs after one warm-up run, with the load
average: on a shared machine, CPU time is the figure to compare with the target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.data.store import load_dataset
from app.engine import jit
from app.engine.backtest import run_backtest
from app.engine.config import BacktestConfig, CashFlowPlan

SIXTY_FORTY = (("SPY", 0.6), ("AGG", 0.4))
TARGET_MS = {"monthly+flows": 10.0, "band-daily": 30.0}


def workloads(first: dt.date, last: dt.date) -> dict[str, BacktestConfig]:
    flows = CashFlowPlan(amount=1000.0, frequency="monthly")
    return {
        "monthly+flows": BacktestConfig(
            start_date=first, end_date=last, allocation=SIXTY_FORTY,
            rebalancing="monthly", cash_flows=flows,
        ),
        "band-daily": BacktestConfig(
            start_date=first, end_date=last, allocation=SIXTY_FORTY,
            rebalancing="never", rebalance_band=0.05,
        ),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=21)
    args = parser.parse_args()
    jit.warm_up()
    data = load_dataset()
    data.precompute()
    days = data.dates.astype("datetime64[D]")
    first, last = days[0].item(), days[-1].item()
    print(f"bundled data {first}..{last}, {len(days)} sessions")
    for name, cfg in workloads(first, last).items():
        result = run_backtest(cfg, data)  # warm-up
        wall, cpu = [], []
        for _ in range(args.repeat):
            w0, c0 = time.perf_counter(), time.process_time()
            run_backtest(cfg, data)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        m = result.metrics
        print(
            f"{name:14s} wall median {1e3 * statistics.median(wall):7.2f} ms "
            f"min {1e3 * min(wall):7.2f} ms | CPU median "
            f"{1e3 * statistics.median(cpu):7.2f} ms (target <= "
            f"{TARGET_MS[name]:.0f} ms) | fills {len(result.fills)}, rebalances "
            f"{m['rebalance_count']}, final value {m['final_value']:,.0f}"
        )
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
