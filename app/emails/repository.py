"""SQL of the e-mail outbox (``pending_emails``); repositories never commit."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import DeliveryStatus, PendingEmail


async def add(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    to: str,
    subject: str,
    body: str,
    now: dt.datetime,
) -> PendingEmail:
    row = PendingEmail(
        user_id=user_id, to_address=to, subject=subject, body=body, next_attempt_at=now
    )
    session.add(row)
    await session.flush()
    return row


async def claim(
    session: AsyncSession,
    email_id: uuid.UUID,
    *,
    now: dt.datetime,
    lease: dt.timedelta,
    slack: dt.timedelta,
) -> PendingEmail | None:
    """Take a due message for one attempt (its next attempt moves ``lease`` ahead,
    so a duplicate message finds nothing due); None when it is not due."""
    result = await session.execute(
        update(PendingEmail)
        .where(
            PendingEmail.id == email_id,
            PendingEmail.status == DeliveryStatus.PENDING.value,
            PendingEmail.next_attempt_at <= now + slack,
        )
        .values(next_attempt_at=now + lease, attempts=PendingEmail.attempts + 1)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await session.get(PendingEmail, email_id, populate_existing=True)


async def finish(
    session: AsyncSession,
    email_id: uuid.UUID,
    *,
    status: str,
    next_attempt_at: dt.datetime | None,
    error: str | None,
    now: dt.datetime,
) -> None:
    sent = status == DeliveryStatus.SUCCEEDED.value
    await session.execute(
        update(PendingEmail)
        .where(PendingEmail.id == email_id)
        .values(
            status=status,
            next_attempt_at=next_attempt_at,
            last_error=error,
            sent_at=now if sent else None,
        )
    )


async def overdue(
    session: AsyncSession, *, before: dt.datetime, limit: int = 500
) -> list[uuid.UUID]:
    """Pending messages whose attempt should have happened before ``before``."""
    query = (
        select(PendingEmail.id)
        .where(
            PendingEmail.status == DeliveryStatus.PENDING.value,
            PendingEmail.next_attempt_at < before,
        )
        .order_by(PendingEmail.next_attempt_at)
        .limit(limit)
    )
    return list(await session.scalars(query))
