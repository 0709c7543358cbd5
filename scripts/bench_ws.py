"""WebSocket progress benchmark: many watchers of running backtests.

    .venv/bin/python scripts/bench_ws.py --start-stack [--watchers 200] [--rounds 100]
    .venv/bin/python scripts/bench_ws.py --url http://127.0.0.1:8000 --username U \
        --password P     # that stack's worker needs the test slow-down (2 s/chunk,
                         # tests/integration/slow_engine.py)
                         # and WS_MAX_CONNECTIONS_PER_USER ≥ --watchers

1. Submits --jobs backtests that run slowly (the stack started here sets
   TEST_ENGINE_CHUNK_DELAY_SECONDS=2, tests/integration/slow_engine.py: ~100 s per
   job; the jobs not yet started stay pending,
   which is also a live, non-terminal socket).
2. --client-procs processes open --watchers sockets in total (job i % jobs), at most
   --connect-concurrency handshakes in flight per process, and time the handshake and
   the first frame (the server sends the stored state at once).
3. This process publishes --rounds synthetic progress messages to every job's Redis
   channel ``backtest:{id}:progress`` (one round every --interval s), each stamped with
   ``bench_ts_ns`` (wall clock; same host, so comparable across processes). The API
   relays JSON as is; clients compute publish→client latency on receipt.
4. Cancels the jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import sys
import time
from queue import Empty
from typing import Any

import bench_stack
import httpx
import redis
import redis.asyncio as aioredis
from bench_api import pct, print_table, single_symbol_body, verdict
from bench_stack import StackConfig
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

CHUNK_DELAY = 2.0  # ~50 chunks per run: ~100 s per job, far longer than a measurement


# --- client processes -----------------------------------------------------------------
async def _watch(
    url: str, gate: asyncio.Semaphore, stats: dict[str, list], expect: int, stop: float
) -> None:
    try:
        async with gate:  # the handshake and the first frame, timed without queueing
            t0 = time.perf_counter()
            ws = await connect(url, open_timeout=30, max_queue=None)
            t1 = time.perf_counter()
            first = await asyncio.wait_for(ws.recv(), timeout=30)
            t2 = time.perf_counter()
    except (OSError, TimeoutError, WebSocketException) as exc:
        stats["connect_errors"].append(repr(exc)[:200])
        return
    stats["handshake_ms"].append((t1 - t0) * 1e3)
    stats["first_ms"].append((t2 - t1) * 1e3)
    stats["total_ms"].append((t2 - t0) * 1e3)
    stats["ready"].append(1)
    if json.loads(first)["status"] in bench_stack.TERMINAL:
        stats["closed_early"].append(1)
        await ws.close()
        return
    await _receive(ws, stats, expect, stop)


async def _receive(ws: Any, stats: dict[str, list], expect: int, stop: float) -> None:
    seen = 0
    try:
        while seen < expect and time.monotonic() < stop:
            raw = await asyncio.wait_for(
                ws.recv(), timeout=max(0.1, stop - time.monotonic())
            )
            now = time.time_ns()
            message = json.loads(raw)
            if "bench_ts_ns" in message:
                stats["latency_ms"].append((now - message["bench_ts_ns"]) / 1e6)
                seen += 1
            elif message.get("status") in bench_stack.TERMINAL:
                stats["closed_early"].append(1)
                return
    except (TimeoutError, OSError, WebSocketException) as exc:
        stats["receive_errors"].append(repr(exc)[:200])
    finally:
        await ws.close()


async def _client_main(urls: list[str], options: dict[str, Any], ready: Any) -> dict:
    keys = (
        "handshake_ms",
        "first_ms",
        "total_ms",
        "latency_ms",
        "connect_errors",
        "receive_errors",
        "closed_early",
        "ready",
        "floor_ms",
    )
    stats: dict[str, list] = {k: [] for k in keys}
    gate = asyncio.Semaphore(options["connect_concurrency"])
    stop = time.monotonic() + options["max_seconds"]
    tasks = [
        asyncio.create_task(_watch(url, gate, stats, options["rounds"], stop))
        for url in urls
    ]
    if channels := options["channels"]:  # subscribed before this process is ready
        redis_client = aioredis.Redis.from_url(options["redis_url"])
        pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(*channels)
        expect = options["rounds"] * len(channels)
        floor = _redis_floor(pubsub, expect, stats["floor_ms"], stop)
        tasks.append(asyncio.create_task(floor))
    deadline = time.monotonic() + 120
    while len(stats["ready"]) + len(stats["connect_errors"]) < len(urls):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    ready.put(len(stats["ready"]))
    await asyncio.gather(*tasks)
    return stats


async def _redis_floor(pubsub: Any, expect: int, out: list[float], stop: float) -> None:
    """The same messages straight from Redis in this process: the latency floor of
    Redis plus this client, without the API in between."""
    while len(out) < expect and time.monotonic() < stop:
        raw = await pubsub.get_message(timeout=0.5)
        message = json.loads(raw["data"]) if raw is not None else {}
        if "bench_ts_ns" in message:  # not the running jobs' own progress
            out.append((time.time_ns() - message["bench_ts_ns"]) / 1e6)
    await pubsub.aclose()


def client_process(
    urls: list[str], options: dict[str, Any], ready: Any, out: Any
) -> None:
    out.put(asyncio.run(_client_main(urls, options, ready)))


# --- orchestration --------------------------------------------------------------------
def submit_jobs(base_url: str, token: str, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    body = {**single_symbol_body(), "rebalancing": "daily", "name": "bench ws"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        responses = [http.post("/v1/backtest", json=body) for _ in range(count)]
    bad = [r for r in responses if r.status_code != 200]
    if bad:
        raise RuntimeError(f"submit: {bad[0].status_code} {bad[0].text[:300]}")
    return [r.json()["task_id"] for r in responses]


def cancel_jobs(base_url: str, token: str, ids: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as http:
        for task_id in ids:
            with contextlib.suppress(httpx.HTTPError):
                http.delete(f"/v1/backtest/{task_id}")


def publish_rounds(redis_url: str, ids: list[str], rounds: int, interval: float) -> int:
    client = redis.Redis.from_url(redis_url)
    sent = 0
    next_round = time.perf_counter()
    for seq in range(rounds):
        for task_id in ids:
            message = {
                "status": "running",
                "progress": 1.0,
                "current_date": None,
                "eta_seconds": None,
                "trades_executed": 0,
                "message": None,
                "bench_seq": seq,
                "bench_ts_ns": time.time_ns(),
            }
            client.publish(f"backtest:{task_id}:progress", json.dumps(message))
            sent += 1
        next_round += interval
        time.sleep(max(0.0, next_round - time.perf_counter()))
    client.close()
    return sent


def start_clients(
    urls: list[str], channels: list[str], redis_url: str, args: argparse.Namespace
) -> tuple[list, Any, Any]:
    """``--client-procs`` processes; the first also reads the channels from Redis."""
    context = mp.get_context("spawn")
    ready, out = context.Queue(), context.Queue()
    options = {
        "connect_concurrency": args.connect_concurrency,
        "rounds": args.rounds,
        "max_seconds": 150 + args.rounds * args.interval,
        "redis_url": redis_url,
    }
    procs = []
    for i in range(args.client_procs):
        part = urls[i :: args.client_procs]
        mine = {**options, "channels": [] if i else channels}
        proc = context.Process(target=client_process, args=(part, mine, ready, out))
        proc.start()
        procs.append(proc)
    return procs, ready, out


def run(args: argparse.Namespace, base_url: str, redis_url: str, token: str) -> dict:
    ids = submit_jobs(base_url, token, args.jobs)
    ws_base = base_url.replace("http://", "ws://", 1)
    urls = [
        f"{ws_base}/v1/backtest/{ids[i % len(ids)]}/progress?token={token}"
        for i in range(args.watchers)
    ]
    channels = [f"backtest:{task_id}:progress" for task_id in ids]
    procs: list = []
    try:
        procs, ready, out = start_clients(urls, channels, redis_url, args)
        connected = sum(_collect(ready, procs, timeout=180))
        started = time.perf_counter()
        sent = publish_rounds(redis_url, ids, args.rounds, args.interval)
        publish_s = time.perf_counter() - started
        parts = _collect(out, procs, timeout=args.rounds * args.interval + 180)
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():  # only after a failure: ours, stopped by handle
                proc.terminate()
        cancel_jobs(base_url, token, ids)
    merged = {k: [v for part in parts for v in part[k]] for k in parts[0]}
    merged.update(connected=connected, sent=sent, publish_s=publish_s)
    return merged


def _collect(queue: Any, procs: list, *, timeout: float) -> list:
    """One item per client process; fails fast if one of them died."""
    items: list = []
    deadline = time.monotonic() + timeout
    while len(items) < len(procs):
        try:
            items.append(queue.get(timeout=1))
        except Empty:
            if time.monotonic() > deadline or any(p.exitcode for p in procs):
                raise RuntimeError("a client process failed or hung") from None
    return items


def report(stats: dict[str, Any], args: argparse.Namespace) -> None:
    print_table(
        f"Connect: {args.watchers} watchers, {args.client_procs} client processes, "
        f"≤{args.connect_concurrency} handshakes in flight each",
        ["measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "vs target"],
        [
            _row("handshake", stats["handshake_ms"], None),
            _row("first frame after open", stats["first_ms"], 30.0, key=95),
            _row("connect → first frame", stats["total_ms"], None),
        ],
    )
    expected = stats["connected"] * args.rounds
    print_table(
        f"Publish → client: {args.rounds} rounds × {args.jobs} channels, "
        f"every {args.interval} s",
        ["measure", "n", "p50 ms", "p95 ms", "p99 ms", "max ms", "vs target"],
        [
            _row("publish → client", stats["latency_ms"], 30.0, key=95),
            _row("publish → bare Redis sub", stats["floor_ms"], None),
        ],
    )
    print(
        f"\nconnected {stats['connected']}/{args.watchers}; "
        f"connect errors {len(stats['connect_errors'])}; "
        f"receive errors {len(stats['receive_errors'])}; "
        f"closed early {len(stats['closed_early'])}; "
        f"messages published {stats['sent']} in {stats['publish_s']:.1f} s; "
        f"delivered {len(stats['latency_ms'])}/{expected}"
    )
    for error in (stats["connect_errors"] + stats["receive_errors"])[:5]:
        print(f"  e.g. {error}")


def _row(label: str, values: list[float], target: float | None, key: int = 50) -> list:
    check = pct(values, key)
    vs = f"{verdict(check, target)} p{key}≤{target:.0f} ms" if target else ""
    return [
        label,
        len(values),
        pct(values, 50),
        pct(values, 95),
        pct(values, 99),
        max(values, default=float("nan")),
        vs,
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="base URL of a running stack")
    where.add_argument("--start-stack", action="store_true")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--username", default="bench_admin")
    parser.add_argument("--password", default=bench_stack.BENCH_PASSWORD)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.1, help="s per round")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--connect-concurrency", type=int, default=10)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with contextlib.ExitStack() as stack:
        if args.start_stack:
            config = StackConfig(chunk_delay_seconds=CHUNK_DELAY)
            live, username = stack.enter_context(bench_stack.running_stack(config))
            base_url, redis_url = live.base_url, live.redis_url
            password = bench_stack.BENCH_PASSWORD
        else:
            base_url, redis_url = args.url, args.redis_url
            username, password = args.username, args.password
        token = bench_stack.login(base_url, username, password)
        stats = run(args, base_url, redis_url, token)
    report(stats, args)
    ok = not stats["connect_errors"] and len(stats["latency_ms"]) == (
        stats["connected"] * args.rounds
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
