"""S1 through the API in distributed mode on one worker slot, then on two.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_sweep_workers.py \
        [--slots 1 2] [--runs 2] [--redis-db 8]

For each slot count: ``scripts/run-distributed.sh`` on a fresh PostgreSQL database and
a private Redis DB (the Celery worker with ``--concurrency`` = slots: one prefork
child per slot), a pro user, one small warm-up sweep (every child loads the dataset
and its kernels before forking, but the first sweep still builds its caches), then
workload S1 (``scripts/bench_sweep_api.py``'s 880 combinations) ``--runs`` times,
POST → completed, polled every 0.25 s. Prints the wall time of each run and checks
that every run, on every slot count, gave the same best row and the same
overfitting figures (a sweep on one worker and on several gives the same results).
The machine has two cores, which the API, PostgreSQL and Redis share with the
workers, so two slots cannot be twice as fast; the issue asks for faster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queue import (
    Db,
    create_scratch,
    drop_scratch,
    free_port,
    register,
    start_distributed,
    wait_up,
)
from bench_sweep_api import S1

WARM: dict[str, Any] = {
    **S1,
    "name": "warm-up",
    "grid": {"strategy_params.lookback": [63, 126], "rebalancing": ["monthly"]},
}


async def run_sweep(http: httpx.AsyncClient, body: dict[str, Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    created = await http.post("/v1/sweeps", json=body)
    created.raise_for_status()
    sweep_id = created.json()["sweep_id"]
    while True:
        got = (await http.get(f"/v1/sweeps/{sweep_id}")).json()
        if got["status"] in {"completed", "failed", "cancelled"}:
            break
        await asyncio.sleep(0.25)
    wall = time.perf_counter() - t0
    if got["status"] != "completed":
        raise SystemExit(f"sweep ended {got['status']}: {got}")
    return wall, (got["best"], got["overfitting"])


async def one_setup(slots: int, runs: int, redis_db: int) -> tuple[list[float], Any]:
    root = Path(tempfile.mkdtemp(prefix="bench_sweep_workers_"))
    database = f"bench_sweep_{uuid.uuid4().hex[:8]}"
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    broker, pg = create_scratch(database, redis_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_distributed(
        root, port, slots, pg.replace("://", "+asyncpg://", 1), redis_url
    )
    try:
        await wait_up(base)
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            uid, token = await register(http, f"sw_{uuid.uuid4().hex[:10]}")
            Db(None, pg).set_tier(uid, "pro")
            http.headers["Authorization"] = f"Bearer {token}"
            await run_sweep(http, WARM)
            walls, outcome = [], None
            for _ in range(runs):
                wall, outcome = await run_sweep(http, S1)
                walls.append(wall)
                print(f"  {slots} slot(s): S1 POST -> completed {wall:.2f} s")
        return walls, outcome
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        drop_scratch(database, broker)
        shutil.rmtree(root, ignore_errors=True)


async def main_async(args: argparse.Namespace) -> None:
    print(f"load average at start: {os.getloadavg()}")
    results = {}
    for slots in args.slots:
        results[slots] = await one_setup(slots, args.runs, args.redis_db)
    outcomes = {repr(outcome) for _, outcome in results.values()}
    for slots, (walls, _) in results.items():
        median = sorted(walls)[len(walls) // 2]
        print(f"{slots} slot(s): median of {len(walls)} = {median:.2f} s")
    print(f"same best row and overfitting on every slot count: {len(outcomes) == 1}")
    print(f"load average at the end: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--redis-db", type=int, default=8)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
