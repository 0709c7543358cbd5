"""Worker memory at the largest sweep the tiers allow: 50,000 combinations x 10 years.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_sweep_memory.py
        [--rows 50000] [--years 10] [--database-url URL]

Runs one sweep through the worker's own code in this process: the warm-up a worker
does before its first job (``app.sweeps.run.warm_up``: the bundled dataset and the
compiled kernels), then the sweep job's ``app.sweeps.run.run`` (chunks claimed from
the database, rows written every 0.5 s, then the completion: the returns matrix read
back in blocks, into a temporary file above ``SWEEP_RETURNS_IN_MEMORY_BYTES`` that
the diagnostics read a slice of columns at a time, and the overfitting
diagnostics), then the completion's save, as the runner does. No helpers
(``SWEEP_MAX_HELPERS=0``): one process runs every chunk, the worst case for its
memory. The sweep is ``scripts/bench_sweep_api.py``'s cheap grid (momentum on 6
symbols, top_n 1..5 x commission x slippage steps) over ``--years`` years of the
bundled data, ``--rows`` combinations; the database a fresh SQLite file (embedded
mode) or ``--database-url`` (an existing, migrated PostgreSQL database).

A thread samples this process's RSS every 0.2 s (``psutil``) and prints the peak of
each phase (warm-up, rows, completion), with the file-backed part of the resident
pages (``shared``: mapped files, e.g. the shared libraries and, before the returns
file, the memory-mapped returns matrix; the rest is the heap). Target (issue 14):
worker RSS <= 1 GB at any sweep size the tiers allow.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import app.backtests.service  # noqa: F401 - registers the backtest validator
from app.core.config import get_settings
from app.db.migrate import upgrade_to_head
from app.db.models import Job, User
from app.jobs import runner
from app.jobs.registry import RunContext
from app.jobs.runner import run_in_worker_db
from app.sweeps import run, service
from app.sweeps.schemas import SweepRequest
from scripts.bench_sweep_api import cheap_sweep

MB = 2**20


class Sampler:
    """Peak RSS (and its file-backed part at that moment) per phase."""

    def __init__(self, interval: float = 0.2) -> None:
        self.ps = psutil.Process()
        self.interval = interval
        self.phase = "start"
        self.peaks: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sample(self) -> None:
        info = self.ps.memory_info()
        peak = self.peaks.get(self.phase, (0, 0))
        if info.rss > peak[0]:
            self.peaks[self.phase] = (info.rss, info.shared)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def enter(self, phase: str) -> None:
        self.sample()
        self.phase = phase
        print(f"[{time.strftime('%H:%M:%S')}] {phase}", flush=True)

    def stop(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()


class Reporter:
    """The runner's reporter without the database and the bus: prints progress."""

    def __init__(self, n: int) -> None:
        self.n, self.last = n, 0.0

    def progress(
        self,
        fraction: float,
        current_date: dt.date | None,
        work_done: int,
        *,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        now = time.monotonic()
        if now - self.last >= 30:
            self.last = now
            rss = psutil.Process().memory_info().rss / MB
            print(f"  {work_done} / {self.n} rows, RSS {rss:.0f} MB", flush=True)

    def cancelled(self) -> bool:
        return False

    def plan(self, phases: Sequence[Any]) -> None:
        return None

    def phase(self, name: str) -> None:
        return None


async def new_job(session: Any, config: dict[str, Any]) -> uuid.UUID:
    user = User(username=f"bench-{uuid.uuid4().hex[:8]}", password_hash="x")
    session.add(user)
    await session.flush()
    job = Job(user_id=user.id, kind="sweep", status="running", config=config)
    session.add(job)
    await session.commit()
    return job.id


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=50_000)
    p.add_argument("--years", type=int, default=10)
    p.add_argument("--database-url", default=None)
    args = p.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    tmp = tempfile.TemporaryDirectory(prefix="bench-sweep-memory-")
    url = args.database_url or f"sqlite+aiosqlite:///{tmp.name}/sweeps.db"
    settings = get_settings().model_copy(
        update={"database_url": url, "sweep_max_helpers": 0}
    )
    upgrade_to_head(url)
    runner.configure(settings)
    sampler = Sampler()
    sampler.start()
    t0, c0 = time.perf_counter(), time.process_time()
    sampler.enter("warm-up")
    run.warm_up(settings)
    body = cheap_sweep(args.rows, args.years)
    config = asyncio.run(
        service.prepare(
            SweepRequest.model_validate(body), tier="enterprise", settings=settings
        )
    )
    n = config["combinations"]
    job_id = run_in_worker_db(lambda s: new_job(s, config))
    context = RunContext(
        job_id=job_id,
        config=config,
        name=None,
        settings=settings,
        reporter=Reporter(n),
    )
    complete = run._complete

    def timed_complete(*a: Any, **k: Any) -> Any:
        sampler.enter("completion")
        return complete(*a, **k)

    run._complete = timed_complete
    sampler.enter("rows")
    completion = run.run(context)

    async def save(session: Any) -> None:
        await completion.save(session, job_id)
        await session.commit()

    run_in_worker_db(save)
    sampler.stop()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"{n} combinations x {args.years} years of {body['base']['symbols']}: "
        f"{wall:.0f} s wall, {cpu:.0f} s CPU; load {os.getloadavg()}"
    )
    for phase, (rss, shared) in sampler.peaks.items():
        print(
            f"  peak RSS {phase:<10} {rss / MB:7.0f} MB "
            f"(file-backed {shared / MB:.0f} MB, the rest {(rss - shared) / MB:.0f} MB)"
        )
    peak = max(rss for rss, _ in sampler.peaks.values())
    print(f"peak RSS over the whole run: {peak / MB:.0f} MB")
    tmp.cleanup()


if __name__ == "__main__":
    main()
