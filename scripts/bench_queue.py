"""Load scenario of the fair job queue (issue 18): many users submit at once.

    .venv/bin/python scripts/bench_queue.py [--mode embedded|distributed]
        [--free-users 20] [--free-jobs 10] [--pro-users 2] [--pro-jobs 100]
        [--workers 2] [--arrival burst|staggered] [--free-gap 1.0]
        [--start-date 2019-01-01] [--end-date 2019-12-31] [--rebalancing monthly]
        [--timeout 1800]

``--mode embedded`` starts one embedded-mode server (SQLite + the in-process Celery
worker with ``--workers`` threads: the worker slots) in a temporary directory;
``--mode distributed`` starts ``scripts/run-distributed.sh`` (2 API processes, one
Celery worker with ``--concurrency`` = ``--workers``, the maintenance worker and
beat) on a fresh PostgreSQL database (created and dropped here, on
``--postgres``) and a private Redis DB index (``--redis-db``, which must be empty;
flushed at the end). It registers the users (pro users get their tier in the
database), then:

* ``--arrival burst``: every user submits all its jobs at once (default: 20 free
  users × 10 and 2 pro users × 100, within the hourly limits of 10 and 100);
* ``--arrival staggered``: the pro users submit all their jobs at once (the deep
  backlog), then the free users arrive one at a time, ``--free-gap`` seconds apart,
  each submitting all its jobs at once: the issue's case of a single user's job
  arriving behind another user's 100 queued jobs.

The job is a momentum run (top 5, the whole universe) from ``--start-date`` to
``--end-date`` (10 years at most) rebalancing ``--rebalancing``; 10 years weekly
is under a second of engine time, a small real backtest.
While the queue drains it samples every user's pending + running jobs from the
database (the per-tier cap: free 2, pro 10). Prints:

* refused: submissions not answered 200 (expected 0: all are within quota);
* lost: jobs not terminal at the end, or missing (expected 0);
* cap violations: samples where a user had more dispatched jobs than the cap;
* the wait (started − created) of each free user's first job, in seconds and in
  job-run times (the median run time of all jobs), median, p90 and max;
* answers by status code (any 5xx is a failure of the service; 599: the connection
  was dropped without an answer, e.g. an API process restarted);
* wall time, CPU time of the server process and of this script, load average.

A benchmark, not a test: nothing is asserted. On a shared machine wall times are
inflated; the waits are reported in job-run units for that reason.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
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
import psycopg
import redis
from prometheus_client.parser import text_string_to_metric_families

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


RATE_LIMITS = json.dumps({"auth_ip": "100000/minute", "api": "100000/minute"})


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
        "RATE_LIMITS": RATE_LIMITS,
    }
    log = (var_dir.parent / "server.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def start_distributed(
    root: Path,
    port: int,
    workers: int,
    database_url: str,
    redis_url: str,
    metrics_port: int,
) -> subprocess.Popen[bytes]:
    """scripts/run-distributed.sh on a fresh database and a private Redis DB."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "JWT_SECRET": uuid.uuid4().hex * 2,
        "LOG_LEVEL": "WARNING",
        "API_PORT": str(port),
        "WORKER_CONCURRENCY": str(workers),
        "WORKER_METRICS_PORT": str(metrics_port),
        "RUN_DIR": str(root / "run"),
        "RUN_LOG_DIR": str(root / "logs"),
        "VAR_DIR": str(root / "var"),
        # a shared PostgreSQL (max_connections 100): a small pool per process
        "DB_POOL_SIZE": "4",
        "DB_MAX_OVERFLOW": "4",
        "RATE_LIMITS": RATE_LIMITS,
    }
    log = (root / "server.log").open("wb")
    return subprocess.Popen(
        ["bash", "scripts/run-distributed.sh"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def create_scratch(database: str, redis_url: str) -> tuple[redis.Redis, str]:
    """A new PostgreSQL database and an empty Redis DB for one distributed run:
    (the broker's client, the database's psycopg URL)."""
    broker = redis.Redis.from_url(redis_url)
    if broker.dbsize():
        raise SystemExit(f"Redis at {redis_url} is not empty: pick another DB index")
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database],
                   check=True)  # fmt: skip
    return broker, f"postgresql://postgres@127.0.0.1:5432/{database}"


def drop_scratch(database: str, broker: redis.Redis) -> None:
    broker.flushdb()
    drop = ["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force"]
    subprocess.run([*drop, "--if-exists", database], check=False)


