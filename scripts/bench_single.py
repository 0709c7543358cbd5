"""Single-run latency of ``run_backtest``: equal weight, 500 stocks x 10 years.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_single.py [--repeat 9]

Default settings (next-open fills, dividends on, commission 0.001, slippage 0.0005,
capital 100,000), rebalancing daily and monthly, on

* ``synthetic``: 500 symbols x 2,520 sessions (``app.engine.synthetic``, 2 %
  dividend yield, seed 0), the whole range;
* ``bundled``: the first 500 stocks (alphabetical) of the bundled dataset over its
  last 10 years (late listings and delistings included).

Prints the time the numba kernels took to become ready (compilation on a fresh
install, loading the on-disk cache afterwards), then per workload the median and
minimum wall time and the median CPU time (``time.process_time``) of ``--repeat``
runs after one warm-up run. Targets: daily <= 100 ms, monthly <= 10 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

T_IMPORT = time.perf_counter()
from app.data.store import load_dataset  # noqa: E402
from app.engine import jit, synthetic  # noqa: E402 - timed import
from app.engine.backtest import run_backtest  # noqa: E402
from app.engine.config import BacktestConfig  # noqa: E402
from app.engine.data import MarketData  # noqa: E402

TARGET_MS = {"daily": 100.0, "monthly": 10.0}


def config(
    data: MarketData, start_row: int, rebalancing: str, symbols: tuple[str, ...]
) -> BacktestConfig:
    days = data.dates.astype("datetime64[D]")
    return BacktestConfig(
        start_date=days[start_row].item(),
        end_date=days[-1].item(),
        rebalancing=rebalancing,  # type: ignore[arg-type]
        symbols=symbols,
    )


def measure(
    cfg: BacktestConfig, data: MarketData, repeat: int
) -> tuple[float, float, float, int]:
    result = run_backtest(cfg, data)  # warm-up
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        run_backtest(cfg, data)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return (
        statistics.median(wall) * 1e3,
        min(wall) * 1e3,
        statistics.median(cpu) * 1e3,
        len(result.fills),
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args()
    import_s = time.perf_counter() - T_IMPORT
    ready = jit.warm_up()
    print(f"engine import (numba included) {import_s:.2f} s; "
          f"kernels ready in {ready:.2f} s")  # fmt: skip
    synth = synthetic.generate(500, 2520, seed=0, dividend_yield=0.02).precompute()
    real = load_dataset().precompute()
    last = real.dates[-1].astype("datetime64[D]")
    real_start = real.row_of(last - np.timedelta64(int(10 * 365.25), "D"))
    workloads = (
        ("synthetic", synth, 0, tuple(synth.symbols)),
        ("bundled", real, real_start, tuple(sorted(real.stocks)[:500])),
    )
    print(f"{'data':10s} {'rebalancing':11s} {'fills':>7s} {'median ms':>10s} "
          f"{'min ms':>8s} {'cpu ms':>8s}  target")  # fmt: skip
    for name, data, start, symbols in workloads:
        for rebalancing in ("daily", "monthly"):
            cfg = config(data, start, rebalancing, symbols)
            med, best, cpu, fills = measure(cfg, data, args.repeat)
            target = TARGET_MS[rebalancing]
            verdict = "ok" if med <= target else "OVER"
            print(f"{name:10s} {rebalancing:11s} {fills:7d} {med:10.1f} {best:8.1f} "
                  f"{cpu:8.1f}  {verdict} <= {target:.0f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
