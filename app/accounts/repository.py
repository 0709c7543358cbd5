"""User rows. Repositories never commit: the calling service owns the transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.security import Tier
from app.core.text import normalise_username
from app.db.models import User


async def get(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_by_username(session: AsyncSession, username: str) -> User | None:
    """Case-insensitive (index ``uq_users_username_lower``)."""
    name = normalise_username(username)
    result = await session.execute(
        select(User).where(func.lower(User.username) == name)
    )
    return result.scalar_one_or_none()


async def create(
    session: AsyncSession,
    *,
    username: str,
    password_hash: str,
    tier: Tier = Tier.FREE,
    is_admin: bool = False,
) -> User:
    """Insert and flush (raises ``IntegrityError`` on a duplicate username)."""
    user = User(
        username=username,
        password_hash=password_hash,
        tier=Tier(tier).value,
        is_admin=is_admin,
    )
    session.add(user)
    await session.flush()
    return user


async def update_tier_admin(
    session: AsyncSession,
    user: User,
    *,
    tier: Tier | None = None,
    is_admin: bool | None = None,
) -> User:
    if tier is not None:
        user.tier = Tier(tier).value
    if is_admin is not None:
        user.is_admin = is_admin
    await session.flush()
    return user


async def update_password_hash(
    session: AsyncSession, user: User, password_hash: str
) -> None:
    user.password_hash = password_hash
    await session.flush()


async def delete(session: AsyncSession, user: User) -> None:
    await session.delete(user)
    await session.flush()


async def lock_admins(session: AsyncSession) -> None:
    """Lock every admin row until the transaction ends, so concurrent demotions are
    serialised and "is one admin left" is exact: ``FOR UPDATE`` on PostgreSQL, a
    no-op ``UPDATE`` (the database write lock) on SQLite, which ignores it."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(User).where(User.is_admin).values(is_admin=User.is_admin)
        )
        return
    await session.execute(select(User.id).where(User.is_admin).with_for_update())


async def count_admins(session: AsyncSession) -> int:
    query = select(func.count()).select_from(User).where(User.is_admin)
    return int(await session.scalar(query) or 0)
