"""Idempotency keys. ``insert`` relies on the ``(user_id, key)`` primary key: of two
concurrent inserts exactly one succeeds, the other gets ``IntegrityError`` (inside a
savepoint, so the caller's session stays usable). Nothing here commits."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, cast

from sqlalchemy import delete, select, update
from sqlalchemy import insert as sql_insert
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.models import IdempotencyKey, IdempotencyStatus


async def insert(
    session: AsyncSession, *, user_id: uuid.UUID, key: str, request_hash: str
) -> None:
    """Claim ``key`` (status in_flight); raises ``IntegrityError`` if it exists."""
    statement = sql_insert(IdempotencyKey).values(
        user_id=user_id,
        key=key,
        request_hash=request_hash,
        status=IdempotencyStatus.IN_FLIGHT.value,
        created_at=utcnow(),
    )
    async with session.begin_nested():
        await session.execute(statement)


async def get(
    session: AsyncSession, *, user_id: uuid.UUID, key: str
) -> IdempotencyKey | None:
    query = select(IdempotencyKey).where(
        IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
    )
    return (
        await session.execute(query.execution_options(populate_existing=True))
    ).scalar_one_or_none()


async def complete(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    key: str,
    status_code: int,
    body: dict[str, Any],
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(
            status=IdempotencyStatus.COMPLETED.value,
            response_status=status_code,
            response_body=body,
        )
        .execution_options(synchronize_session=False)
    )


async def remove(session: AsyncSession, *, user_id: uuid.UUID, key: str) -> None:
    await session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .execution_options(synchronize_session=False)
    )


async def delete_expired(
    session: AsyncSession,
    *,
    created_before: dt.datetime,
    user_id: uuid.UUID | None = None,
) -> int:
    """Drop keys older than ``created_before`` (of one user, or all)."""
    statement = delete(IdempotencyKey).where(IdempotencyKey.created_at < created_before)
    if user_id is not None:
        statement = statement.where(IdempotencyKey.user_id == user_id)
    result = cast(
        "CursorResult[Any]",
        await session.execute(statement.execution_options(synchronize_session=False)),
    )
    return int(result.rowcount or 0)
