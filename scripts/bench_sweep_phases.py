"""Where a sweep job's time goes, phase by phase, in one process (no HTTP, no queue):
the split behind ``scripts/bench_sweep_api.py``'s POST -> completed figure.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_sweep_phases.py
        [--rows N [--years Y]] [--database-url URL]

Default workload S1 (``scripts/bench_sweep_api.py``'s: momentum on the whole bundled
universe, 10 years, 880 combinations); ``--rows N`` the same script's cheap sweep
of N combinations on 6 symbols over ``--years`` years instead. Each phase is what
the worker runs (``app.sweeps``), in the worker's order, timed in wall and CPU
seconds (``time.process_time``, less inflated by a busy machine):

* **validate**: ``service.prepare`` (the POST's own work: grid, caps, which
  combinations are valid);
* **engine**: ``rows.evaluate`` over every combination (``app.engine.batch.run_sweep``,
  64 per call), the dataset loaded and precomputed beforehand as a worker's warm-up
  does (that load is printed separately);
* **rows**: ``rows.row_values`` per row (PSR, the sortable metric columns, returns
  bytes);
* **store**: ``repository.insert_rows`` in batches of 64 with a commit each (a chunk
  flushes every 0.5 s, so real batches are about this size or smaller), into a fresh
  SQLite file (embedded mode) or ``--database-url`` (a PostgreSQL database that
  must exist and is migrated to head; the rows are deleted afterwards);
* **complete**: what completion reads back (objectives, best row, the returns in
  blocks into the ``(T, N)`` matrix) and the overfitting diagnostics on it.

What the API run adds on top (HTTP, the queue, progress and heartbeat writes, the
chunk claims, polling) is its total minus the sum of these.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

import app.backtests.service  # noqa: F401 - registers the backtest validator
from app.core.config import get_settings
from app.data.store import load_dataset
from app.db.migrate import upgrade_to_head
from app.db.models import Job, SweepRow, SweepSummary, User
from app.engine import jit
from app.engine.backtest import validate_config
from app.sweeps import grid, repository, rows, run, service
from app.sweeps.schemas import LOWER_IS_BETTER, SweepRequest
from scripts.bench_sweep_api import S1, cheap_sweep


class Clock:
    def __init__(self) -> None:
        self.phases: list[tuple[str, float, float]] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        w0, c0 = time.perf_counter(), time.process_time()
        yield
        self.phases.append((name, time.perf_counter() - w0, time.process_time() - c0))
        wall, cpu = self.phases[-1][1:]
        print(f"  {name:<10} {wall:8.2f} s wall {cpu:8.2f} s CPU", flush=True)


async def main(args: argparse.Namespace) -> None:
    body = S1 if args.rows is None else cheap_sweep(args.rows, args.years)
    settings = get_settings()
    clock = Clock()
    print(f"load average at start: {os.getloadavg()}")
    with clock.phase("dataset"):
        data = load_dataset(datasets_dir=settings.resolved_datasets_dir)
        data.precompute()
        jit.warm_up()
    with clock.phase("validate"):
        config = await service.prepare(
            SweepRequest.model_validate(body), tier="enterprise", settings=settings
        )
    combos = grid.valid_combinations(config)
    base = grid.engine_config(config["base"])
    start_row, end_row = validate_config(base, data)
    dates = data.dates[start_row : end_row + 1].astype("datetime64[D]")
    configs = [grid.engine_config(grid.apply(config["base"], c)) for c in combos]
    print(f"{len(combos)} combinations x {len(dates)} days")
    with clock.phase("engine"):
        evaluated = list(rows.evaluate(configs, data, should_cancel=lambda: False))
    objective = config["objective"]
    with clock.phase("rows"):
        values = [
            rows.row_values(i, combos[i], e, objective) for i, e in enumerate(evaluated)
        ]
    del evaluated

    tmp = tempfile.TemporaryDirectory(prefix="bench-sweep-phases-")
    url = args.database_url or f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    await asyncio.to_thread(upgrade_to_head, url)
    engine = create_async_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    async with sessions() as session:
        user = User(username=f"bench-{uuid.uuid4().hex[:8]}", password_hash="x")
        session.add(user)
        await session.flush()
        job = Job(user_id=user.id, kind="sweep", status="running", config={})
        session.add(job)
        await session.flush()
        days = dates.astype(np.int64).astype("<i4").tobytes()
        session.add(SweepSummary(sweep_id=job.id, dates=days))
        await session.commit()
    job_id = job.id
    with clock.phase("store"):
        for lo in range(0, len(values), 64):
            async with sessions() as session:
                batch = [{"sweep_id": job_id, **v} for v in values[lo : lo + 64]]
                await repository.insert_rows(session, batch)
                await session.commit()

    def in_db(fn: Callable[[Any], Any]) -> Any:
        async def go() -> Any:
            async with sessions() as session:
                return await fn(session)

        return asyncio.run_coroutine_threadsafe(go(), loop).result()

    loop = asyncio.get_running_loop()

    def complete() -> dict[str, Any]:
        objectives = in_db(lambda s: repository.objectives(s, job_id))
        in_db(
            lambda s: repository.best(
                s, job_id, higher_is_better=objective not in LOWER_IS_BETTER
            )
        )
        t = in_db(lambda s: repository.return_count(s, job_id))
        matrix = np.empty((t, len(objectives)), order="F")
        for lo in range(0, len(objectives), run.RETURNS_BLOCK_ROWS):
            hi = lo + run.RETURNS_BLOCK_ROWS

            async def block(s: Any, lo: int = lo, hi: int = hi) -> Any:
                return await repository.returns_between(s, job_id, lo=lo, hi=hi)

            for index, raw in in_db(block):
                matrix[:, index] = np.frombuffer(raw, dtype="<f8")
        w0, c0 = time.perf_counter(), time.process_time()
        report = run.diagnostics(
            matrix,
            objectives=objectives,
            objective=objective,
            blocks=config["overfitting_blocks"],
        )
        print(
            f"    of which diagnostics {time.perf_counter() - w0:.2f} s wall "
            f"{time.process_time() - c0:.2f} s CPU; verdict: {report['verdict']}"
        )
        return report

    with clock.phase("complete"):
        await asyncio.to_thread(complete)

    async with sessions() as session:
        await session.execute(delete(SweepRow).where(SweepRow.sweep_id == job_id))
        await session.execute(delete(Job).where(Job.id == job_id))
        await session.execute(delete(User).where(User.id == user.id))
        await session.commit()
    await engine.dispose()
    tmp.cleanup()
    job_phases = [p for p in clock.phases if p[0] != "dataset"]
    wall = sum(p[1] for p in job_phases)
    cpu = sum(p[2] for p in job_phases)
    print(
        f"job phases (all but dataset): {wall:.2f} s wall, {cpu:.2f} s CPU; "
        f"load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--years", type=int, default=1)
    p.add_argument("--database-url", default=None)
    asyncio.run(main(p.parse_args()))
