"""The API process of distributed mode: cold start, RSS after start and after 1,000
mixed requests (issue 18, "A lean API process"); also the worker's peak RSS during
the largest allowed backtest.

    .venv/bin/python scripts/bench_api_process.py [--requests 1000] [--json out.json]
        [--app-dir DIR] [--no-large-job]

A fresh PostgreSQL database ``bt_bench_<random>`` and Redis DB 9 (flushed), the
migrations, one Celery worker (prefork, concurrency 1, queue ``jobs``: it completes
the jobs whose results are read), then ONE API process (``python -m app.ops.serve
app.main:create_app --factory --workers 1``: uvicorn serves in that process, so its
pid is the API process measured) with the distributed settings (Postgres, Redis,
``ENVIRONMENT=production``, no embedded worker).

* cold start: from spawning the API process to the first 200 of ``/health`` (wall),
  and the CPU time that process used by then (user + system, from /proc). The
  bytecode of the served code and of the interpreter's site-packages is compiled
  first (``compileall``, a no-op when up to date), as the Docker image ships it:
  with ``PYTHONDONTWRITEBYTECODE`` set nothing writes it at import, and compiling
  every module from source at each start would be measured instead;
* RSS after start: right after that first 200;
* RSS after N mixed requests, sent one at a time by one admin user (exempt from the
  per-user limits) in a fixed cycle: ``/v1/symbols``, ``/v1/datasets``, a dataset's
  coverage, ``/v1/strategies``, valid and invalid submissions (unknown symbol, dates
  outside the data, unknown dataset), job status, history, a completed job's chart
  and trades, an unknown job id (404); and the peak sampled every 0.1 s;
* the worker's peak memory (PSS of main process + its child summed, and the largest
  single RSS, sampled every 0.2 s) while it
  runs the largest allowed backtest (every stock, the last 10 years of the data,
  the longest range a request may span, daily rebalancing, momentum top 50,
  sp500_pit); ``--no-large-job`` skips it.

``--app-dir`` serves the API from another checkout (e.g. an ``git archive`` of an
older commit) to measure "before": the worker always runs from this checkout.
Everything is stopped and the database dropped at the end. Prints a JSON summary.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from scripts.bench_stack import (  # noqa: E402 - needs the repo root on sys.path
    BENCH_ENV,
    BENCH_PASSWORD,
    PG_HOST,
    create_database,
    drop_database,
)
from tests.integration.stack import (  # noqa: E402
    ManagedProcess,
    clean_env,
    describe,
    free_port,
)

REDIS_DB = 9  # bench_stack uses 12, the tests 10, 11, 13, 14
STARTUP_TIMEOUT = 180.0
MB = 1024 * 1024
SMALL_JOB = {
    "name": "bench small",
    "symbols": ["AAPL", "MSFT", "JNJ", "XOM", "KO"],
    "start_date": "2018-01-01",
    "end_date": "2018-12-31",
    "benchmark": "SPY",
}
LARGE_JOB = {
    "name": "bench largest",
    "strategy_id": 2,
    "strategy_params": {"top_n": 50},
    "rebalancing": "daily",
    "start_date": "2014-08-27",  # the longest range allowed: 10 years
    "end_date": "2024-08-26",
    "universe": "sp500_pit",
    "benchmark": "SPY",
}


class Sampler:
    """Peak memory of a process (and its children), sampled in a thread: RSS of the
    process alone, or with ``children`` the sum of PSS (proportional set size: a
    page shared by the prefork parent and its child counts half in each, so the sum
    is the memory the worker really uses) and the largest single RSS."""

    def __init__(self, pid: int, interval: float, *, children: bool) -> None:
        self.pid, self.interval, self.children = pid, interval, children
        self.peak = 0
        self.peak_single_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def rss(self) -> int:
        root = psutil.Process(self.pid)
        if not self.children:
            return int(root.memory_info().rss)
        total = 0
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                info = p.memory_full_info()
                total += info.pss
                self.peak_single_rss = max(self.peak_single_rss, info.rss)
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.NoSuchProcess):
                self.peak = max(self.peak, self.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def wait_health(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"API exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.02)
    raise RuntimeError(f"{url} not answering:\n{log.read_text()[-3000:]}")


def wait_worker(worker: ManagedProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"worker exited\n{describe([worker])}")
        if "ready." in worker.log_text():
            return
        time.sleep(0.2)
    raise RuntimeError(f"worker not ready\n{describe([worker])}")


def wait_job(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/backtest/{job_id}").json()
        if body["status"] in {"completed", "failed", "cancelled"}:
            return body
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} not finished after {timeout} s")


def request_cycle(completed: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """One round of the mix (20 requests); the run repeats it."""
    bad_symbol = {**SMALL_JOB, "symbols": ["AAPL", "NOPE"]}
    bad_dates = {**SMALL_JOB, "start_date": "1990-01-01", "end_date": "1990-06-30"}
    bad_dataset = {**SMALL_JOB, "dataset": "nope"}
    unknown = "00000000-0000-4000-8000-000000000000"
    return [
        ("GET", "/v1/symbols", None),
        ("GET", f"/v1/backtest/{completed}", None),
        ("POST", "/v1/backtest", SMALL_JOB),
        ("GET", "/v1/backtest/history?limit=20", None),
        ("GET", f"/v1/backtest/{completed}/chart?max_points=500", None),
        ("POST", "/v1/backtest", bad_symbol),
        ("GET", "/v1/datasets", None),
        ("GET", f"/v1/backtest/{completed}/trades?limit=50", None),
        ("GET", "/v1/datasets/sp500/coverage", None),
        ("POST", "/v1/backtest", bad_dates),
        ("GET", "/v1/strategies", None),
        ("GET", "/v1/symbols", None),
        ("GET", f"/v1/backtest/{unknown}", None),
        ("POST", "/v1/backtest", bad_dataset),
        ("GET", "/v1/backtest/history?status=completed", None),
        ("GET", f"/v1/backtest/{completed}", None),
        ("GET", "/v1/symbols?dataset=nope", None),
        ("GET", "/v1/strategies/screening", None),
        ("GET", f"/v1/backtest/{completed}/chart?max_points=200", None),
        ("GET", "/v1/datasets/nope/coverage", None),
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    app_dir = Path(args.app_dir).resolve() if args.app_dir else REPO_ROOT
    log_dir = Path(tempfile.mkdtemp(prefix="bt_bench_api_"))
    database = create_database()
    redis_url = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        {
            **BENCH_ENV,
            "DATABASE_URL": f"postgresql+asyncpg://{PG_HOST}/{database}",
            "REDIS_URL": redis_url,
            "JWT_SECRET": secrets.token_urlsafe(48),
            "VAR_DIR": str(log_dir / "var"),
            "AUTO_MIGRATE": "false",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "5",
        }
    )
    processes: list[ManagedProcess] = []
    api: subprocess.Popen[bytes] | None = None
    subprocess.run(
        [
            sys.executable, "-m", "compileall", "-q", "-j", "0",
            str(app_dir / "app"), sysconfig.get_paths()["purelib"],
        ],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        migrate = ManagedProcess.start(
            "migrate",
            ["bash", str(REPO_ROOT / "scripts/prestart.sh")],
            env={**env, "PYTHON": sys.executable},
            log_dir=log_dir,
        )
        if migrate.popen.wait(STARTUP_TIMEOUT) != 0:
            raise RuntimeError(describe([migrate]))
        subprocess.run(
            [
                sys.executable, "-m", "app.cli", "users", "create",
                "--username", "bench_admin", "--password", BENCH_PASSWORD, "--admin",
            ],
            cwd=REPO_ROOT, env=env, check=True, capture_output=True,
        )  # fmt: skip
        worker = ManagedProcess.start(
            "worker",
            [
                sys.executable, "-m", "celery", "-A", "celery_worker", "worker",
                "--loglevel=INFO", "--pool=prefork", "-Q", "jobs", "--concurrency=1",
                "-n", f"bench-api-{secrets.token_hex(3)}@%h",
                "--without-gossip", "--without-mingle",
            ],
            env=env, log_dir=log_dir,
        )  # fmt: skip
        processes.append(worker)
        wait_worker(worker)
        load_before = os.getloadavg()
        api_log = log_dir / "api.log"
        started = time.perf_counter()
        with api_log.open("wb") as fh:
            api = subprocess.Popen(
                [
                    sys.executable, "-m", "app.ops.serve", "app.main:create_app",
                    "--factory", "--host", "127.0.0.1", "--port", str(port),
                    "--workers", "1", "--log-level", "warning", "--no-access-log",
                ],
                cwd=app_dir,
                env={**env, "PYTHONPATH": str(app_dir)},
                stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        wait_health(api, f"{base}/health", api_log)
        cold_wall = time.perf_counter() - started
        cold_cpu = cpu_seconds(api.pid)
        rss_start = psutil.Process(api.pid).memory_info().rss
        result: dict[str, Any] = {
            "app_dir": str(app_dir),
            "cold_start_wall_s": round(cold_wall, 2),
            "cold_start_cpu_s": round(cold_cpu, 2),
            "rss_after_start_mb": round(rss_start / MB, 1),
            "loadavg_at_start": [round(x, 2) for x in load_before],
        }
        with httpx.Client(base_url=base, timeout=60) as client:
            login = client.post(
                "/v1/auth/login",
                json={"username": "bench_admin", "password": BENCH_PASSWORD},
            )
            login.raise_for_status()
            client.headers["authorization"] = f"Bearer {login.json()['access_token']}"
            first = client.post("/v1/backtest", json=SMALL_JOB)
            first.raise_for_status()
            completed = first.json()["task_id"]
            if wait_job(client, completed, 300)["status"] != "completed":
                raise RuntimeError("the first backtest did not complete")
            codes: Counter[int] = Counter()
            cycle = itertools.cycle(request_cycle(completed))
            cpu0, t0 = cpu_seconds(api.pid), time.perf_counter()
            with Sampler(api.pid, 0.1, children=False) as sampler:
                for _ in range(args.requests):
                    method, path, body = next(cycle)
                    response = client.request(method, path, json=body)
                    codes[response.status_code] += 1
            result.update(
                requests=args.requests,
                requests_wall_s=round(time.perf_counter() - t0, 2),
                requests_api_cpu_s=round(cpu_seconds(api.pid) - cpu0, 2),
                status_codes=dict(sorted(codes.items())),
                rss_after_requests_mb=round(
                    psutil.Process(api.pid).memory_info().rss / MB, 1
                ),
                rss_peak_during_requests_mb=round(sampler.peak / MB, 1),
            )
            if not args.no_large_job:
                result["worker"] = large_job(client, worker)
        result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        return result
    finally:
        if api is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(api.pid, 15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                api.wait(30)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(api.pid, 9)
        for process in processes:
            process.stop(45)
        with contextlib.suppress(Exception):
            drop_database(database)
        redis.Redis.from_url(redis_url).flushdb()


def large_job(client: httpx.Client, worker: ManagedProcess) -> dict[str, Any]:
    """Wait for the queue to drain, then run the largest allowed job alone."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        page = client.get("/v1/backtest/history?status=pending&limit=1")
        queued = client.get("/v1/backtest/history?status=queued&limit=1")
        running = client.get("/v1/backtest/history?status=running&limit=1")
        if not any(r.json() for r in (page, queued, running)):
            break
        time.sleep(1)
    idle = Sampler(worker.pid, 0.2, children=True).rss()
    with Sampler(worker.pid, 0.2, children=True) as sampler:
        t0 = time.perf_counter()
        response = client.post("/v1/backtest", json=LARGE_JOB)
        if response.status_code != 200:
            raise RuntimeError(f"largest job refused: {response.text}")
        body = wait_job(client, response.json()["task_id"], 900)
        elapsed = time.perf_counter() - t0
    return {
        "largest_job_status": body["status"],
        "largest_job_wall_s": round(elapsed, 1),
        "worker_pss_idle_mb": round(idle / MB, 1),
        "worker_pss_peak_mb": round(sampler.peak / MB, 1),
        "worker_largest_process_rss_peak_mb": round(sampler.peak_single_rss / MB, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--app-dir", default=None)
    parser.add_argument("--no-large-job", action="store_true")
    parser.add_argument("--json", default=None, help="also write the summary here")
    args = parser.parse_args()
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
