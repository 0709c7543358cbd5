"""Run an app's requests inside a test's session (and so inside its transaction,
which the test rolls back): both the ORM session and the single-statement reads."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.api.deps import get_read_bind, get_session


def use_test_session(application: FastAPI, session: AsyncSession) -> FastAPI:
    async def _test_session() -> AsyncIterator[AsyncSession]:
        yield session

    async def _test_bind() -> AsyncConnection:
        return await session.connection()

    application.dependency_overrides[get_session] = _test_session
    application.dependency_overrides[get_read_bind] = _test_bind
    return application
