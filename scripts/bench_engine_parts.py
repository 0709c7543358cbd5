"""Micro-benchmarks of the parts the issue-14 speed pass changed, old form vs new, in
one process on the same inputs (so a loaded machine affects both alike).

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_engine_parts.py [--repeat 30]

* the trade ledger of an equal-weight 500 x 10 y monthly run (synthetic, dividends
  on): the numpy form it replaced (the full cumulative-dividend matrix, the
  vectorised per-piece P&L, the three-key lexsort) against ``match_fifo`` with
  ``dividends=`` (compiled loops, cumulative sums at the needed rows only);
* the target weights of one S1 combination (momentum 126/21, top 20, weekly and
  monthly): the general cached pipeline against the shared ranking the sweep now
  uses.

Both forms are asserted equal byte for byte before timing. Printed: best CPU time
(``time.process_time``) of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sweep import s1

from app.data.store import load_dataset
from app.engine import jit, synthetic
from app.engine.backtest import run_backtest, validate_config
from app.engine.batch import _Sweep, _target_weights, _with_cache, apply_overrides
from app.engine.config import BacktestConfig
from app.engine.schedule import decision_rows
from app.engine.simulator import Fills
from app.engine.strategies import resolve_strategy
from app.engine.trades import fifo_pieces, match_fifo


def best_cpu_ms(f: Callable[[], Any], repeat: int) -> float:
    f()
    best = float("inf")
    for _ in range(repeat):
        c0 = time.process_time()
        f()
        best = min(best, time.process_time() - c0)
    return best * 1e3


def numpy_ledger(
    fills: Fills, last_mark: np.ndarray, dividends: np.ndarray
) -> dict[str, np.ndarray]:
    """The ledger as computed before (numpy, full cumulative matrix, lexsort)."""
    cum = jit.cumsum_rows(dividends)
    buy, sell, quantity = fifo_pieces(fills, n_symbols=last_mark.size)
    closed = sell >= 0
    sf = np.where(closed, sell, 0)
    col, entry_row = fills.col[buy], fills.row[buy]
    entry_price = fills.price[buy]
    entry_fee = fills.commission[buy] / fills.quantity[buy] * quantity
    exit_row = np.where(closed, fills.row[sf], -1)
    exit_price = np.where(closed, fills.price[sf], np.nan)
    exit_fee = (
        np.where(closed, fills.commission[sf] / -fills.quantity[sf], 0.0) * quantity
    )
    value_out = np.where(closed, exit_price, last_mark[col]) * quantity
    pnl = value_out - entry_price * quantity - entry_fee - exit_fee
    through = np.where(closed, exit_row, cum.shape[0] - 1)
    pnl += (cum[through, col] - cum[entry_row, col]) * quantity
    pct = pnl / (entry_price * quantity + entry_fee)
    exit_key = np.where(closed, exit_row, np.iinfo(np.int64).max)
    order = np.lexsort((exit_key, col, entry_row))
    return {"col": col[order], "pnl": pnl[order], "pnl_percent": pct[order]}


def ledger(repeat: int) -> None:
    data = synthetic.generate(500, 2520, seed=0, dividend_yield=0.02).precompute()
    days = data.dates.astype("datetime64[D]")
    config = BacktestConfig(
        start_date=days[0].item(), end_date=days[-1].item(), symbols=data.symbols
    )
    sim = run_backtest(config, data).simulation
    divs, mark = data.dividends_per_share, sim.mark[-1]
    want = numpy_ledger(sim.fills, mark, divs)
    got = match_fifo(
        sim.fills, n_symbols=500, last_mark=mark, cum_dividends=None, dividends=divs
    )
    for name, values in want.items():
        assert getattr(got, name).tobytes() == values.tobytes(), name
    old = best_cpu_ms(lambda: numpy_ledger(sim.fills, mark, divs), repeat)
    new = best_cpu_ms(
        lambda: match_fifo(
            sim.fills, n_symbols=500, last_mark=mark, cum_dividends=None, dividends=divs
        ),
        repeat,
    )
    print(f"ledger, EW 500 x 10 y monthly ({len(sim.fills)} fills, {len(got)} lots): "
          f"numpy form {old:.2f} ms, now {new:.2f} ms CPU")  # fmt: skip


def weights(repeat: int) -> None:
    data = load_dataset().precompute()
    base, _ = s1()
    sweep = _Sweep(data)
    for rebalancing in ("weekly", "monthly"):
        overrides = {"lookback": 126, "top_n": 20, "skip": 21}
        config = apply_overrides(base, {**overrides, "rebalancing": rebalancing})
        start_row, end_row = validate_config(config, data)
        strategy = resolve_strategy(2, config.strategy_params, None)
        lo = max(0, start_row - strategy.warmup_rows - 1)
        key, win = sweep.window(config, lo, end_row, sweep.universe(config))
        cached = _with_cache(strategy, sweep.factors, key, win)
        rows = decision_rows(
            win.data.dates,
            start_row=win.s0,
            end_row=win.data.n_days - 1,
            rebalancing=config.rebalancing,
        )
        a = cached.target_weights(win.data, rows)
        b = _target_weights(cached, win.data, rows)
        assert a.tobytes() == b.tobytes()
        old = best_cpu_ms(partial(cached.target_weights, win.data, rows), repeat)
        new = best_cpu_ms(partial(_target_weights, cached, win.data, rows), repeat)
        print(f"S1 target weights, {rebalancing} ({len(rows)} decisions): general "
              f"pipeline {old:.3f} ms, shared ranking {new:.3f} ms CPU")  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=30)
    args = p.parse_args()
    jit.warm_up()
    ledger(args.repeat)
    weights(args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
