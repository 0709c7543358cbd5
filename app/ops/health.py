"""Liveness (``/health``: the process answers) and readiness (``/ready``: its
dependencies answer). Both are mounted at the root, outside ``/v1``.

Readiness checks live in ``app.state.readiness_checks`` (name → async callable taking
the app, returning ``DependencyCheck``); add more with
``app.state.readiness_checks["redis"] = check_redis``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog
from fastapi import APIRouter, FastAPI, Request, status

from app.api.schemas import DependencyCheck, Liveness, Readiness, error_responses
from app.core.config import Settings
from app.core.errors import ServiceUnavailable
from app.core.queue import get_celery
from app.db.migrate import current_revisions, head_revisions
from app.db.session import ping

ReadinessCheck = Callable[[FastAPI], Awaitable[DependencyCheck]]
CHECK_TIMEOUT_SECONDS = 3.0

logger = structlog.get_logger(__name__)
router = APIRouter(tags=["health"])


async def check_database(app: FastAPI) -> DependencyCheck:
    engine = getattr(app.state, "engine", None)
    if engine is None:
        return DependencyCheck(ok=False, detail="not initialised")
    await ping(engine)
    return DependencyCheck(ok=True, detail="reachable")


async def check_migrations(app: FastAPI) -> DependencyCheck:
    engine = getattr(app.state, "engine", None)
    if engine is None:
        return DependencyCheck(ok=False, detail="not initialised")
    # The heads: read once (alembic's script directory, imported then), in a thread.
    heads = await anyio.to_thread.run_sync(head_revisions)
    current = await current_revisions(engine)
    if current == heads:
        return DependencyCheck(ok=True, detail=f"at head {', '.join(sorted(heads))}")
    shown = ", ".join(sorted(current)) or "empty"
    return DependencyCheck(
        ok=False, detail=f"at {shown}, head is {', '.join(sorted(heads))}"
    )


async def check_redis(app: FastAPI) -> DependencyCheck:
    bus = getattr(app.state, "bus", None)
    if bus is None:
        return DependencyCheck(ok=False, detail="not initialised")
    await bus.ping()
    return DependencyCheck(ok=True, detail="reachable")


def _ping_workers(timeout: float) -> list[str]:
    replies: list[dict[str, Any]] = (
        get_celery().control.ping(timeout=timeout, limit=1) or []
    )
    return sorted(name for reply in replies for name in reply)


async def check_workers(app: FastAPI) -> DependencyCheck:
    """At least one Celery worker answers a control ping (distributed mode), or the
    embedded worker thread is alive and done with its warm-up (the dataset and the
    compiled kernels: until then a job would wait for it, so the first job after a
    start would pay seconds; a distributed worker answers no ping before its own
    warm-up either). The ping answer is cached for a few seconds."""
    settings: Settings = app.state.settings
    if settings.embedded:
        worker = getattr(app.state, "embedded_worker", None)
        if worker is None or not worker.alive:
            return DependencyCheck(ok=False, detail="embedded worker down")
        if worker.warming_up:
            return DependencyCheck(ok=False, detail="embedded worker warming up")
        return DependencyCheck(ok=True, detail="embedded worker alive")
    cached: tuple[float, list[str]] | None = getattr(app.state, "worker_ping", None)
    now = time.monotonic()
    if cached is None or now - cached[0] > settings.worker_ping_cache_seconds:
        timeout = settings.worker_ping_timeout_seconds
        workers = await anyio.to_thread.run_sync(_ping_workers, timeout)
        cached = app.state.worker_ping = (now, workers)
    workers = cached[1]
    if not workers:
        return DependencyCheck(ok=False, detail="no worker answered a ping")
    return DependencyCheck(ok=True, detail=f"{len(workers)} responding")


def default_readiness_checks(
    settings: Settings | None = None,
) -> dict[str, ReadinessCheck]:
    checks: dict[str, ReadinessCheck] = {
        "database": check_database,
        "migrations": check_migrations,
    }
    if settings is not None:
        if not settings.embedded:
            checks["redis"] = check_redis
        if settings.embedded_worker_concurrency > 0 or not settings.embedded:
            checks["workers"] = check_workers
    return checks


async def _run_check(name: str, check: ReadinessCheck, app: FastAPI) -> DependencyCheck:
    try:
        return await asyncio.wait_for(check(app), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return DependencyCheck(ok=False, detail="timed out")
    except Exception as exc:  # a failing dependency is a result, not a crash
        logger.warning("readiness_check_failed", check=name, exc_info=True)
        # The class name only: messages can carry hosts or credentials.
        return DependencyCheck(ok=False, detail=type(exc).__name__)


@router.get(
    "/health",
    summary="Liveness",
    description="Answers as long as the process serves requests; touches nothing else.",
    status_code=status.HTTP_200_OK,
    response_model=Liveness,
)
async def health() -> Liveness:
    return Liveness()


@router.get(
    "/ready",
    summary="Readiness",
    description="200 when every dependency check passes (database reachable, schema "
    "at the latest migration, ...); otherwise 503 with each check's result in "
    "`details`.",
    status_code=status.HTTP_200_OK,
    response_model=Readiness,
    responses=error_responses(503),
)
async def ready(request: Request) -> Readiness:
    app: FastAPI = request.app
    checks: dict[str, ReadinessCheck] = getattr(
        app.state, "readiness_checks", default_readiness_checks()
    )
    names = list(checks)
    results = await asyncio.gather(*(_run_check(n, checks[n], app) for n in names))
    by_name = dict(zip(names, results, strict=True))
    if not all(result.ok for result in results):
        details = {name: result.model_dump() for name, result in by_name.items()}
        raise ServiceUnavailable("Not ready", details=details)
    return Readiness(status="ok", checks=by_name)