class Db:
    """Read-only queries on the server's database (SQLite file or PostgreSQL)."""

    def __init__(self, sqlite_path: Path | None, postgres_url: str | None) -> None:
        self.sqlite_path = sqlite_path
        self.postgres_url = postgres_url

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.sqlite_path is not None:
            return db_rows(self.sqlite_path, query, *params)
        assert self.postgres_url is not None
        with psycopg.connect(self.postgres_url, autocommit=True) as conn:
            return conn.execute(query.replace("?", "%s"), params).fetchall()

    def set_tier(self, user_id: str, tier: str) -> None:
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path, timeout=30) as conn:
                conn.execute(
                    "UPDATE users SET tier = ? WHERE id = ?",
                    (tier, uuid.UUID(user_id).hex),
                )
            return
        assert self.postgres_url is not None
        with psycopg.connect(self.postgres_url, autocommit=True) as conn:
            conn.execute(
                "UPDATE users SET tier = %s WHERE id = %s", (tier, uuid.UUID(user_id))
            )


def hex_id(value: Any) -> str:
    return uuid.UUID(str(value)).hex


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


async def warm_up(base: str, job: dict[str, Any]) -> None:
    """One job run to completion first: the worker has loaded the dataset and
    compiled its kernels, so the scenario measures the queue, not the start."""
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        _, token = await register(http, f"warm_{uuid.uuid4().hex[:8]}")
        headers = {"Authorization": f"Bearer {token}"}
        answer = await http.post("/v1/backtest", json=job, headers=headers)
        if answer.status_code != 200:
            raise SystemExit(f"the job is refused: {answer.text}")
        task = answer.json()
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
    db: Db, tiers: dict[str, str], stop: asyncio.Event, out: dict[str, int]
) -> None:
    """Every 0.2 s: each user's dispatched (pending + running) jobs vs its cap."""
    while not stop.is_set():
        try:
            rows = db.rows(
                "SELECT user_id, count(*) FROM jobs WHERE status IN "
                "('pending', 'running') GROUP BY user_id",
            )
        except Exception:  # a busy SQLite file, a connection hiccup: next sample
            rows = []
        out["samples"] += 1
        for user_id, n in rows:
            tier = tiers.get(hex_id(user_id))
            if tier is not None and n > CAPS[tier]:
                out["violations"] += 1
            out["max_free"] = max(out["max_free"], n if tier == "free" else 0)
            out["max_pro"] = max(out["max_pro"], n if tier == "pro" else 0)
        await asyncio.sleep(0.2)


