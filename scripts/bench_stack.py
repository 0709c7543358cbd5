"""A throwaway distributed stack for benchmarks and load tests.

Fresh PostgreSQL database ``bt_bench_<random>``, a flushed Redis DB (12 by default),
then scripts/run-distributed.sh (migrate, uvicorn with 2 workers, a prefork Celery
worker, beat) with its run and log directories in a temporary folder. Without that
script (``--launcher own``, or if it is missing) the same processes are started here.
Process handling reuses ``ManagedProcess`` from tests/integration/stack.py (own
process group, log file, SIGTERM then SIGKILL of the group).

Benchmark settings (each overridable with ``--env KEY=VALUE``): ENVIRONMENT=production,
JSON logs at INFO, WS_MAX_CONNECTIONS_PER_USER=1000, a high per-IP auth limit (every
load client is 127.0.0.1) and no worker metrics port (it may be taken by another
stack). Users are admins, who are exempt from the per-user limits: rate limiting is
on (its cost is measured) but never rejects. uvicorn's access log stays on, as in
production; ``--env UVICORN_ACCESS_LOG=false`` measures without it.

CLI (run_load.sh uses it)::

    python scripts/bench_stack.py up --state /tmp/stack.json [--chunk-delay 0]
        # starts, writes the state JSON, runs until SIGTERM/SIGINT (or --max-seconds),
        # then stops every process and drops the database
    python scripts/bench_stack.py check --state /tmp/stack.json --accepted ids.txt
        # waits for every accepted job to finish; counts rows per status; exit 1 if
        # a job was lost, duplicated or is still pending/running
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
from celery import Celery
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.integration.stack import (  # noqa: E402 - needs the repo root on sys.path
    ManagedProcess,
    clean_env,
    describe,
    free_port,
)

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_HOST = "postgres@127.0.0.1:5432"
STARTUP_TIMEOUT = 180.0  # cold imports of numpy/pandas/celery on 2 busy cores
STOP_TIMEOUT = 45.0  # run-distributed.sh drains the API (30 s) and warm-stops Celery
RUN_DISTRIBUTED = REPO_ROOT / "scripts/run-distributed.sh"
TERMINAL = frozenset({"completed", "failed", "cancelled"})
BENCH_PASSWORD = "bench-password-123"  # throwaway local accounts
BENCH_ENV = {
    "ENVIRONMENT": "production",
    "LOG_JSON": "true",
    "LOG_LEVEL": "INFO",
    "WS_MAX_CONNECTIONS_PER_USER": "1000",
    # Many locust users log in to one account at once from one address: the abuse
    # limits on logins have their own tests (tests/integration/test_hostile_*.py).
    "RATE_LIMITS": json.dumps(
        {
            "auth_ip": "100000/hour",
            "login_failures": "100000/hour",
            "login_failures_account": "100000/hour",
        }
    ),
    "WORKER_METRICS_PORT": "0",  # the default port may be taken by another stack
    "SWEEP_INTERVAL_SECONDS": "15",
    # Pool per API process: the service default (20 + 10) for measurements; the test
    # suite's load smoke passes a smaller one to stay inside its connection budget.
    "DB_POOL_SIZE": os.environ.get("LOAD_DB_POOL_SIZE", "20"),
    "DB_MAX_OVERFLOW": os.environ.get("LOAD_DB_MAX_OVERFLOW", "10"),
}


@dataclass
class StackConfig:
    api_workers: int = 2
    concurrency: int = 2
    chunk_delay_seconds: float = 0.0
    redis_db: int = 12
    with_beat: bool = True
    launcher: str = "run-distributed" if RUN_DISTRIBUTED.exists() else "own"
    extra_env: dict[str, str] = field(default_factory=dict)


# --- database ---------------------------------------------------------------------
def create_database() -> str:
    name = f"bt_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


# --- the stack --------------------------------------------------------------------
class BenchStack:
    """API (uvicorn --workers N) + Celery worker (+ beat) on a fresh database."""

    def __init__(self, config: StackConfig, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.database = create_database()
        self.sync_database_url = f"postgresql://{PG_HOST}/{self.database}"
        self.redis_url = f"redis://127.0.0.1:6379/{config.redis_db}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        prom_dir = log_dir / "prometheus"
        prom_dir.mkdir(parents=True, exist_ok=True)
        self.env = clean_env(
            {
                **BENCH_ENV,
                "DATABASE_URL": f"postgresql+asyncpg://{PG_HOST}/{self.database}",
                "REDIS_URL": self.redis_url,
                "JWT_SECRET": secrets.token_urlsafe(48),
                "VAR_DIR": str(log_dir / "var"),
                "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
                # Slowed runs go through the test entry points (tests/integration/
                # slow_engine.py): the service itself has no such knob.
                "TEST_ENGINE_CHUNK_DELAY_SECONDS": str(config.chunk_delay_seconds),
                "API_APP": "tests.integration.slow_app:create_app",
                "CELERY_APP": "tests.integration.slow_worker",
                "PYTHON": sys.executable,
                # run-distributed.sh's knobs (it empties RUN_DIR: never a shared one)
                "API_PORT": str(self.port),
                "API_WORKERS": str(config.api_workers),
                "WORKER_CONCURRENCY": str(config.concurrency),
                "RUN_DIR": str(log_dir / "run"),
                "RUN_LOG_DIR": str(log_dir),
                **config.extra_env,
            }
        )
        self.processes: list[ManagedProcess] = []

    def start(self) -> BenchStack:
        redis.Redis.from_url(self.redis_url).flushdb()
        if self.config.launcher == "run-distributed":
            api = worker = self._spawn(
                "run-distributed", ["bash", str(RUN_DISTRIBUTED)]
            )
            node = None  # named by the script; ours is the only worker on this Redis DB
        else:
            api, worker, node = self._start_own()
        self._wait_http_ok(api, f"{self.base_url}/health")
        self._wait_worker(worker, node)
        return self

    def _start_own(self) -> tuple[ManagedProcess, ManagedProcess, str]:
        self._run_once("migrate", ["bash", str(REPO_ROOT / "scripts/prestart.sh")])
        api = self._spawn("api", self._uvicorn_args())
        node = f"bench-{secrets.token_hex(3)}@{socket.gethostname()}"
        worker = self._spawn("worker", self._worker_args(node))
        if self.config.with_beat:
            beat_file = self.log_dir / "beat-schedule"
            self._spawn("beat", _celery("beat", "--loglevel=INFO", "-s", beat_file))
        return api, worker, node

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop(STOP_TIMEOUT)
        with contextlib.suppress(psycopg.Error):
            drop_database(self.database)

    def _uvicorn_args(self) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn",
            "tests.integration.slow_app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.config.api_workers),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip

    def _worker_args(self, node: str) -> list[str]:
        return _celery(
            "worker", "--loglevel=INFO", "--pool=prefork", "-Q", "jobs",
            f"--concurrency={self.config.concurrency}", "-n", node,
            "--without-gossip", "--without-mingle",
        )  # fmt: skip

    def _spawn(self, name: str, args: list[str]) -> ManagedProcess:
        process = ManagedProcess.start(name, args, env=self.env, log_dir=self.log_dir)
        self.processes.append(process)
        return process

    def _run_once(self, name: str, args: list[str]) -> None:
        process = self._spawn(name, args)
        try:
            process.popen.wait(STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.stop()
        if process.popen.returncode != 0:
            raise RuntimeError(f"{name} failed\n{describe([process])}")

    def _wait_http_ok(self, process: ManagedProcess, url: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if not process.alive():
                raise RuntimeError(f"{process.name} exited\n{describe([process])}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{url} not answering\n{describe([process])}")

    def _wait_worker(self, process: ManagedProcess, node: str | None) -> None:
        control = Celery(broker=self.redis_url)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while time.monotonic() < deadline:
                if not process.alive():
                    raise RuntimeError(f"worker exited\n{describe([process])}")
                destination = [node] if node else None
                if control.control.ping(destination=destination, timeout=1.0):
                    return
            raise RuntimeError(f"worker {node} silent\n{describe([process])}")
        finally:
            control.close()

    # --- users ----------------------------------------------------------------------
    def create_user(self, username: str, *, admin: bool = True) -> None:
        """Through the CLI, as an operator would (admins: no per-user limits)."""
        role = ["--admin"] if admin else ["--tier", "enterprise"]
        args = [
            sys.executable, "-m", "app.cli", "users", "create",
            "--username", username, "--password", BENCH_PASSWORD, *role,
        ]  # fmt: skip
        done = subprocess.run(
            args, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True,
            timeout=STARTUP_TIMEOUT, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"users create failed: {done.stdout}{done.stderr}")

    def state(self, username: str) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "database": self.database,
            "database_url": self.sync_database_url,
            "redis_url": self.redis_url,
            "username": username,
            "password": BENCH_PASSWORD,
            "log_dir": str(self.log_dir),
            "pids": {p.name: p.pid for p in self.processes if p.alive()},
        }


def _celery(*args: Any) -> list[str]:
    worker = "tests.integration.slow_worker"  # celery_worker + the test slow-down
    return [sys.executable, "-m", "celery", "-A", worker, *map(str, args)]


@contextlib.contextmanager
def running_stack(
    config: StackConfig, *, username: str = "bench_admin"
) -> Iterator[tuple[BenchStack, str]]:
    """Start a stack with one admin user; everything stopped and dropped on exit."""
    log_dir = Path(tempfile.mkdtemp(prefix="bt_bench_"))
    stack = BenchStack(config, log_dir)
    try:
        stack.start()
        stack.create_user(username)
        print(f"stack: {stack.base_url} db={stack.database} logs={log_dir}", flush=True)
        yield stack, username
    finally:
        stack.stop()


def login(base_url: str, username: str, password: str = BENCH_PASSWORD) -> str:
    response = httpx.post(
        f"{base_url}/v1/auth/login",
        json={"username": username, "password": password},
        timeout=30,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


# --- job accounting -----------------------------------------------------------------
def job_counts(database_url: str, ids: list[str]) -> dict[str, Any]:
    """Rows of the accepted ids per status, rows not accepted, re-executed jobs."""
    with psycopg.connect(database_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute("SELECT id::text, status, attempts FROM jobs").fetchall()
    by_id = {row[0]: row for row in rows}
    accepted = set(ids)
    return {
        "accepted": len(ids),
        "accepted_unique": len(accepted),
        "rows_total": len(rows),
        "per_status": dict(Counter(by_id[i][1] for i in accepted if i in by_id)),
        "lost": sorted(accepted - by_id.keys()),
        "unexpected_rows": sorted(by_id.keys() - accepted),
        "attempts_over_1": sum(1 for i in accepted if i in by_id and by_id[i][2] > 1),
    }


def wait_terminal(database_url: str, ids: list[str], timeout: float) -> dict[str, Any]:
    """Poll until every accepted job is terminal (or ``timeout``); the final counts."""
    deadline = time.monotonic() + timeout
    while True:
        counts = job_counts(database_url, ids)
        active = sum(n for s, n in counts["per_status"].items() if s not in TERMINAL)
        if active == 0 or time.monotonic() > deadline:
            counts["not_terminal"] = active
            return counts
        time.sleep(0.5)


def check_ok(counts: dict[str, Any]) -> bool:
    return (
        not counts["lost"]
        and not counts["unexpected_rows"]
        and counts["accepted"] == counts["accepted_unique"]
        and counts["not_terminal"] == 0
    )


# --- CLI ----------------------------------------------------------------------------
def _cmd_up(args: argparse.Namespace) -> int:
    config = StackConfig(
        api_workers=args.api_workers,
        concurrency=args.concurrency,
        chunk_delay_seconds=args.chunk_delay,
        launcher=args.launcher or StackConfig.launcher,
        extra_env=dict(kv.split("=", 1) for kv in args.env),
    )
    stopping = False

    def _stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with running_stack(config) as (stack, username):
        Path(args.state).write_text(json.dumps(stack.state(username), indent=2))
        deadline = time.monotonic() + args.max_seconds
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
    Path(args.state).unlink(missing_ok=True)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    state = json.loads(Path(args.state).read_text())
    text = Path(args.accepted).read_text() if Path(args.accepted).exists() else ""
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    counts = wait_terminal(state["database_url"], ids, args.timeout)
    ok = check_ok(counts)
    print(f"accepted submissions      {counts['accepted']}")
    print(f"rows per status           {counts['per_status']}")
    print(f"still pending/running     {counts['not_terminal']}")
    print(f"lost (accepted, no row)   {len(counts['lost'])}")
    print(f"rows nobody submitted     {len(counts['unexpected_rows'])}")
    print(f"duplicate accepted ids    {counts['accepted'] - counts['accepted_unique']}")
    print(f"jobs executed >1 time     {counts['attempts_over_1']}")
    print("jobs check: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a stack and keep it running")
    up.add_argument("--state", required=True, help="where to write the state JSON")
    up.add_argument("--api-workers", type=int, default=2)
    up.add_argument("--concurrency", type=int, default=2)
    up.add_argument("--chunk-delay", type=float, default=0.0)
    up.add_argument("--launcher", choices=("run-distributed", "own"))
    up.add_argument("--max-seconds", type=float, default=3600.0)
    up.add_argument("--env", action="append", default=[], help="KEY=VALUE override")
    check = sub.add_parser("check", help="count accepted jobs per status")
    check.add_argument("--state", required=True)
    check.add_argument("--accepted", required=True, help="file of task ids, one a line")
    check.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    return _cmd_up(args) if args.command == "up" else _cmd_check(args)


if __name__ == "__main__":
    sys.exit(main())
