"""Sample the memory of a bench stack's processes during a load or soak run.

    python scripts/sample_rss.py --state STACK.json --out rss.csv [--interval 30]

Every ``--interval`` seconds, the RSS of every process under the stack's launcher
(``pids`` in the state file written by ``bench_stack.py up``), grouped by role (api,
worker, beat, other), is appended to ``--out``. On SIGTERM/SIGINT it prints the
growth of each role between the start (after ``--warmup`` seconds) and the end of
the run (the soak criterion: no role grows more than 10 %; see ``summarise``) and
exits 1 if one did. ``--summarise CSV`` re-reads a finished run.

Worker *children* are grouped as ``worker`` with their parent: Celery replaces a
child after ``worker_max_tasks_per_child``, so per-pid series would not compare.
"""

from __future__ import annotations

import argparse
import csv
import json
import signal
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil

ROLES = ("api", "worker", "beat", "other")
GROWTH_LIMIT = 0.10


def role_of(process: psutil.Process) -> str:
    try:
        cmdline = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "other"
    if "uvicorn" in cmdline or "spawn_main" in cmdline:
        return "api"
    if " beat" in cmdline:
        return "beat"
    if "celery" in cmdline and "worker" in cmdline:
        return "worker"
    return "other"


def sample(root_pids: list[int]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for pid in root_pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            if "resource_tracker" in " ".join(_cmdline(process)):
                continue
            try:
                totals[role_of(process)] += process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
    return {role: totals.get(role, 0) for role in ROLES}


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def summarise(rows: list[dict[str, Any]], warmup: float, window: int = 5) -> int:
    """Growth per role: the median of the last ``window`` samples against the median
    of the first ``window`` after the warm-up. Medians, because RSS breathes with
    the requests in flight (tens of MB per API worker); a leak moves both."""
    warm = [r for r in rows if r["t"] >= warmup] or rows
    if len(warm) < 2 * window:
        print(f"rss: {len(warm)} samples after warm-up, need {2 * window}")
        return 1
    head, tail = warm[:window], warm[-window:]
    print(
        f"\n## Memory (RSS), {head[0]['t']:.0f} s → {tail[-1]['t']:.0f} s "
        f"({len(warm)} samples after {warmup:.0f} s warm-up; medians of the first "
        f"and last {window})"
    )
    print(f"{'role':<8}{'start MB':>10}{'end MB':>10}{'max MB':>10}{'growth':>9}")
    worst = 0.0
    for role in ROLES:
        start = statistics.median(r[role] for r in head)
        end = statistics.median(r[role] for r in tail)
        if not start:
            continue
        peak = max(r[role] for r in warm)
        growth = (end - start) / start
        worst = max(worst, growth)
        print(
            f"{role:<8}{start / 2**20:>10.1f}{end / 2**20:>10.1f}"
            f"{peak / 2**20:>10.1f}{growth:>+9.1%}"
        )
    ok = worst <= GROWTH_LIMIT
    verdict = "ok" if ok else "FAIL"
    print(f"largest growth {worst:+.1%} (limit {GROWTH_LIMIT:.0%}): {verdict}")
    return 0 if ok else 1


def read_csv(path: str) -> list[dict[str, Any]]:
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state")
    parser.add_argument("--out")
    parser.add_argument("--summarise", metavar="CSV", help="only summarise a run")
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=120.0, help="seconds ignored")
    args = parser.parse_args()
    if args.summarise:
        return summarise(read_csv(args.summarise), args.warmup)
    if not (args.state and args.out):
        parser.error("--state and --out are required (or --summarise CSV)")
    state = json.loads(Path(args.state).read_text())
    roots = [int(pid) for pid in state["pids"].values()]
    stop = False

    def _stop(_signum: int, _frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    rows: list[dict[str, Any]] = []
    t0 = time.monotonic()
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["t", *ROLES])
        writer.writeheader()
        while not stop:
            row = {"t": time.monotonic() - t0, **sample(roots)}
            rows.append(row)
            writer.writerow(row)
            handle.flush()
            deadline = time.monotonic() + args.interval
            while not stop and time.monotonic() < deadline:
                time.sleep(0.2)
    return summarise(rows, args.warmup)


if __name__ == "__main__":
    sys.exit(main())
