"""Load scenario of the fair job queue (issue 18): many users submit at once.

    .venv/bin/python scripts/bench_queue.py [--free-users 20] [--free-jobs 10]
        [--pro-users 2] [--pro-jobs 100] [--workers 2] [--timeout 1800]

Starts one embedded-mode server (SQLite + the in-process Celery worker with
``--workers`` threads: the worker slots) in a temporary directory, registers the
users (pro users get their tier in the database), then every user submits all its
jobs at once (default: 20 free users × 10 and 2 pro users × 100, within the hourly
limits of 10 and 100). While the queue drains it samples every user's pending +
running jobs from the database (the per-tier cap: free 2, pro 10). Prints:

* refused: submissions not answered 200 (expected 0: all are within quota);
* lost: jobs not terminal at the end, or missing (expected 0);
* cap violations: samples where a user had more dispatched jobs than the cap;
* the wait (started − created) of each free user's first job, in seconds and in
  job-run times (the median run time of all jobs), median and max;
* wall time, CPU time of the server process and of this script, load average.

A benchmark, not a test: nothing is asserted. On a shared machine wall times are
inflated; the waits are reported in job-run units for that reason.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
JOB: dict[str, Any] = {
    "strategy_id": 2,
    "strategy_params": {"top_n": 5},
    "start_date": "2019-01-01",
    "end_date": "2019-12-31",
}
CAPS = {"free": 2, "pro": 10}
TERMINAL = {"completed", "failed", "cancelled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(var_dir: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL"}
        },
        "VAR_DIR": str(var_dir),
        "JWT_SECRET": uuid.uuid4().hex * 2,
        "ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
        "EMBEDDED_WORKER_CONCURRENCY": str(workers),
        # One address registers every user; the limits under study stay default.
        "RATE_LIMITS": json.dumps({"auth_ip": "100000/minute", "api": "100000/minute"}),
    }
    log = (var_dir.parent / "server.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


async def wait_up(base: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(f"{base}/health", timeout=2)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise SystemExit("server did not start")


async def warm_up(base: str) -> None:
    """One job run to completion first: the worker has loaded the dataset and
    compiled its kernels, so the scenario measures the queue, not the start."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        _, token = await register(http, f"warm_{uuid.uuid4().hex[:8]}")
        headers = {"Authorization": f"Bearer {token}"}
        task = (await http.post("/v1/backtest", json=JOB, headers=headers)).json()
        while True:
            body = (
                await http.get(f"/v1/backtest/{task['task_id']}", headers=headers)
            ).json()
            if body["status"] in TERMINAL:
                return
            await asyncio.sleep(0.5)


async def register(http: httpx.AsyncClient, name: str) -> tuple[str, str]:
    body = {"username": name, "password": "correct-horse-battery"}
    created = await http.post("/v1/auth/register", json=body)
    created.raise_for_status()
    token = (await http.post("/v1/auth/login", json=body)).json()["access_token"]
    return created.json()["id"], token


