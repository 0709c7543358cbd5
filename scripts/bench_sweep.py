"""Parameter-sweep throughput: combinations per second of ``run_sweep`` (workload S1).

Usage::

    .venv/bin/python scripts/bench_sweep.py [--repeat 3] [--loop-sample 40]
        [--vectorbt] [--limit N]

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
) -> float:
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
        f"combos per CPU-second), factor matrices computed "
        f"{result.factor_computations}, reused {result.factor_hits}; rankings "
        f"computed {result.ranking_computations}, reused {result.ranking_hits}"
    )
    return len(combos) / statistics.median(times)


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
    base: BacktestConfig, combos: list[dict[str, Any]], data: MarketData
) -> float:
    """vectorbt from_orders per (lookback, skip, rebalancing), top_n as columns."""
    import pandas as pd
    import vectorbt as vbt

    from app.engine.batch import _Sweep

    sweep = _Sweep(data)
    groups: dict[tuple[int, int, str], list[dict[str, Any]]] = {}
    for c in combos:
        groups.setdefault((c["lookback"], c["skip"], c["rebalancing"]), []).append(c)
    prepared = []
    for members in groups.values():
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
    t0 = time.perf_counter()
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
    seconds = time.perf_counter() - t0
    print(f"vectorbt from_orders: {len(combos)} combos in {seconds:.2f} s")
    return len(combos) / seconds


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
    index = win.data.dates[win.s0 :]
    return out, close, index, win.data.symbols


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--loop-sample", type=int, default=40)
    p.add_argument("--limit", type=int, default=None, help="first N combos only")
    p.add_argument("--vectorbt", action="store_true")
    args = p.parse_args()
    t0 = time.perf_counter()
    print(f"numba kernels ready in {warm_up():.2f} s (compile or cache load)")
    data = load_dataset().precompute()
    print(f"dataset {data.n_days} x {data.n_symbols} ready in "
          f"{time.perf_counter() - t0:.2f} s")  # fmt: skip
    base, combos = s1()
    combos = combos[: args.limit] if args.limit else combos
    run_sweep(base, combos[:4], data)  # warm numpy/first-touch paths
    rate = bench_sweep(base, combos, data, args.repeat)
    verdict = "ok" if rate >= TARGET_PER_S else "UNDER"
    print(f"S1 run_sweep: {rate:.1f} combos/s ({verdict}, target >= {TARGET_PER_S})")
    loop = bench_loop(base, combos, data, args.loop_sample)
    print(f"S1 run_backtest loop: {loop:.1f} combos/s (sweep is {rate / loop:.1f}x)")
    if args.vectorbt:
        if importlib.util.find_spec("vectorbt") is None:
            print("vectorbt is not importable (install the 'bench' extra); skipped")
        else:
            print(f"S1 vectorbt: {bench_vectorbt(base, combos, data):.1f} combos/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
