"""Calibrate the backtest progress model (:mod:`app.backtests.cost`) on this machine.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/calibrate_progress.py \\
        [--runs 45] [--seed 1] [--repeat 2] [--no-db] [--out FILE]

Runs a spread of real backtests on the bundled dataset (strategies 1-7, 5 to all
~500 stocks, 1 to 15 years, daily/weekly/monthly, both executions, dividends on and
off) exactly as a job runs them (``app.backtests.run.compute`` with a reporter that
timestamps each phase, then the results saved to a scratch PostgreSQL database and
rolled back), keeps each phase's mean of ``--repeat`` runs (the machine as it
usually is, other work included, not its best moment), fits each phase's
coefficients by non-negative least squares weighted by 1/time (relative error), and
writes them with the timed runs to the calibration file the service ships. Prints
each phase's fit and the median / p90 relative error of the predicted total.
``--out`` defaults to ``app/backtests/progress_costs.json``. Re-run it after
changing the engine's speed or moving to other hardware.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from progress_runs import ADMIN_URL, describe, prepared, run_one, spread

from app.backtests import cost

COMMAND = "OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/calibrate_progress.py"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=45)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--admin-url", default=ADMIN_URL)
    p.add_argument("--no-db", action="store_true", help="do not time saving")
    p.add_argument("--out", type=Path, default=cost.COSTS_FILE)
    args = p.parse_args()
    t0, c0 = time.perf_counter(), time.process_time()
    rows = []
    with prepared(None if args.no_db else args.admin_url) as (data, saver):
        for i, config in enumerate(spread(data, args.runs, args.seed)):
            best: dict[str, float] = {}
            for _ in range(args.repeat):
                work, made, seconds = run_one(config, data, saver)
                positions = int(seconds.pop("positions"))
                for k, v in seconds.items():  # the mean: a run as it usually goes
                    best[k] = best.get(k, 0.0) + v / args.repeat
            rows.append(
                {
                    "run": describe(config),
                    "workload": work.__dict__,
                    "outcome": made.__dict__,
                    "positions": positions,
                    "seconds": best,
                }
            )
            print(
                f"{i + 1:3d} {describe(config):40s} {sum(best.values()):7.3f} s",
                flush=True,
            )
    x = np.array([cost.Workload(**r["workload"]).features() for r in rows])
    phases = {}
    for phase in cost.PHASES:
        y = np.array([r["seconds"][phase] for r in rows])
        phases[phase] = cost.fit(x, y)
    x_made = np.array([cost.Outcome(**r["outcome"]).features() for r in rows])
    refined = {}
    for phase in cost.REFINED_PHASES:
        y = np.array([r["seconds"][phase] for r in rows])
        refined[phase] = cost.fit(x_made, y)
    x_rows = np.array(
        [
            cost.saving_features(
                r["outcome"]["lots"], r["positions"], r["outcome"]["sessions"]
            )
            for r in rows
        ]
    )
    saving = cost.fit(x_rows, np.array([r["seconds"]["saving"] for r in rows]))
    totals = np.array([sum(r["seconds"].values()) for r in rows])
    predicted = np.array(
        [
            sum(cost.predict(cost.Workload(**r["workload"]), phases).values())
            for r in rows
        ]
    )
    err = np.abs(predicted - totals) / totals
    load = os.getloadavg()
    out = {
        "command": COMMAND,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, load {load[0]:.2f}",
        "features": list(cost.FEATURES),
        "phases": phases,
        "refined_features": list(cost.REFINED_FEATURES),
        "refined": refined,
        "saving_features": list(cost.SAVING_FEATURES),
        "saving": saving,
        "fit_total_relative_error": {
            "median": round(float(np.median(err)), 4),
            "p90": round(float(np.quantile(err, 0.9)), 4),
        },
        "runs": rows,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    for phase, c in phases.items():
        print(f"{phase:11s} " + " ".join(f"{v:9.4g}" for v in c))
    for phase, c in refined.items():
        print(f"{phase:11s} refined " + " ".join(f"{v:9.4g}" for v in c))
    print("saving      from rows " + " ".join(f"{v:9.4g}" for v in saving))
    print(
        f"total predicted vs measured: median error {np.median(err):.1%}, "
        f"p90 {np.quantile(err, 0.9):.1%}; wrote {args.out}"
    )
    print(
        f"wall {time.perf_counter() - t0:.1f} s, CPU {time.process_time() - c0:.1f} s, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
