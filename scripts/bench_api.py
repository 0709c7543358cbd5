"""API benchmarks against a running distributed stack (or one started here).

    .venv/bin/python scripts/bench_api.py --start-stack [--duration 30] [--runs 30]
    .venv/bin/python scripts/bench_api.py --url http://127.0.0.1:8000 \
        --username bench --password ...   # an admin (admins skip per-user limits)

Sections (``--only ceiling,get,latency,burst``; default all):

* ceiling: a bare FastAPI JSON route (tiny app in this file, uvicorn, same worker
  count) and the stack's ``/health``: what the framework alone can do here.
* get: ``GET /v1/backtest/{id}`` of a completed job, 64 connections for --duration s:
  wrk (with a Lua script adding the Authorization header) when installed, else an
  httpx asyncio client (which saturates well before the server does).
* latency: submit → terminal state, one job at a time, watched on the WebSocket
  (``--watch poll``: GET every 5 ms): 1 symbol × 3 years and 500 symbols × 3 years.
* burst: 100 submissions at once (``--burst``), by the admin or spread over
  ``--burst-users`` fresh enterprise users; statuses counted afterwards (lost), each
  user's history total compared with its accepted ids (duplicated), wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bench_stack
import httpx
from bench_stack import StackConfig
from websockets.asyncio.client import connect

TERMINAL = bench_stack.TERMINAL
SYMBOLS_CSV = bench_stack.REPO_ROOT / "app/data/bundled/symbols.csv"
START, END = "2021-01-01", "2023-12-31"
WRK_LUA = """\
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer {token}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT %d %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(95), latency:percentile(99), e.connect, e.read, e.write,
    e.status, e.timeout))
