"""Migration 0005 (case-insensitive usernames) on PostgreSQL and SQLite: accounts
that differ only in case are renamed, the oldest keeps its name, then the unique
index refuses new clashes."""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from alembic import command
from app.db.migrate import alembic_config, upgrade_to_head
from app.db.session import ensure_sqlite_parent_dir, is_sqlite
from tests.integration.test_migrations import (  # noqa: F401 - fixtures
    fresh_postgres_url,
    fresh_sqlite_url,
    fresh_url,
)

pytestmark = pytest.mark.integration


def _upgrade_to(url: str, revision: str) -> None:
    if is_sqlite(url):
        ensure_sqlite_parent_dir(url)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(url), revision).result()


def _id(url: str) -> object:
    return uuid.uuid4().hex if is_sqlite(url) else uuid.uuid4()


def _at(url: str, day: int) -> object:
    when = dt.datetime(2026, 1, day, tzinfo=dt.UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S") if is_sqlite(url) else when


async def test_case_clashes_are_renamed_and_then_refused(
    fresh_url: str,  # noqa: F811 - the imported fixture
) -> None:
    _upgrade_to(fresh_url, "0003")
    engine = create_async_engine(fresh_url)
    names = ["Alice", "alice", "ALICE", "alice-2", "bob"]
    try:
        async with engine.begin() as conn:
            for i, name in enumerate(names):
                await conn.execute(
                    text(
                        "INSERT INTO users (id, username, password_hash, tier, "
                        "is_admin, created_at) VALUES (:id, :name, 'h', 'free', "
                        ":admin, :created)"
                    ),
                    {
                        "id": uuid.uuid4()
                        if not is_sqlite(fresh_url)
                        else uuid.uuid4().hex,
                        "name": name,
                        "admin": False,
                        "created": _at(fresh_url, i + 1),
                    },
                )
        upgrade_to_head(fresh_url)
        async with engine.connect() as conn:
            rows = (
                (
                    await conn.execute(
                        text("SELECT username FROM users ORDER BY created_at")
                    )
                )
                .scalars()
                .all()
            )
        assert rows[0] == "Alice" and rows[3] == "alice-2" and rows[4] == "bob"
        assert len({r.lower() for r in rows}) == len(rows)
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO users (id, username, password_hash, tier, "
                        "is_admin) VALUES (:id, 'BOB', 'h', 'free', false)"
                    ),
                    {
                        "id": uuid.uuid4()
                        if not is_sqlite(fresh_url)
                        else uuid.uuid4().hex
                    },
                )
    finally:
        await engine.dispose()
