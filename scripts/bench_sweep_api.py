"""Sweeps through the HTTP API in embedded mode: S1 end to end, the results endpoint
at 5,000 rows, and the server's peak RSS.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python scripts/bench_sweep_api.py
        [--skip-s1] [--rows 5000] [--requests 200] [--big N --big-years Y]
        [--settle SECONDS]

Starts one server process in embedded mode (SQLite in a temporary ``VAR_DIR``, the
Celery worker inside the API process, rate limits off), waits for ``/ready`` (which
in embedded mode answers once the in-process worker's warm-up is done: the first
sweep after it is the "first sweep after a start"), then ``--settle`` seconds more
(default 0), creates an enterprise user and then, timing from the client:

* **S1** (``scripts/bench_sweep.py``'s workload: momentum on the whole bundled stock
  universe, 2014-08-26..2024-08-26, lookback 42..252/21 x top_n 5..100/5 x skip
  {0, 21} x weekly/monthly = 880 combinations): ``POST /v1/sweeps`` to
  ``GET /v1/sweeps/{id}`` answering ``completed`` (polled every ``--poll`` s,
  default 0.05: the polls' own server CPU is inside the CPU figure), so the
  dataset's factor work, the 880 runs, storing the rows and the returns matrix and
  the overfitting diagnostics are all inside. Also the server's CPU seconds over that
  span (user + system, ``psutil``), which a shared machine inflates less than wall.
* **results at ``--rows`` rows**: a sweep of that many combinations on a cheap base
  (6 symbols, one year: the read path is what is measured), then ``--requests``
  ``GET /v1/sweeps/{id}/results`` with sorts by several metrics (both directions)
  and offsets spread over the rows, ``limit=50``; p50/p95/max.
* **peak RSS** of the server process (sampled every 50 ms over the whole run; the
  embedded worker runs inside it), after each phase.
* ``--big N``: one more sweep of N combinations (the enterprise cap is 50,000) over
  ``--big-years`` years of the same 6 symbols, for the RSS at the largest size.

Targets (issue 14): S1 <= 10 s from POST to completed; results p95 <= 50 ms at 5,000
rows; worker RSS <= 1 GB at any allowed size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
USER, PASSWORD = "bench", "bench-password-1"
S1: dict[str, Any] = {
    "name": "S1",
    "base": {
        "strategy_id": 2,
        "start_date": "2014-08-26",
        "end_date": "2024-08-26",
    },
    "grid": {
        "strategy_params.lookback": {"start": 42, "stop": 252, "step": 21},
        "strategy_params.top_n": {"start": 5, "stop": 100, "step": 5},
        "strategy_params.skip": [0, 21],
        "rebalancing": ["weekly", "monthly"],
    },
}
CHEAP_SYMBOLS = ["AAPL", "MSFT", "AMZN", "JPM", "XOM", "JNJ"]


def cheap_sweep(n: int, years: int) -> dict[str, Any]:
    """At least ``n`` combinations (top_n 1..5 x commission steps, x slippage steps
    past 1,000 commission values: a grid key takes at most 1,000) of momentum on 6
    symbols."""
    per = -(-n // 5)  # commission values needed
    grid: dict[str, Any] = {"strategy_params.top_n": [1, 2, 3, 4, 5]}
    if per > 1000:
        grid["slippage"] = [round(i * 1e-6, 6) for i in range(-(-per // 1000))]
        per = 1000
    grid["commission"] = [round(i * 1e-6, 6) for i in range(per)]
    return {
        "name": f"{n} rows",
        "base": {
            "strategy_id": 2,
            "strategy_params": {"lookback": 21, "skip": 0},
            "symbols": CHEAP_SYMBOLS,
            "start_date": f"{2024 - years}-01-02",
            "end_date": "2023-12-29",
        },
        "grid": grid,
    }


class Server:
    """The embedded-mode API process, with an RSS sampler."""

    def __init__(self, var_dir: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "VAR_DIR": str(var_dir),
            "JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
            "RATE_LIMIT_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
        }
        for key in ("DATABASE_URL", "REDIS_URL"):
            self.env.pop(key, None)
        self.port = port
        self.peak_rss = 0
        self._stop = threading.Event()

    def start(self, log: Path) -> None:
        subprocess.run(
            [PYTHON, "-m", "app.cli", "users", "create", "--username", USER,
             "--password", PASSWORD, "--tier", "enterprise", "--exist-ok"],
            cwd=ROOT, env=self.env, check=True, capture_output=True,
        )  # fmt: skip
        self.log = log.open("wb")
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "app.ops.serve", "app.main:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited, see {log}")
            time.sleep(0.2)
        else:
            raise SystemExit(f"server not ready after 180 s, see {log}")
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_rss = max(self.peak_rss, self.ps.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


POLL_SECONDS = 0.05


def run_sweep(
    client: httpx.Client, server: Server, body: dict[str, Any]
) -> tuple[str, float, float, dict[str, Any]]:
    """POST the sweep, poll until terminal: (id, wall s, server CPU s, final body).
    The server CPU includes answering the polls (``--poll``)."""
    cpu0, t0 = server.cpu(), time.perf_counter()
    r = client.post("/v1/sweeps", json=body)
    r.raise_for_status()
    sweep_id = r.json()["sweep_id"]
    while True:
        got = client.get(f"/v1/sweeps/{sweep_id}").json()
        if got["status"] in {"completed", "failed", "cancelled"}:
            break
        time.sleep(POLL_SECONDS)
    wall, cpu = time.perf_counter() - t0, server.cpu() - cpu0
    if got["status"] != "completed":
        raise SystemExit(f"sweep {sweep_id} ended {got['status']}: {got}")
    return sweep_id, wall, cpu, got


def bench_results(
    client: httpx.Client, sweep_id: str, rows: int, requests: int
) -> list[float]:
    sorts = ("-sharpe_ratio", "sharpe_ratio", "-cagr", "max_drawdown", "-psr")
    times = []
    for i in range(requests):
        offset = (i * 997) % max(rows - 50, 1)
        params = {"sort": sorts[i % len(sorts)], "limit": 50, "offset": offset}
        t0 = time.perf_counter()
        r = client.get(f"/v1/sweeps/{sweep_id}/results", params=params)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        assert r.headers["X-Total-Count"] == str(rows), r.headers
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--skip-s1", action="store_true")
    p.add_argument("--s1-runs", type=int, default=1)
    p.add_argument("--rows", type=int, default=5000)
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--big", type=int, default=0)
    p.add_argument("--big-years", type=int, default=1)
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--settle",
        type=float,
        default=0.0,
        help="seconds to wait after /ready before the first sweep",
    )
    p.add_argument(
        "--poll", type=float, default=POLL_SECONDS, help="status poll interval, s"
    )
    args = p.parse_args()
    globals()["POLL_SECONDS"] = args.poll
    print(f"load average at start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-sweep-api-") as tmp:
        server = Server(Path(tmp) / "var", args.port)
        t0 = time.perf_counter()
        server.start(Path(tmp) / "server.log")
        print(f"server ready in {time.perf_counter() - t0:.1f} s, RSS "
              f"{server.ps.memory_info().rss / 2**20:.0f} MB")  # fmt: skip
        try:
            with httpx.Client(base_url=server.url, timeout=600) as client:
                token = client.post(
                    "/v1/auth/login", json={"username": USER, "password": PASSWORD}
                ).json()["access_token"]
                client.headers["Authorization"] = f"Bearer {token}"
                if args.settle:
                    cpu0 = server.cpu()
                    time.sleep(args.settle)
                    print(f"settled {args.settle:.0f} s: server CPU meanwhile "
                          f"{server.cpu() - cpu0:.2f} s")  # fmt: skip
                if not args.skip_s1:
                    for _ in range(args.s1_runs):
                        _, wall, cpu, got = run_sweep(client, server, S1)
                        print(f"S1 {got.get('combinations_done')} combinations: "
                              f"POST -> completed {wall:.2f} s wall, server CPU "
                              f"{cpu:.2f} s; load {os.getloadavg()[0]:.1f}; peak "
                              f"RSS {server.peak_rss / 2**20:.0f} MB")  # fmt: skip
                body = cheap_sweep(args.rows, 1)
                sweep_id, wall, cpu, got = run_sweep(client, server, body)
                peak = server.peak_rss / 2**20
                print(f"{args.rows}-row sweep: {wall:.2f} s wall, server CPU "
                      f"{cpu:.2f} s; peak RSS {peak:.0f} MB")  # fmt: skip
                cpu0 = server.cpu()
                times = bench_results(client, sweep_id, args.rows, args.requests)
                per_request = (server.cpu() - cpu0) / len(times)
                print(f"GET results at {args.rows} rows, {len(times)} requests "
                      f"(limit 50, 5 sorts, offsets spread): p50 "
                      f"{statistics.median(times) * 1e3:.1f} ms, p95 "
                      f"{pct(times, 0.95) * 1e3:.1f} ms, max "
                      f"{max(times) * 1e3:.1f} ms; server CPU per request "
                      f"{per_request * 1e3:.1f} ms; load "
                      f"{os.getloadavg()[0]:.1f}")  # fmt: skip
                if args.big:
                    body = cheap_sweep(args.big, args.big_years)
                    _, wall, cpu, got = run_sweep(client, server, body)
                    print(f"{args.big}-row sweep over {args.big_years} y: {wall:.1f} s "
                          f"wall, server CPU {cpu:.1f} s; peak RSS "
                          f"{server.peak_rss / 2**20:.0f} MB")  # fmt: skip
        finally:
            server.stop()
        print(f"server peak RSS over the whole run: {server.peak_rss / 2**20:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
