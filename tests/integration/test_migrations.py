"""The Alembic history builds the schema the models describe, on PostgreSQL and SQLite,
and unwinds cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.base import Base
from app.db.migrate import downgrade_to_base, is_at_head, upgrade_to_head
from tests.integration.conftest import async_url, create_database, drop_database

pytestmark = pytest.mark.integration

EXPECTED_TABLES = {"users", "jobs", "trades", "backtest_series", "alembic_version"}
EXPECTED_INDEXES = {
    "jobs": {
        "ix_jobs_user_id_created_at",
        "ix_jobs_user_id_status",
        "ix_jobs_status_heartbeat_at",
    },
    "trades": {"ix_trades_backtest_id_symbol_entry_date"},
}


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    name = create_database("bt_migr")
    try:
        yield async_url(name)
    finally:
        drop_database(name)


@pytest.fixture
def fresh_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'backtest.db'}"


@pytest.fixture(params=["postgres", "sqlite"])
def fresh_url(request: pytest.FixtureRequest) -> str:
    fixture = (
        "fresh_postgres_url" if request.param == "postgres" else "fresh_sqlite_url"
    )
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def fresh_engine(fresh_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(fresh_url)
    yield engine
    await engine.dispose()


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names())
    return {
        "tables": tables,
        "indexes": {t: {i["name"] for i in inspector.get_indexes(t)} for t in tables},
        "fks": {t: inspector.get_foreign_keys(t) for t in tables},
    }


def _model_drift(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, Base.metadata))


async def _run(engine: AsyncEngine, fn: Any) -> Any:
    async with engine.connect() as connection:
        return await connection.run_sync(fn)


async def test_upgrade_head_creates_tables_and_indexes(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(upgrade_to_head, fresh_url)

    schema = await _run(fresh_engine, _schema)

    assert schema["tables"] >= EXPECTED_TABLES
    for table, indexes in EXPECTED_INDEXES.items():
        assert indexes <= schema["indexes"][table]
    cascades = {
        fk["referred_table"]: fk["options"].get("ondelete")
        for table in ("jobs", "trades", "backtest_series")
        for fk in schema["fks"][table]
    }
    assert cascades == {"users": "CASCADE", "jobs": "CASCADE"}
    assert await is_at_head(fresh_engine)


async def test_migrations_match_models(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(upgrade_to_head, fresh_url)

    drift = await _run(fresh_engine, _model_drift)

    assert drift == []


async def test_downgrade_base_removes_schema(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(upgrade_to_head, fresh_url)

    await asyncio.to_thread(downgrade_to_base, fresh_url)

    schema = await _run(fresh_engine, _schema)
    assert schema["tables"] <= {"alembic_version"}
    assert not await is_at_head(fresh_engine)


async def test_upgrade_head_is_idempotent(
    fresh_url: str, fresh_engine: AsyncEngine
) -> None:
    await asyncio.to_thread(upgrade_to_head, fresh_url)

    await asyncio.to_thread(upgrade_to_head, fresh_url)

    assert await is_at_head(fresh_engine)