def parse(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def slot_use(
    spans: list[tuple[dt.datetime, dt.datetime | None, dt.datetime | None]],
    slots: int,
) -> dict[str, float]:
    """How busy the worker slots were, from the jobs' (created, started, completed)
    times: busy = the sum of run times; window = first submission to last
    completion; idle with backlog = the slot-seconds a slot stood free while a job
    was waiting (created, not started); hand-over = from a run's end to the next
    claim while jobs were waiting (median and p90, seconds)."""
    events: list[tuple[dt.datetime, int, int]] = []  # (time, running Δ, backlog Δ)
    for created, started, completed in spans:
        events.append((created, 0, +1))
        if started is not None:
            events.append((started, +1, -1))
        if started is not None and completed is not None:
            events.append((completed, -1, 0))
    events.sort(key=lambda e: e[0])
    running = backlog = 0
    idle = 0.0
    for (at, d_run, d_back), nxt in itertools.pairwise(events):
        running, backlog = running + d_run, backlog + d_back
        free = max(0, min(slots - running, backlog))
        idle += free * (nxt[0] - at).total_seconds()
    starts = sorted(s for _, s, _ in spans if s is not None)
    gaps = []
    for _, _, completed in spans:
        if completed is None:
            continue
        waiting = any(
            c <= completed and (s is None or s > completed) for c, s, _ in spans
        )
        later = [s for s in starts if s >= completed]
        if waiting and later:
            gaps.append((later[0] - completed).total_seconds())
    first = min(c for c, _, _ in spans)
    last = max((d for _, _, d in spans if d is not None), default=first)
    window = (last - first).total_seconds()
    busy = sum((d - s).total_seconds() for _, s, d in spans if s and d)
    return {
        "busy": busy,
        "window": window,
        "use": busy / (slots * window) if window > 0 else float("nan"),
        "idle_with_backlog": idle,
        "handover_median": statistics.median(gaps) if gaps else float("nan"),
        "handover_p90": percentile(gaps, 0.9) if gaps else float("nan"),
    }


def worker_task_seconds(port: int) -> tuple[float, float] | None:
    """(sum, count) of the worker's ``backtest_duration_seconds`` (whole task
    bodies: claim, run, save, bookkeeping, the dispatches), from its /metrics."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    total = count = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "backtest_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
    return total, count


def handovers(
    jobs: list[tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]],
) -> dict[str, float]:
    """Where a hand-over's time goes, from (sent, started, completed) times: for
    each run's end, the next claim; "ready" when that job's message was already
    sent at the run's end (the gap is the worker's own: ack, fetch, claim), else
    "late" (the slot waited for the dispatch: its part is sent - end)."""
    starts = sorted(
        ((s, e) for e, s, _ in jobs if s is not None and e is not None),
        key=lambda pair: pair[0],
    )
    ready: list[float] = []
    late: list[float] = []
    for _, _, completed in jobs:
        if completed is None:
            continue
        nxt = next(((s, e) for s, e in starts if s >= completed), None)
        if nxt is None:
            continue
        started, sent = nxt
        if sent <= completed:
            ready.append((started - completed).total_seconds())
        else:
            late.append((sent - completed).total_seconds())
    med = statistics.median
    return {
        "ready": len(ready),
        "ready_gap": med(ready) if ready else float("nan"),
        "late": len(late),
        "late_wait": med(late) if late else float("nan"),
    }


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[round(q * 100) - 1]


async def run(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench_queue_"))
    var_dir = root / "var"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    job = {
        **JOB,
        "start_date": args.start_date,
        "end_date": args.end_date,
        "rebalancing": args.rebalancing,
    }
    database = f"bench_queue_{uuid.uuid4().hex[:8]}"
    metrics_port = free_port()
    task_seconds: tuple[float, float] | None = None
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    if args.mode == "distributed":
        broker, pg = create_scratch(database, redis_url)
        db = Db(None, pg)
        server = start_distributed(
            root,
            port,
            args.workers,
            pg.replace("://", "+asyncpg://", 1),
            redis_url,
            metrics_port,
        )
    else:
        db = Db(var_dir / "backtest.db", None)
        server = start_server(var_dir, port, args.workers)
    try:
        await wait_up(base)
        users: list[tuple[str, str, str, int]] = []  # (id, token, tier, jobs)
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            for tier, count, jobs in (
                ("free", args.free_users, args.free_jobs),
                ("pro", args.pro_users, args.pro_jobs),
            ):
                for _ in range(count):
                    uid, token = await register(http, f"q_{uuid.uuid4().hex[:10]}")
                    users.append((uid, token, tier, jobs))
        for uid, _, tier, _ in users:
            db.set_tier(uid, tier)
        tiers = {hex_id(uid): tier for uid, _, tier, _ in users}
        await warm_up(base, job)
        caps = {"samples": 0, "violations": 0, "max_free": 0, "max_pro": 0}
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_caps(db, tiers, stop, caps))
        started = time.monotonic()
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as http:

            async def submit(headers: dict[str, str]) -> httpx.Response:
                """One submission; a connection the server dropped (an API process
                restarted) is an answer too: 599, counted as refused."""
                try:
                    return await http.post("/v1/backtest", json=job, headers=headers)
                except httpx.TransportError as exc:
                    return httpx.Response(599, text=repr(exc))

            async def submit_all(token: str, n: int) -> list[httpx.Response]:
                headers = {"Authorization": f"Bearer {token}"}
                return list(await asyncio.gather(*(submit(headers) for _ in range(n))))

            if args.arrival == "burst":
                answers = await asyncio.gather(
                    *(submit_all(t, n) for _, t, _, n in users)
                )
            else:
                pro = [(t, n) for _, t, tier, n in users if tier == "pro"]
                answers = list(
                    await asyncio.gather(*(submit_all(t, n) for t, n in pro))
                )
                for _, t, tier, n in users:
                    if tier == "free":
                        await asyncio.sleep(args.free_gap)
                        answers.append(await submit_all(t, n))
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
            open_jobs = db.rows(
                "SELECT count(*) FROM jobs "
                "WHERE status IN ('queued', 'pending', 'running')",
            )[0][0]
            if open_jobs == 0:
                break
            await asyncio.sleep(1)
        drained = time.monotonic() - started
        if args.mode == "distributed":
            task_seconds = worker_task_seconds(metrics_port)
        stop.set()
        await sampler
        rows = {
            hex_id(r[0]): r
            for r in db.rows(
                "SELECT id, status, created_at, started_at, completed_at, user_id, "
                "enqueued_at FROM jobs",
            )
        }
    finally:
        server.terminate()
        server.wait(120)
        if args.mode == "distributed":
            drop_scratch(database, broker)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    statuses = Counter(
        rows[hex_id(i)][1] if hex_id(i) in rows else "missing" for i in ids
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
    # and how many jobs (anyone's) started in that wait: with a fair order, about
    # the users served before this one plus the runs already going
    all_starts = [parse(r[3]) for r in rows.values() if r[3]]
    ahead = []
    for user_hex, tier in tiers.items():
        mine = [r for r in rows.values() if hex_id(r[5]) == user_hex]
        begun = [parse(r[3]) for r in mine if r[3]]
        if tier == "free" and begun:
            first_created = min(parse(r[2]) for r in mine)  # type: ignore[type-var]
            waits.append((min(begun) - first_created).total_seconds())  # type: ignore[type-var, operator]
            ahead.append(
                sum(first_created <= b < min(begun) for b in all_starts)  # type: ignore[operator, type-var]
            )
    total = sum(n for _, _, _, n in users)
    print(
        f"users: {args.free_users} free x {args.free_jobs}, {args.pro_users} pro x "
        f"{args.pro_jobs} = {total} jobs; {args.workers} worker slots ({args.mode}, "
        f"{args.arrival} arrival); job {args.start_date}..{args.end_date} "
        f"{args.rebalancing}"
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
        med, p90 = statistics.median(waits), percentile(waits, 0.9)
        print(
            f"free users' first job wait: median {med:.2f} s = "
            f"{med / run_median:.2f} job-run times; p90 {p90:.2f} s = "
            f"{p90 / run_median:.2f} runs; max {max(waits):.2f} s = "
            f"{max(waits) / run_median:.2f} runs"
        )
        print("  each (runs): " + " ".join(f"{w / run_median:.1f}" for w in waits))
        print(
            f"  jobs started during a free user's first-job wait: median "
            f"{statistics.median(ahead):.1f}, max {max(ahead)} (each: "
            + " ".join(str(n) for n in ahead)
            + ")"
        )
    print(f"wall: submitted in {submitted:.1f} s, drained in {drained:.1f} s")
    mine = [rows[hex_id(i)] for i in ids if hex_id(i) in rows]
    if mine:
        spans = [(parse(r[2]), parse(r[3]), parse(r[4])) for r in mine]
        use = slot_use(spans, args.workers)  # type: ignore[arg-type]
        print(
            f"worker slots: {use['busy']:.1f} s of runs in a {use['window']:.1f} s "
            f"window on {args.workers} slots = {100 * use['use']:.0f} % busy; idle "
            f"while jobs waited: {use['idle_with_backlog']:.1f} slot-s; run end -> "
            f"next claim: median {use['handover_median']:.3f} s, p90 "
            f"{use['handover_p90']:.3f} s"
        )
        if task_seconds is not None and task_seconds[1]:
            in_task, tasks = task_seconds
            outside = args.workers * use["window"] - in_task
            slot = in_task / tasks
            if waits:
                print(
                    f"  free users' first job wait in job-slot times (a task body, "
                    f"{slot:.3f} s): median {statistics.median(waits) / slot:.2f}; "
                    f"p90 {percentile(waits, 0.9) / slot:.2f}; max "
                    f"{max(waits) / slot:.2f}"
                )
            print(
                f"  worker task bodies: {in_task:.1f} s over {tasks:.0f} tasks "
                f"(mean {in_task / tasks:.3f} s: the run + claim, saving, "
                f"bookkeeping); slot time outside them: {outside:.1f} slot-s "
                f"({outside / tasks:.3f} s a task: the broker hand-over and idle)"
            )
        hand = handovers([(parse(r[6]), parse(r[3]), parse(r[4])) for r in mine])
        print(
            f"  next job's message already sent at the run's end: {hand['ready']:.0f}"
            f" (median gap {hand['ready_gap']:.3f} s); sent after it: "
            f"{hand['late']:.0f} (median wait for the send {hand['late_wait']:.3f} s)"
        )
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
    parser.add_argument(
        "--mode", choices=("embedded", "distributed"), default="embedded"
    )
    parser.add_argument("--free-users", type=int, default=20)
    parser.add_argument("--free-jobs", type=int, default=10)
    parser.add_argument("--pro-users", type=int, default=2)
    parser.add_argument("--pro-jobs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--arrival", choices=("burst", "staggered"), default="burst")
    parser.add_argument("--free-gap", type=float, default=1.0)
    parser.add_argument("--start-date", default=JOB["start_date"])
    parser.add_argument("--end-date", default=JOB["end_date"])
    parser.add_argument("--rebalancing", default="monthly")
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep", action="store_true", help="keep the server files")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