def db_rows(db: Path, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute(query, params).fetchall()


async def sample_caps(
    db: Path, tiers: dict[str, str], stop: asyncio.Event, out: dict[str, int]
) -> None:
    """Every 0.2 s: each user's dispatched (pending + running) jobs vs its cap."""
    while not stop.is_set():
        try:
            rows = db_rows(
                db,
                "SELECT user_id, count(*) FROM jobs WHERE status IN "
                "('pending', 'running') GROUP BY user_id",
            )
        except sqlite3.OperationalError:
            rows = []
        out["samples"] += 1
        for user_hex, n in rows:
            tier = tiers.get(str(user_hex))
            if tier is not None and n > CAPS[tier]:
                out["violations"] += 1
            out["max_free"] = max(out["max_free"], n if tier == "free" else 0)
            out["max_pro"] = max(out["max_pro"], n if tier == "pro" else 0)
        await asyncio.sleep(0.2)


def parse(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


async def run(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_queue_"))
    var_dir = root / "var"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(var_dir, port, args.workers)
    try:
        await wait_up(base)
        db = var_dir / "backtest.db"
        users: list[tuple[str, str, str, int]] = []  # (id, token, tier, jobs)
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for tier, count, jobs in (
                ("free", args.free_users, args.free_jobs),
                ("pro", args.pro_users, args.pro_jobs),
            ):
                for _ in range(count):
                    uid, token = await register(http, f"q_{uuid.uuid4().hex[:10]}")
                    users.append((uid, token, tier, jobs))
        with sqlite3.connect(db, timeout=30) as conn:
            for uid, _, tier, _ in users:
                conn.execute(
                    "UPDATE users SET tier = ? WHERE id = ?", (tier, uuid.UUID(uid).hex)
                )
        tiers = {uuid.UUID(uid).hex: tier for uid, _, tier, _ in users}
        await warm_up(base)
        caps = {"samples": 0, "violations": 0, "max_free": 0, "max_pro": 0}
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_caps(db, tiers, stop, caps))
        started = time.monotonic()
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:

            async def submit_all(token: str, n: int) -> list[httpx.Response]:
                headers = {"Authorization": f"Bearer {token}"}
                return list(
                    await asyncio.gather(
                        *(http.post("/v1/backtest", json=JOB, headers=headers)
                          for _ in range(n))
                    )
                )  # fmt: skip

            answers = await asyncio.gather(*(submit_all(t, n) for _, t, _, n in users))
        submitted = time.monotonic() - started
        codes = Counter(r.status_code for batch in answers for r in batch)
        ids = [
            r.json()["task_id"]
            for batch in answers
            for r in batch
            if r.status_code == 200
        ]
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            open_jobs = db_rows(
                db,
                "SELECT count(*) FROM jobs "
                "WHERE status IN ('queued', 'pending', 'running')",
            )[0][0]
            if open_jobs == 0:
                break
            await asyncio.sleep(1)
        drained = time.monotonic() - started
        stop.set()
        await sampler
        rows = {
            uuid.UUID(hex=r[0]).hex: r
            for r in db_rows(
                db,
                "SELECT id, status, created_at, started_at, completed_at, user_id "
                "FROM jobs",
            )
        }
    finally:
        server.terminate()
        server.wait(60)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    statuses = Counter(
        rows[uuid.UUID(i).hex][1] if uuid.UUID(i).hex in rows else "missing"
        for i in ids
    )
    lost = sum(n for s, n in statuses.items() if s not in TERMINAL)
    runs = [
        (parse(r[4]) - parse(r[3])).total_seconds()  # type: ignore[operator]
        for r in rows.values()
        if r[1] == "completed" and r[3] and r[4]
    ]
    run_median = statistics.median(runs) if runs else float("nan")
    # A free user's first job: the wait from its first submission to the start of
    # the first of its jobs to start.
    waits = []
    for user_hex, tier in tiers.items():
        mine = [r for r in rows.values() if r[5] == user_hex]
        begun = [parse(r[3]) for r in mine if r[3]]
        if tier == "free" and begun:
            first_created = min(parse(r[2]) for r in mine)  # type: ignore[type-var]
            waits.append((min(begun) - first_created).total_seconds())  # type: ignore[type-var, operator]
    total = sum(n for _, _, _, n in users)
    print(
        f"users: {args.free_users} free x {args.free_jobs}, {args.pro_users} pro x "
        f"{args.pro_jobs} = {total} jobs; {args.workers} worker slots (embedded)"
    )
    print(f"answers: {dict(codes)}  refused within quota: {total - codes.get(200, 0)}")
    print(f"final statuses: {dict(statuses)}  lost (not terminal/missing): {lost}")
    print(
        f"cap samples: {caps['samples']}  violations: {caps['violations']}  "
        f"max dispatched per free user: {caps['max_free']} (cap 2), per pro user: "
        f"{caps['max_pro']} (cap 10)"
    )
    print(f"job run time: median {run_median:.2f} s over {len(runs)} completed runs")
    if waits:
        med = statistics.median(waits)
        print(
            f"free users' first job wait: median {med:.2f} s = "
            f"{med / run_median:.2f} job-run times; max {max(waits):.2f} s = "
            f"{max(waits) / run_median:.2f} runs"
        )
    print(f"wall: submitted in {submitted:.1f} s, drained in {drained:.1f} s")
    print(
        f"CPU: server {child.ru_utime + child.ru_stime:.1f} s, this script "
        f"{time.process_time():.1f} s; load average {os.getloadavg()}"
    )
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept: {root}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--free-users", type=int, default=20)
    parser.add_argument("--free-jobs", type=int, default=10)
    parser.add_argument("--pro-users", type=int, default=2)
    parser.add_argument("--pro-jobs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the server files")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