end
"""


# --- small helpers shared with bench_ws.py --------------------------------------------
def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered)))) - 1
    return ordered[rank]


def verdict(value: float, limit: float, *, higher_is_better: bool = False) -> str:
    ok = value >= limit if higher_is_better else value <= limit
    return "meets" if ok else "MISSES"


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    cells = [header, *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n## {title}")
    for i, row in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if j else c.ljust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


# --- request bodies -------------------------------------------------------------------
def single_symbol_body() -> dict[str, Any]:
    return {
        "name": "bench 1×3y",
        "strategy_id": 1,
        "symbols": ["AAPL"],
        "start_date": START,
        "end_date": END,
        "rebalancing": "monthly",
    }


def many_symbols_body(count: int = 500) -> dict[str, Any]:
    """``count`` stocks listed for the whole window (earliest listings first)."""
    with SYMBOLS_CSV.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["type"] == "stock"]
    rows = [r for r in rows if r["last_date"] >= "2023-12-29"]
    rows.sort(key=lambda r: (r["first_date"], r["symbol"]))
    symbols = [r["symbol"] for r in rows[:count]]
    return {
        "name": f"bench {len(symbols)}×3y",
        "strategy_id": 1,
        "symbols": symbols,
        "start_date": START,
        "end_date": END,
        "rebalancing": "monthly",
    }


# --- load generators ------------------------------------------------------------------
def run_wrk(
    url: str, *, token: str, connections: int, seconds: float
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(WRK_LUA.replace("{token}", token))
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            "--timeout", "5s", "-s", lua.name, url]  # fmt: skip
    try:
        out = subprocess.run(
            args, capture_output=True, text=True, timeout=seconds + 60, check=True
        ).stdout
    finally:
        Path(lua.name).unlink(missing_ok=True)
    line = next(x for x in out.splitlines() if x.startswith("WRK_RESULT"))
    n, dur_us, p50, p95, p99, *errors = (int(x) for x in line.split()[1:])
    return {
        "tool": "wrk",
        "requests": n,
        "rps": n / (dur_us / 1e6),
        "p50_ms": p50 / 1e3,
        "p95_ms": p95 / 1e3,
        "p99_ms": p99 / 1e3,
        "errors": sum(errors),
    }


async def run_httpx(
    url: str, *, token: str | None, connections: int, seconds: float
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    limits = httpx.Limits(max_connections=connections)
    latencies: list[float] = []
    errors = 0

    async def loop(http: httpx.AsyncClient, deadline: float) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                ok = (await http.get(url)).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - t0) * 1e3)
            errors += not ok

    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=5) as http:
        start = time.perf_counter()
        deadline = start + seconds
        await asyncio.gather(*(loop(http, deadline) for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return {
        "tool": "httpx",
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(latencies, 50),
        "p95_ms": pct(latencies, 95),
        "p99_ms": pct(latencies, 99),
        "errors": errors,
    }


def hammer(url: str, *, token: str | None, connections: int, seconds: float) -> dict:
    if shutil.which("wrk"):
        return run_wrk(url, token=token or "", connections=connections, seconds=seconds)
    return asyncio.run(
        run_httpx(url, token=token, connections=connections, seconds=seconds)
    )


# --- the bare-FastAPI ceiling ---------------------------------------------------------
def create_bare_app() -> Any:
    """``uvicorn bench_api:create_bare_app --factory``: one JSON route, nothing else."""
    from fastapi import FastAPI  # noqa: PLC0415 - only the reference server needs it

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


@contextlib.contextmanager
def bare_server(workers: int) -> Iterator[str]:
    port = bench_stack.free_port()
    args = [sys.executable, "-m", "uvicorn", "bench_api:create_bare_app", "--factory",
            "--app-dir", str(Path(__file__).parent), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log"]  # fmt: skip
    log_dir = Path(tempfile.mkdtemp(prefix="bt_bare_"))
    env = bench_stack.clean_env({})
    server = bench_stack.ManagedProcess.start("bare", args, env=env, log_dir=log_dir)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/ping").status_code == 200:
                    break
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/ping"
    finally:
        server.stop()


# --- sections -------------------------------------------------------------------------
def section_ceiling(ctx: Context) -> list[list[Any]]:
    rows = []
    with bare_server(ctx.api_workers) as url:
        r = hammer(url, token=None, connections=ctx.connections, seconds=ctx.duration)
        rows.append(["bare FastAPI /ping", *_load_cells(r), "(reference)"])
    r = hammer(
        f"{ctx.base_url}/health",
        token=None,
        connections=ctx.connections,
        seconds=ctx.duration,
    )
    rows.append(["service /health", *_load_cells(r), "(reference)"])
    return rows


def section_get(ctx: Context) -> list[list[Any]]:
    url = f"{ctx.base_url}/v1/backtest/{ctx.completed_id}"
    r = hammer(url, token=ctx.token, connections=ctx.connections, seconds=ctx.duration)
    target = f"{verdict(r['rps'], 1500, higher_is_better=True)} ≥1500 req/s, " + (
        f"{verdict(r['p95_ms'], 50)} p95≤50 ms"
    )
    return [["GET /v1/backtest/{id}", *_load_cells(r), target]]


def _load_cells(r: dict[str, Any]) -> list[Any]:
    return [
        r["tool"],
        r["requests"],
        r["rps"],
        r["p50_ms"],
        r["p95_ms"],
        r["p99_ms"],
        r["errors"],
    ]


class Context:
    def __init__(self, args: argparse.Namespace, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url.rstrip("/"), token
        self.ws_base = self.base_url.replace("http://", "ws://", 1)
        self.duration, self.connections = args.duration, args.connections
        self.runs, self.burst, self.watch = args.runs, args.burst, args.watch
        self.burst_users = args.burst_users
        self.api_workers = args.api_workers
        self.completed_id = ""

    def client(self, connections: int = 16) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            limits=httpx.Limits(max_connections=connections),
            timeout=30,
        )


async def submit(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/v1/backtest", json=body)
    if response.status_code != 200:
        raise RuntimeError(f"submit: {response.status_code} {response.text[:300]}")
    task_id: str = response.json()["task_id"]
    return task_id


async def watch_ws(ctx: Context, task_id: str, timeout: float = 120) -> str:
    url = f"{ctx.ws_base}/v1/backtest/{task_id}/progress?token={ctx.token}"
    async with asyncio.timeout(timeout), connect(url, open_timeout=10) as ws:
        async for raw in ws:
            status: str = json.loads(raw)["status"]
            if status in TERMINAL:
                return status
    raise RuntimeError(f"{task_id}: socket closed before a terminal state")


async def watch_poll(
    http: httpx.AsyncClient, task_id: str, *, interval: float = 0.005, timeout=120.0
) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status: str = (await http.get(f"/v1/backtest/{task_id}")).json()["status"]
        if status in TERMINAL:
            return status
        await asyncio.sleep(interval)
    raise RuntimeError(f"{task_id}: not terminal after {timeout} s")


async def timed_run(ctx: Context, http: httpx.AsyncClient, body: dict) -> tuple:
    t0 = time.perf_counter()
    task_id = await submit(http, body)
    if ctx.watch == "ws":
        status = await watch_ws(ctx, task_id)
    else:
        status = await watch_poll(http, task_id)
    return (time.perf_counter() - t0) * 1e3, status, task_id


async def warm_up(ctx: Context) -> None:
    """Each worker process loads the dataset on its first job: not measured."""
    async with ctx.client() as http:
        for _ in range(2):
            ids = [await submit(http, single_symbol_body()) for _ in range(2)]
            ids.append(await submit(http, many_symbols_body()))
            statuses = [await watch_poll(http, i, interval=0.05) for i in ids]
        if statuses[0] != "completed":
            raise RuntimeError(f"warm-up job ended {statuses[0]}; see the worker log")
        ctx.completed_id = ids[0]


async def latency_rows(ctx: Context) -> list[list[Any]]:
    cases = [
        ("1 symbol × 3y", single_symbol_body(), 150.0),
        ("500 symbols × 3y monthly", many_symbols_body(), 500.0),
    ]
    rows = []
    async with ctx.client() as http:
        for label, body, target in cases:
            times, statuses = [], Counter[str]()
            for _ in range(ctx.runs):
                ms, status, _ = await timed_run(ctx, http, body)
                times.append(ms)
                statuses[status] += 1
            median = pct(times, 50)
            rows.append(
                [
                    label,
                    ctx.watch,
                    ctx.runs,
                    median,
                    pct(times, 95),
                    max(times),
                    dict(statuses),
                    f"{verdict(median, target)} median≤{target:.0f} ms",
                ]
            )
    return rows


async def burst_users(ctx: Context, http: httpx.AsyncClient) -> list[str]:
    """Tokens of ``--burst-users`` submitters: the admin alone, or that many fresh
    enterprise users (registered through the API, promoted by the admin): real
    per-user limits on the path (1,000/hour, 50 active each), none exceeded."""
    if ctx.burst_users <= 1:
        return [ctx.token]
    prefix = f"burst_{int(time.time())}"

    async def one(n: int) -> str:
        creds = {"username": f"{prefix}_{n}", "password": bench_stack.BENCH_PASSWORD}
        created = await http.post("/v1/auth/register", json=creds)
        created.raise_for_status()
        promoted = await http.patch(
            f"/v1/admin/users/{created.json()['id']}", json={"tier": "enterprise"}
        )
        promoted.raise_for_status()
        login = await http.post("/v1/auth/login", json=creds)
        login.raise_for_status()
        token: str = login.json()["access_token"]
        return token

    return list(await asyncio.gather(*(one(n) for n in range(ctx.burst_users))))


async def burst_rows(ctx: Context) -> list[list[Any]]:
    async with ctx.client(connections=ctx.burst) as http:
        tokens = await burst_users(ctx, http)

        async def submit_as(n: int) -> str:
            headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
            response = await http.post(
                "/v1/backtest", json=single_symbol_body(), headers=headers
            )
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code} {response.text[:300]}")
            task_id: str = response.json()["task_id"]
            return task_id

        start = time.perf_counter()
        results = await asyncio.gather(
            *(submit_as(n) for n in range(ctx.burst)), return_exceptions=True
        )
        ids = [r for r in results if isinstance(r, str)]
        rejected = len(results) - len(ids)
        final = await wait_all(http, ids, timeout=300)
        wall = time.perf_counter() - start
        # Duplicates: every submitter's history must hold exactly its accepted jobs.
        rows_seen = 0
        for token in tokens if len(tokens) > 1 else []:
            listed = await http.get(
                "/v1/backtest", params={"limit": 1},
                headers={"Authorization": f"Bearer {token}"},
            )  # fmt: skip
            rows_seen += int(listed.headers["X-Total-Count"])
    duplicated = (len(ids) - len(set(ids))) + max(0, rows_seen - len(ids))
    counts = Counter(final.values())
    lost = len(ids) - sum(n for s, n in counts.items() if s in TERMINAL)
    ok = (
        "meets"
        if lost == 0 and duplicated == 0 and counts["completed"] == ctx.burst
        else "MISSES"
    )
    return [
        [
            ctx.burst,
            len(tokens),
            len(ids),
            rejected,
            dict(counts),
            lost,
            duplicated,
            wall,
            f"{ok} all completed, none lost or duplicated",
        ]
    ]


async def wait_all(
    http: httpx.AsyncClient, ids: list[str], *, timeout: float
) -> dict[str, str]:
    final = dict.fromkeys(ids, "unknown")
    deadline = time.monotonic() + timeout
    todo = list(ids)
    while todo and time.monotonic() < deadline:
        bodies = await asyncio.gather(*(http.get(f"/v1/backtest/{i}") for i in todo))
        for task_id, response in zip(todo, bodies, strict=True):
            final[task_id] = response.json().get(
                "status", f"http {response.status_code}"
            )
        todo = [i for i in todo if final[i] not in TERMINAL]
        await asyncio.sleep(0.05)
    return final


# --- main -----------------------------------------------------------------------------
SECTIONS = ("ceiling", "get", "latency", "burst")


def run_sections(ctx: Context, only: set[str]) -> dict[str, Any]:
    load_header = [
        "target",
        "client",
        "requests",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "vs target",
    ]
    asyncio.run(warm_up(ctx))
    results: dict[str, Any] = {}
    load_rows = []
    if "ceiling" in only:
        load_rows += section_ceiling(ctx)
    if "get" in only:
        load_rows += section_get(ctx)
    if load_rows:
        print_table(
            f"Throughput, {ctx.connections} connections, {ctx.duration:.0f} s",
            load_header,
            load_rows,
        )
        results["throughput"] = load_rows
    if "latency" in only:
        rows = asyncio.run(latency_rows(ctx))
        print_table(
            "Submit → terminal state, one job at a time",
            [
                "backtest",
                "watch",
                "runs",
                "median ms",
                "p95 ms",
                "max ms",
                "statuses",
                "vs target",
            ],
            rows,
        )
        results["latency"] = rows
    if "burst" in only:
        rows = asyncio.run(burst_rows(ctx))
        print_table(
            "Burst: submitted at once",
            [
                "submitted",
                "users",
                "accepted",
                "rejected",
                "final statuses",
                "lost",
                "duplicated",
                "wall s",
                "vs target",
            ],
            rows,
        )
        results["burst"] = rows
    return results


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="base URL of a running stack")
    where.add_argument("--start-stack", action="store_true")
    parser.add_argument("--username", default="bench_admin")
    parser.add_argument("--password", default=bench_stack.BENCH_PASSWORD)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds/load")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=30, help="latency runs per case")
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument(
        "--redis-db", type=int, default=12, help="--start-stack: Redis DB (flushed)"
    )
    parser.add_argument(
        "--burst-users", type=int, default=1, help="submitters (>1: fresh users)"
    )
    parser.add_argument("--watch", choices=("ws", "poll"), default="ws")
    parser.add_argument("--api-workers", type=int, default=2, help="also for ceiling")
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--json", help="also write the result rows here")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    only = set(args.only.split(","))
    with contextlib.ExitStack() as stack:
        if args.start_stack:
            config = StackConfig(api_workers=args.api_workers, redis_db=args.redis_db)
            live, username = stack.enter_context(bench_stack.running_stack(config))
            base_url, password = live.base_url, bench_stack.BENCH_PASSWORD
        else:
            base_url, username, password = args.url, args.username, args.password
        token = bench_stack.login(base_url, username, password)
        print(f"wrk: {shutil.which('wrk') or 'not installed, using httpx'}")
        results = run_sections(Context(args, base_url, token), only)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
