"""Parameter-sweep throughput: combinations per second of ``run_sweep`` (workload S1).

Usage::

    .venv/bin/python scripts/bench_sweep.py [--repeat 3] [--loop-sample 40]
        [--vectorbt [--vectorbt-groups K]] [--limit N]

S1: momentum (strategy 2) on the whole bundled stock universe, 2014-08-26 ..
2024-08-26, default costs (commission 0.001, slippage 0.0005, next-open fills,
dividends on); grid lookback 42..252 step 21 (11) x top_n 5..100 step 5 (20) x skip
{0, 21} x rebalancing {weekly, monthly} = 880 combinations.

Run it with ``OPENBLAS_NUM_THREADS=1`` to hold it to one core. Printed: the median wall
time of ``--repeat`` full sweeps (each builds its caches from scratch; the dataset is
loaded and its derived arrays precomputed once before, as a worker does) and
combinations/s, plus the CPU time (``time.process_time``), which a busy machine inflates
less than wall time; then a loop of ``run_backtest`` over a sample of ``--loop-sample``
combinations (evenly spread over the grid) as the baseline; with ``--vectorbt`` (needs
the ``bench`` extra), vectorbt's ``Portfolio.from_orders`` on the same target weights
(computed beforehand, not timed) with whole shares and the same fees and slippage, plus
its Sharpe ratio and max drawdown, as a skilled user would write the sweep: one call per
(lookback, skip, rebalancing) with the 20 top_n variants as columns.
"""

# ruff: noqa: PLC0415 - optional peers are imported lazily

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import statistics
import sys
import time
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.data.store import load_dataset
from app.engine.backtest import run_backtest
from app.engine.batch import apply_overrides, run_sweep
from app.engine.config import BacktestConfig
from app.engine.data import MarketData
from app.engine.jit import warm_up

LOOKBACKS = range(42, 253, 21)
TOP_NS = range(5, 101, 5)
SKIPS = (0, 21)
REBALANCINGS = ("weekly", "monthly")
TARGET_PER_S = 150.0


def s1() -> tuple[BacktestConfig, list[dict[str, Any]]]:
    base = BacktestConfig(
        start_date=dt.date(2014, 8, 26), end_date=dt.date(2024, 8, 26), strategy_id=2
    )
    combos = [
        {"lookback": lb, "top_n": n, "skip": sk, "rebalancing": r}
        for lb, n, sk, r in product(LOOKBACKS, TOP_NS, SKIPS, REBALANCINGS)
    ]
    return base, combos


def bench_sweep(
    base: BacktestConfig, combos: list[dict[str, Any]], data: MarketData, repeat: int
) -> tuple[float, float]:
    times, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_sweep(base, combos, data)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(
        f"run_sweep: {len(combos)} combos, median {statistics.median(times):.2f} s "
        f"(runs: {', '.join(f'{t:.2f}' for t in times)}; CPU median "
        f"{statistics.median(cpu):.2f} s = {len(combos) / statistics.median(cpu):.1f} "
        f"combos per CPU-second; best CPU {min(cpu):.2f} s = "
        f"{len(combos) / min(cpu):.1f}), factor matrices computed "
        f"{result.factor_computations}, reused {result.factor_hits}; rankings "
        f"computed {result.ranking_computations}, reused {result.ranking_hits}"
    )
    return len(combos) / statistics.median(times), len(combos) / statistics.median(cpu)


