"""Latency of a completed result's read endpoints in embedded mode: positions,
holdings, exposure, analysis (and the report, for reference).

    .venv/bin/python scripts/bench_results_api.py [--requests 200] [--years 10]

Starts the real app (``uvicorn app.main:create_app --factory``, embedded mode:
SQLite in a temporary ``VAR_DIR``, the in-process worker) on a free port, registers a
user, runs a realistic result through the worker (momentum top 20, monthly, the
bundled S&P 500 universe, SPY benchmark, ``--years`` ending 2019-12-31), then sends
``--requests`` sequential GETs per endpoint from one keep-alive client (after 5 warm
ones) and prints p50 / p95 / max of the wall time per request, with the server
process's CPU time per request (``/proc/<pid>/stat`` utime + stime; on a shared
machine the better estimate of a quiet run) and the load average. Targets (issue 17):
p95 <= 50 ms for positions, holdings and exposure.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct-horse-battery"
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _start(var_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        ENVIRONMENT="test",
        VAR_DIR=var_dir,
        LOG_LEVEL="WARNING",
        RATE_LIMITS='{"auth_ip": "1000/minute", "api": "100000/minute"}',
    )
    cmd = [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory"]
    proc = subprocess.Popen(
        [*cmd, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(Path(var_dir) / "server.log", "wb"),  # noqa: SIM115
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}; see {var_dir}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit("server not healthy within 120 s")


def _completed_result(client: httpx.Client, years: int) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": PASSWORD}
    assert client.post("/v1/auth/register", json=body).status_code == 201
    token = client.post("/v1/auth/login", json=body).json()["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    submit = {
        "strategy_id": 2,
        "strategy_params": {"top_n": 20},
        "rebalancing": "monthly",
        "start_date": f"{2020 - years}-01-01",
        "end_date": "2019-12-31",
        "benchmark": "SPY",
    }
    r = client.post("/v1/backtest", json=submit)
    assert r.status_code == 200, r.text
    task_id = str(r.json()["task_id"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = client.get(f"/v1/backtest/{task_id}").json()["status"]
        if status in {"completed", "failed", "cancelled"}:
            assert status == "completed", status
            return task_id
        time.sleep(0.5)
    raise SystemExit("backtest not finished within 600 s")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--years", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-results-") as var_dir:
        proc, base = _start(var_dir)
        try:
            with httpx.Client(base_url=base, timeout=60) as client:
                task_id = _completed_result(client, args.years)
                _measure(client, proc.pid, task_id, args.requests)
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def _measure(client: httpx.Client, pid: int, task_id: str, n: int) -> None:
    path = f"/v1/backtest/{task_id}"
    positions = client.get(f"{path}/positions", params={"limit": 1}).headers
    total = int(positions["X-Total-Count"])
    dates = [
        r["date"]
        for r in client.get(f"{path}/equity", params={"format": "json"}).json()
    ]
    rng = random.Random(17)
    cases = {
        "positions (first page of 100)": lambda: (f"{path}/positions", {"limit": 100}),
        "positions (sorted by P&L, random page)": lambda: (
            f"{path}/positions",
            {"limit": 100, "sort": "-pnl", "offset": rng.randrange(0, total, 100)},
        ),
        "holdings (random session)": lambda: (
            f"{path}/holdings",
            {"date": rng.choice(dates)},
        ),
        "exposure (default 1,000 points)": lambda: (f"{path}/exposure", {}),
        "analysis": lambda: (f"{path}/analysis", {}),
        "report (reference)": lambda: (f"{path}/report", {}),
    }
    load = os.getloadavg()
    print(
        f"result: {len(dates)} sessions, {total} positions; {n} requests per "
        f"endpoint; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    for label, make in cases.items():
        for _ in range(5):
            url, params = make()
            assert client.get(url, params=params).status_code == 200
        walls = []
        cpu0 = _cpu_seconds(pid)
        for _ in range(n):
            url, params = make()
            t0 = time.perf_counter()
            r = client.get(url, params=params)
            walls.append((time.perf_counter() - t0) * 1e3)
            assert r.status_code == 200, r.text
        cpu = (_cpu_seconds(pid) - cpu0) / n * 1e3
        print(
            f"{label}: p50 {_percentile(walls, 50):.1f} ms, "
            f"p95 {_percentile(walls, 95):.1f} ms, max {max(walls):.1f} ms; "
            f"server cpu {cpu:.1f} ms/request; {len(r.content) / 1024:.0f} KiB"
        )


if __name__ == "__main__":
    main()
