"""CPU time of one engine checkout, for A/B runs against another on a shared machine.

Usage (the previous engine from a commit, then alternate)::

    mkdir -p /tmp/ref && git archive <commit> app scripts | tar -x -C /tmp/ref
    for root in /tmp/ref . /tmp/ref .; do
        OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_ab.py $root 176
    done

Imports the engine from ``ROOT`` (its ``app`` and ``scripts``), then prints one line:
the minimum and median CPU time (``time.process_time``) of equal-weight 500 x 10 y
monthly runs on synthetic data and on the bundled stocks (15 runs each after a
warm-up) and of the daily synthetic run (5), then the best of two ``run_sweep`` runs
of every k-th S1 combination (``N`` of them, default 176) per CPU-second. Alternating
the two checkouts puts both under the same load; compare minima.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

root = str(Path(sys.argv[1]).resolve()) if len(sys.argv) > 1 else "."
n_sweep = int(sys.argv[2]) if len(sys.argv) > 2 else 176
sys.path.insert(0, root)
sys.path.insert(0, root + "/scripts")

import numpy as np  # noqa: E402
from bench_sweep import s1  # noqa: E402

from app.data.store import load_dataset  # noqa: E402
from app.engine import jit, synthetic  # noqa: E402
from app.engine.backtest import run_backtest  # noqa: E402
from app.engine.batch import run_sweep  # noqa: E402
from app.engine.config import BacktestConfig  # noqa: E402
from app.engine.data import MarketData  # noqa: E402


def config(data: MarketData, start: int, **kw: object) -> BacktestConfig:
    days = data.dates.astype("datetime64[D]")
    return BacktestConfig(
        start_date=days[start].item(),
        end_date=days[-1].item(),
        **kw,  # type: ignore[arg-type]
    )


def main() -> int:
    jit.warm_up()
    synth = synthetic.generate(500, 2520, seed=0, dividend_yield=0.02).precompute()
    real = load_dataset().precompute()
    last = real.dates[-1].astype("datetime64[D]")
    real_start = real.row_of(last - np.timedelta64(int(10 * 365.25), "D"))
    stocks = tuple(sorted(real.stocks)[:500])
    out = []
    for name, data, cfg, repeat in (
        ("synth-monthly", synth, config(synth, 0, symbols=synth.symbols), 15),
        ("real-monthly", real, config(real, real_start, symbols=stocks), 15),
        (
            "synth-daily",
            synth,
            config(synth, 0, rebalancing="daily", symbols=synth.symbols),
            5,
        ),
    ):
        run_backtest(cfg, data)
        cpu = []
        for _ in range(repeat):
            c0 = time.process_time()
            run_backtest(cfg, data)
            cpu.append(time.process_time() - c0)
        out.append(
            f"{name} min {min(cpu) * 1e3:.2f} med {statistics.median(cpu) * 1e3:.2f} ms"
        )
    base, combos = s1()
    combos = combos[:: max(1, len(combos) // n_sweep)][:n_sweep]
    run_sweep(base, combos[:4], real)
    cpu = []
    for _ in range(2):
        c0 = time.process_time()
        run_sweep(base, combos, real)
        cpu.append(time.process_time() - c0)
    out.append(f"sweep {len(combos)} combos: {len(combos) / min(cpu):.1f} per CPU-s")
    print(root, " | ".join(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
