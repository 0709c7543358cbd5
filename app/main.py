"""The FastAPI application factory.

``create_app()`` does no I/O; the lifespan creates (and disposes of) the database
engine. Serve with ``uvicorn app.main:create_app --factory`` or ``app.main:app`` (built
lazily on first access, not at import).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import redis.asyncio as aredis
import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from app import kinds  # registers every job kind
from app.accounts import admin as accounts_admin
from app.accounts import api as accounts_api
from app.api import docs
from app.api.caching import JsonCache
from app.api.errors import register_error_handlers
from app.api.middleware import LimitsMiddleware
from app.api.observability import ObservabilityMiddleware
from app.api.safe_text import SafeTextMiddleware
from app.backtests import api as backtests_api
from app.catalog import api as catalog_api
from app.core import metrics
from app.core.config import Settings, get_settings
from app.core.errors import Unauthorized
from app.core.logging import configure_logging
from app.core.queue import QUEUE
from app.core.rate_limit import RateLimiter
from app.db.migrate import upgrade_to_head
from app.db.session import create_engine, create_sessionmaker
from app.jobs.progress import get_bus
from app.ops import deadletters as deadletters_api
from app.ops import health
from app.schedules import api as schedules_api
from app.shares import api as shares_api
from app.sweeps import api as sweeps_api
from app.templates import api as templates_api
from app.webhooks import api as webhooks_api

if TYPE_CHECKING:
    from app.jobs.embedded import EmbeddedWorker

API_DESCRIPTION = """\
Portfolio backtesting on real daily prices.

Authenticate with `POST /v1/auth/login` (or the **Authorize** button, which uses
`POST /v1/auth/token`) and send `Authorization: Bearer <token>`. Every error has the
same JSON body: `{"error": "<Code>", "message": "...", "details"?: ...}`; invalid
input is a **400** whose `details` lists each bad field.
"""
API_VERSION = "0.1.0"


WEB_DIR = Path(__file__).resolve().parent / "web"
log = structlog.get_logger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Database engine; in embedded mode also migrations, the in-process Celery worker
    and the sweeper loop (distributed mode runs those as separate processes)."""
    settings: Settings = app.state.settings
    if settings.migrate_on_start:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        url = settings.resolved_database_url
        await anyio.to_thread.run_sync(lambda: upgrade_to_head(url))
    engine = create_engine(settings, pool_pre_ping=False)  # see create_engine
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.read_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    app.state.bus = get_bus(settings.redis_url)
    app.state.limiter = RateLimiter(settings)
    app.state.redis = None
    if settings.redis_url:
        app.state.redis = aredis.Redis.from_url(settings.redis_url, socket_timeout=2)
        if settings.chart_cache_ttl_seconds:
            app.state.chart_cache = JsonCache(
                app.state.redis, ttl_seconds=settings.chart_cache_ttl_seconds
            )
    worker: EmbeddedWorker | None = None
    sweeper_task: asyncio.Task[None] | None = None
    if settings.embedded and settings.embedded_worker_concurrency > 0:
        # Only here: the worker side (Celery's worker, the task modules, the kinds'
        # run modules) stays out of the API process of distributed mode.
        from app.jobs.embedded import EmbeddedWorker, sweep_forever  # noqa: PLC0415

        kinds.import_runners()  # the in-process worker runs the jobs
        worker = EmbeddedWorker(settings)
        worker.start()
        app.state.embedded_worker = worker
        sweeper_task = asyncio.create_task(
            sweep_forever(app.state.sessionmaker, settings)
        )
    # Everything built so far lives as long as the process: move it out of the
    # cyclic GC's reach, so full collections under load walk only per-request
    # objects (shorter pauses, a thinner latency tail).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        if sweeper_task is not None:
            sweeper_task.cancel()
        if worker is not None:
            await anyio.to_thread.run_sync(worker.stop)
        await app.state.bus.aclose()
        await app.state.limiter.aclose()
        if app.state.redis is not None:
            await app.state.redis.aclose()
        await engine.dispose()
        metrics.mark_process_dead()
        log.info("api.stopped")


