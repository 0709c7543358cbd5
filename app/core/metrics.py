"""Prometheus metrics: one module-level definition per metric, safe across processes.

With ``PROMETHEUS_MULTIPROC_DIR`` set (uvicorn ``--workers N``, Celery prefork) every
process writes its samples to memory-mapped files in that directory and an exposition
aggregates them (:func:`render`); the directory must be empty when the process tree
starts (``scripts/prestart.sh`` and ``scripts/run-distributed.sh`` clear it). Without
it (development, tests, embedded mode) the default in-process registry is used.

prometheus-client reads the variable when it is imported, so it has to be in the
process environment (compose ``environment:``, the run script), not only in ``.env``.

Labels are bounded: HTTP metrics use the route *template* (``/v1/backtest/{task_id}``),
never a raw path, so an id never becomes a label value.

Other code increments these directly, e.g.
``RATE_LIMIT_REJECTIONS.labels(tier="free").inc()``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
    values,
)

__all__ = [
    "BACKTEST_ACTIVE",
    "BACKTEST_DURATION",
    "BACKTEST_REQUESTS",
    "CONTENT_TYPE_LATEST",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "RATE_LIMIT_REJECTIONS",
    "WEBSOCKET_CONNECTIONS",
    "broker_queue_depth",
    "mark_process_dead",
    "render",
    "start_worker_exporter",
]

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by route template, method and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by route template and method.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BACKTEST_REQUESTS = Counter(
    "backtest_requests_total",
    "Backtests by lifecycle status: submitted (accepted by the API), rejected "
    "(queue unavailable), then the worker's outcome (completed, failed, "
    "cancelled, discarded, skipped).",
    ["status"],
)
BACKTEST_ACTIVE = Gauge(
    "backtest_active",
    "Backtests running on workers right now.",
    multiprocess_mode="livesum",
)
BACKTEST_DURATION = Histogram(
    "backtest_duration_seconds",
    "Wall-clock time of one backtest execution on a worker, by outcome.",
    ["status"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
)
RATE_LIMIT_REJECTIONS = Counter(
    "rate_limit_rejections_total",
    "Requests refused with 429, by the user's tier (anonymous for unauthenticated).",
    ["tier"],
)
WEBSOCKET_CONNECTIONS = Gauge(
    "websocket_connections",
    "Open (accepted) WebSocket connections.",
    multiprocess_mode="livesum",
)
QUEUE_DEPTH_NAME = "backtest_queue_depth"
QUEUE_DEPTH_HELP = "Messages waiting in the backtest queue (broker list length)."

_exporter_lock = threading.Lock()
_exporter_started = False


def multiprocess_mode() -> bool:
    """Whether prometheus-client writes to a multiprocess directory: it decides once,
    at its import, from ``PROMETHEUS_MULTIPROC_DIR``, and its value class says so
    (this service never reads that variable itself)."""
    return values.ValueClass is not values.MutexValue


def _registry() -> CollectorRegistry:
    if not multiprocess_mode():
        from prometheus_client import REGISTRY  # noqa: PLC0415

        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render(*, queue_depth: int | None = None) -> bytes:
    """The text exposition of every metric of this process tree (plus the queue depth,
    measured by the caller at scrape time, when known)."""
    body = generate_latest(_registry())
    if queue_depth is None:
        return body
    depth = (
        f"# HELP {QUEUE_DEPTH_NAME} {QUEUE_DEPTH_HELP}\n"
        f"# TYPE {QUEUE_DEPTH_NAME} gauge\n"
        f"{QUEUE_DEPTH_NAME} {float(queue_depth)}\n"
    )
    return body + depth.encode()


def start_worker_exporter(port: int, addr: str = "0.0.0.0") -> bool:  # noqa: S104
    """Serve ``/metrics`` for a Celery worker from its main process (once); prefork
    children write to the multiprocess directory the main process aggregates."""
    global _exporter_started  # noqa: PLW0603 - one exporter per process
    with _exporter_lock:
        if _exporter_started or port <= 0:
            return False
        start_http_server(port, addr=addr, registry=_registry())
        _exporter_started = True
        return True


def mark_process_dead(pid: int | None = None) -> None:
    """Drop a finished process's live gauges (multiprocess mode only)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


# kombu's Redis transport keeps one list per priority step; unprioritised messages
# go to the bare queue name.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


async def broker_queue_depth(client: Any, queue: str) -> int:
    """Messages waiting in ``queue`` on a Redis broker (``client``: redis.asyncio)."""
    async with client.pipeline(transaction=False) as pipe:
        for suffix in _PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
        lengths = await pipe.execute()
    return int(sum(lengths))
