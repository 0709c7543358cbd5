"""Queries behind the submission quotas (active-jobs cap, the rate limit's database
fallback). Nothing here commits."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Backtest, User


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """``SELECT ... FOR UPDATE`` on the user's row until the transaction ends: one
    submission per user at a time, across API processes, so "count, then insert" is
    exact. (SQLite ignores it; its writers are serialised anyway.)"""
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())


async def recent_creations(
    session: AsyncSession, user_id: uuid.UUID, *, since: dt.datetime, limit: int
) -> list[dt.datetime]:
    """``created_at`` of the user's newest ``limit`` jobs created after ``since``,
    newest first (index ``ix_backtests_user_id_created_at``)."""
    query = (
        select(Backtest.created_at)
        .where(Backtest.user_id == user_id, Backtest.created_at > since)
        .order_by(Backtest.created_at.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))
