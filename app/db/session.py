"""Async engine and session factory for PostgreSQL (asyncpg) and SQLite (aiosqlite).

One ``AsyncSession`` per request or task (``expire_on_commit=False`` so objects stay
readable after the service commits). Sessions are created from the sessionmaker held
on ``app.state`` (see ``app.main``), never from a module-level global.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _install_sqlite_pragmas(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """WAL (readers never block the writer), a busy timeout instead of immediate
    "database is locked", and foreign keys (needed for ON DELETE CASCADE)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()


def ensure_sqlite_parent_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def create_engine(
    settings: Settings, url: str | None = None, *, pool_pre_ping: bool = True
) -> AsyncEngine:
    """The process's engine (default URL: ``settings.resolved_database_url``).

    ``pool_pre_ping`` tests each connection as it leaves the pool. asyncpg's ping is
    three round trips (BEGIN, ``;``, ROLLBACK), more than a whole status read, so the
    API turns it off: a connection that died with the server fails its request
    (503), and SQLAlchemy then invalidates every pooled connection opened before
    the failure, so the next requests reconnect. Workers keep it on: a job's first
    query should not fail because the pool is stale."""
    url = url or settings.resolved_database_url
    if is_sqlite(url):
        ensure_sqlite_parent_dir(url)
        engine = create_async_engine(
            url, echo=settings.db_echo, hide_parameters=not settings.db_echo
        )
        _install_sqlite_pragmas(engine, settings.sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(
        url,
        echo=settings.db_echo,
        # Error messages must not carry user data (trades, configs) into the logs.
        hide_parameters=not settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_seconds,
        pool_pre_ping=pool_pre_ping,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Round-trip ``SELECT 1`` (raises if the database is unreachable)."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
