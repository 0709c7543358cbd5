"""SQL of templates (repositories never commit)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Template


async def create(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    kind: str,
    name: str,
    config: dict[str, Any],
) -> Template:
    row = Template(user_id=user_id, kind=kind, name=name, config=config)
    session.add(row)
    await session.flush()
    return row


async def get_for_owner(
    session: AsyncSession, template_id: uuid.UUID, user_id: uuid.UUID
) -> Template | None:
    query = select(Template).where(
        Template.id == template_id, Template.user_id == user_id
    )
    return (await session.scalars(query)).first()


async def name_taken(
    session: AsyncSession, user_id: uuid.UUID, name: str, *, other_than: Any = None
) -> bool:
    query = select(Template.id).where(
        Template.user_id == user_id, Template.name == name
    )
    if other_than is not None:
        query = query.where(Template.id != other_than)
    return (await session.scalar(query)) is not None


async def list_for_owner(session: AsyncSession, user_id: uuid.UUID) -> list[Template]:
    query = select(Template).where(Template.user_id == user_id).order_by(Template.name)
    return list(await session.scalars(query))
