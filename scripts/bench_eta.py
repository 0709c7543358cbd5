"""How true is the progress ETA? Runs a spread of backtests and compares, at 10 %,
50 % and 90 % progress, the ETA the job would have sent with the time it really had
left.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_eta.py [--runs 30] [--seed 2]

Each job runs as a worker runs it (``app.backtests.run.compute``: the plan from the
shipped calibration, the engine's phases, the analysis; then the results saved to a
scratch PostgreSQL database and rolled back, see ``progress_runs``), feeding the
runner's progress model (:class:`app.jobs.eta.PhaseProgress`), which a sampler
thread reads every 10 ms like the runner's ticker. The spread (strategies 1-7, 5 to
~500 stocks, 1 to 15 years, daily/weekly/monthly, both executions) is drawn with a
different seed from the calibration's (held out). Prints per job the predicted and
actual total, then the median and p90 of |predicted - actual| / actual of the
remaining time at each point, for all jobs and for those taking at least 1 s (a job
that ends before 90 % is shown has no 90 % point); wall and CPU time
(``time.process_time``) of the whole benchmark and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from progress_runs import ADMIN_URL, describe, prepared, run_one, spread

from app.jobs import eta
from app.jobs.eta import Phase, PhaseProgress

POINTS = (0.1, 0.5, 0.9)


class Sampled:
    """The runner's progress model fed by the job, read by a sampler thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: PhaseProgress | None = None
        self.samples: list[tuple[float, float, float]] = []  # (t, fraction, eta)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def plan(self, phases: Sequence[Phase]) -> None:
        with self.lock:  # as the runner's reporter: a second plan refines
            if self.model is None:
                self.model = PhaseProgress(phases)
                self.predicted = self.model.total
            else:
                self.model.revise(phases)

    def phase(self, name: str) -> None:
        with self.lock:
            if self.model is not None:
                self.model.enter(name)

    def progress(self, fraction: float) -> None:
        with self.lock:
            if self.model is not None:
                self.model.advance(fraction)

    def _sample(self) -> None:
        while not self.stop.wait(0.01):
            with self.lock:
                if self.model is not None:
                    f, eta = self.model.fraction(), self.model.eta_seconds()
                    self.samples.append((time.monotonic(), f, eta))

    def errors(self, end: float) -> dict[float, float]:
        out = {}
        for point in POINTS:
            for t, f, guess in self.samples:
                if f >= point:
                    actual = end - t
                    if actual > 0:
                        out[point] = abs(guess - actual) / actual
                    break
        return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--admin-url", default=ADMIN_URL)
    p.add_argument("--no-db", action="store_true")
    p.add_argument(
        "--prior", type=float, default=None, help="try another eta.PRIOR_SHARE"
    )
    args = p.parse_args()
    if args.prior is not None:
        eta.PRIOR_SHARE = args.prior
    # (job seconds, {point: error}) per job
    jobs: list[tuple[float, dict[float, float]]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    with prepared(None if args.no_db else args.admin_url) as (data, saver):
        for config in spread(data, args.runs, args.seed):
            watch = Sampled()
            watch.thread.start()
            start = time.monotonic()
            run_one(config, data, saver, listener=watch)
            end = time.monotonic()
            watch.stop.set()
            watch.thread.join()
            got = watch.errors(end)
            jobs.append((end - start, got))
            cells = " ".join(f"{got.get(pt, float('nan')):6.0%}" for pt in POINTS)
            print(
                f"{describe(config):40s} predicted {watch.predicted:6.2f} s, "
                f"took {end - start:6.2f} s; error at 10/50/90 %: {cells}",
                flush=True,
            )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    load = os.getloadavg()
    print("\n| jobs | progress | jobs measured | median error | p90 error |")
    print("|---|---|---|---|---|")
    for label, low in (("all", 0.0), ("taking >= 1 s", 1.0)):
        for point in POINTS:
            e = np.array([g[point] for took, g in jobs if took >= low and point in g])
            if e.size:
                print(
                    f"| {label} | {point:.0%} | {e.size} | {np.median(e):.0%} | "
                    f"{np.quantile(e, 0.9):.0%} |"
                )
    print(
        f"\nwall {wall:.1f} s, CPU {cpu:.1f} s, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
