"""Cost of the point-in-time universe, and the coverage table of the README.

Usage::

    .venv/bin/python scripts/bench_universe.py [--repeat 9]

Times ``run_backtest`` on the bundled data, every stock (502) x the last 10 years,
with ``universe="all"`` and with ``universe="sp500_pit"`` (mask passed in, built
once beforehand, as a service caches it per dataset). Runs alternate between the two
so that load from other processes hits both alike; the median of ``--repeat`` runs
after one warm-up run is reported. Also times building the mask once (CSV read,
renames, alignment) and the coverage figure every result carries, and prints index
coverage per calendar year.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.data.membership import coverage_for, load_spells
from app.data.store import load_dataset
from app.engine.backtest import run_backtest
from app.engine.config import BacktestConfig
from app.engine.universe import membership_mask

WORKLOADS = {
    "equal-weight, monthly": (1, "monthly"),
    "momentum top-20, monthly": (2, "monthly"),
    "momentum top-20, weekly": (2, "weekly"),
    "equal-weight, daily": (1, "daily"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    data = load_dataset().precompute()
    t0 = time.perf_counter()
    spells = load_spells(data.symbols)
    mask = membership_mask(spells, data.dates, data.symbols)
    print(f"mask build (read CSVs, renames, align): {time.perf_counter() - t0:.3f} s")
    end = dt.date(2024, 8, 26)
    start = end - dt.timedelta(days=int(10 * 365.25))
    print(f"\n{len(data.stocks)} stocks, {start} .. {end}, median of {args.repeat}")
    print(f"{'workload':28} {'all (s)':>9} {'pit (s)':>9} {'overhead':>9}")
    for name, (strategy, rebalancing) in WORKLOADS.items():
        times: dict[str, list[float]] = {"all": [], "sp500_pit": []}
        for i in range(args.repeat + 1):
            for universe, runs in times.items():
                config = BacktestConfig(
                    start_date=start,
                    end_date=end,
                    strategy_id=strategy,
                    rebalancing=rebalancing,  # type: ignore[arg-type]
                    universe=universe,  # type: ignore[arg-type]
                )
                t = time.perf_counter()
                run_backtest(config, data, membership=mask)
                if i:  # the first round is the warm-up
                    runs.append(time.perf_counter() - t)
        a, p = (statistics.median(v) for v in times.values())
        print(f"{name:28} {a:9.4f} {p:9.4f} {100 * (p / a - 1):8.1f}%")
    coverage_for(data, start=start, end=end)  # warm-up: spells cached per dataset
    took = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        coverage_for(data, start=start, end=end)
        took.append(time.perf_counter() - t)
    print(
        f"\ndata_coverage of a 10-year result (the worker adds it to every "
        f"result): {statistics.median(took):.4f} s"
    )
    cov = coverage_for(data)
    print(
        f"\ncoverage 2005-2024: {100 * cov.share:.1f} % of member-days, "
        f"{cov.members} members, {cov.members_without_prices} without any price, "
        f"survivorship bias {cov.survivorship_bias}"
    )
    print("year  covered")
    for year, share in cov.by_year.items():
        print(f"{year}  {100 * share:5.1f} %")
    print("\nday         members  with prices")
    full = membership_mask(spells, data.dates, spells.labels)
    ours = membership_mask(spells, data.dates, data.symbols) & ~np.isnan(data.close)
    for day in ("2005-01-03", "2008-06-30", "2010-01-04", "2015-01-02", "2020-01-02"):
        row = data.row_of(np.datetime64(day))
        n, k = int(full[row].sum()), int(ours[row].sum())
        print(f"{day}  {n:7}  {k:5} ({100 * k / n:.0f} %)")


if __name__ == "__main__":
    main()
