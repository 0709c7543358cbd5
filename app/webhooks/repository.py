"""SQL of webhook endpoints and deliveries (repositories never commit)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint


async def create_endpoint(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    url: str,
    events: list[str],
    description: str | None,
    secret: str,
) -> WebhookEndpoint:
    row = WebhookEndpoint(
        user_id=user_id, url=url, events=events, description=description, secret=secret
    )
    session.add(row)
    await session.flush()
    return row


async def count_for_owner(session: AsyncSession, user_id: uuid.UUID) -> int:
    query = select(func.count()).where(WebhookEndpoint.user_id == user_id)
    return int(await session.scalar(query) or 0)


async def list_for_owner(
    session: AsyncSession, user_id: uuid.UUID
) -> list[WebhookEndpoint]:
    query = (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.user_id == user_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return list(await session.scalars(query))


async def get_for_owner(
    session: AsyncSession, endpoint_id: uuid.UUID, user_id: uuid.UUID
) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id, WebhookEndpoint.user_id == user_id
    )
    return (await session.scalars(query)).first()


async def active_for_owner(
    session: AsyncSession, user_id: uuid.UUID
) -> list[WebhookEndpoint]:
    """Enabled endpoints, oldest first (the first is the user's default)."""
    return [
        row for row in await list_for_owner(session, user_id) if row.disabled_at is None
    ]


async def add_delivery(
    session: AsyncSession,
    *,
    endpoint_id: uuid.UUID,
    url: str,
    event_type: str,
    job_id: uuid.UUID | None,
    payload: dict[str, Any],
    now: dt.datetime,
) -> WebhookDelivery:
    row = WebhookDelivery(
        endpoint_id=endpoint_id,
        msg_id=f"msg_{uuid.uuid4().hex}",
        url=url,
        event_type=event_type,
        job_id=job_id,
        payload=payload,
        next_attempt_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def claim_delivery(
    session: AsyncSession,
    delivery_id: uuid.UUID,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    slack: dt.timedelta,
) -> bool:
    """Take a due delivery for one attempt: its next attempt moves ``lease`` ahead,
    so a second message for it (the sweeper's re-send) finds nothing due."""
    result = await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            WebhookDelivery.next_attempt_at <= now + slack,
        )
        .values(next_attempt_at=now + lease)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_deliveries(
    session: AsyncSession, endpoint_id: uuid.UUID, *, limit: int, offset: int
) -> tuple[list[WebhookDelivery], int]:
    where = WebhookDelivery.endpoint_id == endpoint_id
    total = int(await session.scalar(select(func.count()).where(where)) or 0)
    query = (
        select(WebhookDelivery)
        .where(where)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(query)), total


async def overdue(
    session: AsyncSession, *, before: dt.datetime, limit: int = 500
) -> list[uuid.UUID]:
    """Pending deliveries whose attempt should have happened before ``before``
    (their message was lost: a broker restart, an embedded process stopped)."""
    query = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.status == DeliveryStatus.PENDING.value,
            WebhookDelivery.next_attempt_at < before,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
    )
    return list(await session.scalars(query))