def bench_loop(
    base: BacktestConfig, combos: list[dict[str, Any]], data: MarketData, n: int
) -> float:
    sample = combos[:: max(1, len(combos) // n)][:n]
    t0, c0 = time.perf_counter(), time.process_time()
    for overrides in sample:
        run_backtest(apply_overrides(base, overrides), data)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(
        f"run_backtest loop: {len(sample)} combos in {seconds:.2f} s "
        f"(CPU {cpu:.2f} s = {len(sample) / cpu:.1f} combos per CPU-second)"
    )
    return len(sample) / seconds


def bench_vectorbt(
    base: BacktestConfig,
    combos: list[dict[str, Any]],
    data: MarketData,
    n_groups: int | None = None,
) -> float:
    """vectorbt from_orders per (lookback, skip, rebalancing), top_n as columns; the
    first ``n_groups`` such groups only (each is 20 combinations) if given. Its
    import and numba compilation (a first call on a tiny frame) are not timed."""
    import pandas as pd

    t0 = time.perf_counter()
    import vectorbt as vbt

    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    tiny = pd.DataFrame(np.ones((3, 2)))
    vbt.Portfolio.from_orders(
        tiny, size=tiny * 0.5, size_type="targetpercent", group_by=[0, 0],
        cash_sharing=True, call_seq="auto", fees=0.001, slippage=0.001,
        size_granularity=1.0, freq="1D",
    ).sharpe_ratio()  # fmt: skip
    compile_s = time.perf_counter() - t0
    print(f"vectorbt {vbt.__version__}: import {import_s:.1f} s, first call "
          f"(numba compile) {compile_s:.1f} s (neither timed below)")  # fmt: skip

    from app.engine.batch import _Sweep

    sweep = _Sweep(data)
    groups: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for c in combos:
        groups.setdefault((c["lookback"], c["skip"], c["rebalancing"]), []).append(c)
    chosen = list(groups.values())[:n_groups]
    combos = [c for members in chosen for c in members]
    prepared = []
    for members in chosen:
        frames = []
        for overrides in members:
            weights, close, index, cols = _weights_frame(
                sweep, apply_overrides(base, overrides)
            )
            frames.append(weights)
        size = np.concatenate(frames, axis=1)
        close_wide = np.tile(close, (1, len(members)))
        group_by = np.repeat(np.arange(len(members)), len(cols))
        prepared.append((close_wide, size, group_by, index))
    t0, c0 = time.perf_counter(), time.process_time()
    for close_wide, size, group_by, index in prepared:
        pf = vbt.Portfolio.from_orders(
            pd.DataFrame(close_wide, index=index),
            size=pd.DataFrame(size, index=index),
            size_type="targetpercent",
            group_by=group_by,
            cash_sharing=True,
            call_seq="auto",
            fees=base.commission_rate,
            slippage=base.slippage_rate,
            init_cash=base.initial_capital,
            size_granularity=1.0,
            freq="1D",
        )
        pf.sharpe_ratio()
        pf.max_drawdown()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"vectorbt from_orders: {len(combos)} combos in {seconds:.2f} s (CPU "
          f"{cpu:.2f} s = {len(combos) / cpu:.2f} combos per CPU-second)")  # fmt: skip
    return len(combos) / cpu


def _weights_frame(sweep: Any, config: BacktestConfig) -> tuple[Any, ...]:
    """Target weights (NaN off decision rows) and closes on the run's rows."""
    from app.engine.backtest import _universe, validate_config
    from app.engine.batch import _with_cache
    from app.engine.schedule import decision_rows
    from app.engine.strategies import resolve_strategy

    data = sweep.data
    start_row, end_row = validate_config(config, data)
    strategy = resolve_strategy(config.strategy_id, config.strategy_params, None)
    lo = max(0, start_row - strategy.warmup_rows - 1)
    key, win = sweep.window(config, lo, end_row, _universe(config, data))
    strategy = _with_cache(strategy, sweep.factors, key, win)
    rows = decision_rows(
        win.data.dates,
        start_row=win.s0,
        end_row=win.data.n_days - 1,
        rebalancing=config.rebalancing,
    )
    out = np.full((win.data.n_days - win.s0, win.data.n_symbols), np.nan)
    out[rows - win.s0] = strategy.target_weights(win.data, rows)
    close = win.data.valuation_close[win.s0 :]
    # vectorbt refuses an order at a price <= 0: no order where there is no close yet
    # (valuation_close is 0 before a symbol's first close; it holds nothing there)
    out[~(close > 0)] = np.nan
    index = win.data.dates[win.s0 :]
    return out, close, index, win.data.symbols


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--loop-sample", type=int, default=40)
    p.add_argument("--limit", type=int, default=None, help="first N combos only")
    p.add_argument("--vectorbt", action="store_true")
    p.add_argument(
        "--vectorbt-groups",
        type=int,
        default=None,
        help="time vectorbt on the first K (lookback, skip, rebalancing) groups of "
        "20 combinations only (all 44 take ~15 min and >5 GB)",
    )
    args = p.parse_args()
    t0 = time.perf_counter()
    print(f"numba kernels ready in {warm_up():.2f} s (compile or cache load)")
    data = load_dataset().precompute()
    print(f"dataset {data.n_days} x {data.n_symbols} ready in "
          f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
    base, combos = s1()
    combos = combos[: args.limit] if args.limit else combos
    run_sweep(base, combos[:4], data)  # warm numpy/first-touch paths
    rate, cpu_rate = bench_sweep(base, combos, data, args.repeat)
    verdict = "ok" if cpu_rate >= TARGET_PER_S else "UNDER"
    print(f"S1 run_sweep: {rate:.1f} combos/s wall, {cpu_rate:.1f} per CPU-second "
          f"({verdict}, target >= {TARGET_PER_S} per core)")  # fmt: skip
    print(f"load average: {os.getloadavg()}")
    loop = bench_loop(base, combos, data, args.loop_sample)
    print(f"S1 run_backtest loop: {loop:.1f} combos/s (sweep is {rate / loop:.1f}x)")
    if args.vectorbt:
        if importlib.util.find_spec("vectorbt") is None:
            print("vectorbt is not importable (install the 'bench' extra); skipped")
        else:
            vbt_rate = bench_vectorbt(base, combos, data, args.vectorbt_groups)
            print(f"S1 vectorbt: {vbt_rate:.2f} combos per CPU-second; run_sweep is "
                  f"{cpu_rate / vbt_rate:.0f}x that (target >= 100x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
