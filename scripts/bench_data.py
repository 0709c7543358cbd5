"""Measure a cold load of the bundled dataset in a fresh subprocess.

Usage: .venv/bin/python scripts/bench_data.py [--repeat N]

Prints, per run: import time of app.data.store, wall time of ``load_dataset()``, and
peak RSS of the child process (``resource.getrusage``, includes the interpreter and the
imported libraries). Requirement: load <= 1 s, peak RSS <= 400 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from app.data.store import load_dataset
t1 = time.perf_counter()
data = load_dataset()
t2 = time.perf_counter()
rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "peak_rss_mb": rss_mb,
                  "shape": [data.n_days, data.n_symbols]}))
"""


def run_once() -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size_mb = (REPO / "app/data/bundled/prices.parquet").stat().st_size / 1e6
    print(f"bundled prices.parquet: {size_mb:.1f} MB")
    results = [run_once() for _ in range(args.repeat)]
    for r in results:
        print(
            f"import {r['import_s']:.3f} s  load {r['load_s']:.3f} s  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB  shape {tuple(r['shape'])}"
        )
    best = min(r["load_s"] for r in results)
    worst_rss = max(r["peak_rss_mb"] for r in results)
    verdict = "OK" if best <= 1.0 and worst_rss <= 400 else "OVER BUDGET"
    print(f"best load {best:.3f} s, max peak RSS {worst_rss:.0f} MB: {verdict}")


if __name__ == "__main__":
    main()