def _documented_429(schema: dict[str, Any]) -> dict[str, Any]:
    """The 429 response as the routes that declare it document it (the envelope,
    ``Retry-After``), to add to the routes that can answer it without saying so."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if "429" in operation.get("responses", {}):
                return dict(operation["responses"]["429"])
    return {
        "description": "Too Many Requests",
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorResponse"}
            }
        },
    }


def _install_openapi_without_422(app: FastAPI) -> None:
    """FastAPI documents a 422 on every route with parameters; this API answers
    validation errors with 400 in the common envelope (documented per route)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        too_many = _documented_429(schema)
        for route, path in schema.get("paths", {}).items():
            for operation in path.values():
                responses = operation.get("responses", {})
                # Only FastAPI's automatic 422 (HTTPValidationError); a 422 a route
                # documents itself (Idempotency-Key reuse) stays.
                if "HTTPValidationError" in str(responses.get("422", "")):
                    responses.pop("422")
                # Every authenticated route passes the per-user request limit and
                # every auth route the per-IP one: both can answer 429.
                if "401" in responses or route.startswith("/v1/auth/"):
                    responses.setdefault("429", too_many)
        schemas = schema.get("components", {}).get("schemas", {})
        schemas.pop("HTTPValidationError", None)
        if "loc" in schemas.get("ValidationError", {}).get("properties", {}):
            schemas.pop("ValidationError")  # FastAPI's, not one of ours
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    app = FastAPI(
        title="Backtest Service API",
        description=API_DESCRIPTION,
        version=API_VERSION,
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc: app.api.docs, from vendored bundles
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        openapi_tags=[
            {"name": "auth", "description": "Accounts and tokens"},
            {"name": "admin", "description": "Administration (admins only)"},
            {"name": "backtests", "description": "Submit, watch and read backtests"},
            {"name": "catalog", "description": "Strategies, symbols and datasets"},
            {"name": "health", "description": "Liveness and readiness probes"},
            {"name": "webhooks", "description": "Completion webhooks"},
            {"name": "shares", "description": "Public links to results"},
            {"name": "templates", "description": "Saved submissions"},
            {"name": "schedules", "description": "Templates run on a cron schedule"},
        ],
    )
    app.state.settings = settings
    app.state.readiness_checks = health.default_readiness_checks(settings)
    register_error_handlers(app)
    # Body-size limit (413) and rate-limit headers on every limited response.
    app.add_middleware(LimitsMiddleware, max_body_bytes=settings.max_request_body_bytes)
    # Control characters in a query parameter or the path: 400 before routing.
    app.add_middleware(SafeTextMiddleware)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    # Outermost: request ids and metrics see every response, 500s included.
    app.add_middleware(ObservabilityMiddleware)
    app.include_router(health.router)
    if settings.metrics_enabled and (
        settings.metrics_token or settings.environment != "production"
    ):
        _mount_metrics(app, settings.metrics_token)
    elif settings.metrics_enabled:
        structlog.get_logger(__name__).warning(
            "metrics.not_served", reason="set METRICS_TOKEN to serve /metrics"
        )
    app.include_router(_v1_router())
    app.include_router(shares_api.page_router)
    _mount_web_app(app)
    if settings.docs_enabled:
        docs.install(app)
    _install_openapi_without_422(app)
    return app


def _v1_router() -> APIRouter:
    """Everything under ``/v1``: each domain's router."""
    router = APIRouter(prefix="/v1")
    for domain_router in (
        accounts_api.router,
        accounts_admin.router,
        deadletters_api.router,
        backtests_api.router,
        sweeps_api.router,
        catalog_api.router,
        webhooks_api.router,
        shares_api.router,
        templates_api.router,
        schedules_api.router,
    ):
        router.include_router(domain_router)
    return router


def _mount_metrics(app: FastAPI, token: str | None) -> None:
    expected = f"Bearer {token}".encode() if token else None

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            raise Unauthorized("A valid metrics token is required")
        depth = None
        client = getattr(request.app.state, "redis", None)
        if client is not None:
            with contextlib.suppress(Exception):  # the depth is optional, never a 500
                depth = await asyncio.wait_for(
                    metrics.broker_queue_depth(client, QUEUE), 1.0
                )
        body = await anyio.to_thread.run_sync(lambda: metrics.render(queue_depth=depth))
        return Response(body, media_type=metrics.CONTENT_TYPE_LATEST)


def _mount_web_app(app: FastAPI) -> None:
    """The single-page app: ``/`` serves index.html, assets under ``/static``."""
    if not (WEB_DIR / "index.html").is_file():
        return
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html")


def __getattr__(name: str) -> Any:
    """``app.main:app`` for servers that want a module attribute, built on demand."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
