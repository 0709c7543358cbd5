"""The FastAPI application factory.

``create_app()`` does no I/O; the lifespan creates (and disposes of) the database
engine. Serve with ``uvicorn app.main:create_app --factory`` or ``app.main:app`` (built
lazily on first access, not at import).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from app.api.v1.endpoints import health
from app.api.v1.router import api_router
from app.core.config import Settings, get_settings
from app.core.errors import register_error_handlers
from app.core.logging import configure_logging
from app.db.session import create_engine, create_sessionmaker

API_DESCRIPTION = """\
Portfolio backtesting on real daily prices.

Authenticate with `POST /v1/auth/login` (or the **Authorize** button, which uses
`POST /v1/auth/token`) and send `Authorization: Bearer <token>`. Every error has the
same JSON body: `{"error": "<Code>", "message": "...", "details"?: ...}`; invalid
input is a **400** whose `details` lists each bad field.
"""
API_VERSION = "0.1.0"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    try:
        yield
    finally:
        await engine.dispose()


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
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
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
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_tags=[
            {"name": "auth", "description": "Accounts and tokens"},
            {"name": "admin", "description": "Administration (admins only)"},
            {"name": "health", "description": "Liveness and readiness probes"},
        ],
    )
    app.state.settings = settings
    app.state.readiness_checks = health.default_readiness_checks()
    register_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.include_router(health.router)
    app.include_router(api_router)
    _install_openapi_without_422(app)
    return app


def __getattr__(name: str) -> Any:
    """``app.main:app`` for servers that want a module attribute, built on demand."""
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
