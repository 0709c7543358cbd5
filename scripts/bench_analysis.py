"""Time the engine's backtest analysis (and, with --pbo, the sweep PBO diagnostics).

    .venv/bin/python scripts/bench_analysis.py [--repeat 10] [--pbo 880 5000]

Analysis: a 10-year daily series (2,520 sessions) with one benchmark, bootstrap
included (1,000 resamples). Prints the first call (includes the lazy imports of scipy
and arch) and the best of ``--repeat`` warm calls, as wall time and as this process's
CPU time (on a shared machine the CPU time is the better estimate of a quiet run).
PBO: ``overfitting_report`` of a (2,520, N) returns matrix, 16 blocks (12,870 splits).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from app.engine.analysis import analyse_backtest
from app.engine.overfitting import overfitting_report


def _timed(fn: object) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()  # type: ignore[operator]
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_analysis(repeat: int) -> None:
    dates = np.busday_offset("2014-01-02", np.arange(2520), roll="forward")
    rng = np.random.default_rng(2026)
    equity = 1e5 * np.cumprod(1 + rng.normal(0.0004, 0.011, dates.size))
    bench = 1e5 * np.cumprod(1 + rng.normal(0.0003, 0.010, dates.size))

    def run() -> None:
        analyse_backtest(dates=dates, equity=equity, benchmarks={"SPY": bench}, seed=1)

    wall, _ = _timed(run)
    print(f"analysis, first call (lazy imports): wall {wall * 1e3:.0f} ms")
    runs = [_timed(run) for _ in range(repeat)]
    best_wall = min(w for w, _ in runs) * 1e3
    best_cpu = min(c for _, c in runs) * 1e3
    print(
        f"analysis, 2,520 sessions + 1 benchmark, best of {repeat}: "
        f"wall {best_wall:.1f} ms, cpu {best_cpu:.1f} ms"
    )


def bench_pbo(columns: list[int]) -> None:
    for n in columns:
        r = np.random.default_rng(n).normal(0.0003, 0.01, size=(2520, n))
        wall, cpu = _timed(lambda r=r: overfitting_report(r))
        print(
            f"PBO/DSR report, T=2,520 N={n:,} S=16: wall {wall:.2f} s, cpu {cpu:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--pbo", type=int, nargs="*", default=[])
    args = parser.parse_args()
    bench_analysis(args.repeat)
    bench_pbo(args.pbo)


if __name__ == "__main__":
    main()
