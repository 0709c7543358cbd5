"""The e-mail outbox (``app.emails``): one row per message to send, written in the
same transaction as the event it announces (a job's terminal state, a refused
schedule firing), sent afterwards by ``emails.send`` on the maintenance queue."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow
from app.db.models.webhook import DeliveryStatus

_STATUSES = ", ".join(f"'{s.value}'" for s in DeliveryStatus)


class PendingEmail(Base):
    """A message in the outbox. ``status`` as for webhook deliveries: ``pending``
    (an attempt is due at ``next_attempt_at``), ``succeeded``, ``failed`` (every
    attempt failed). ``next_attempt_at`` is also the claim: an attempt moves it a
    lease ahead, so a duplicate message (the periodic re-send) finds nothing due."""

    __tablename__ = "pending_emails"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        Index("ix_pending_emails_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE")
    )
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(
        String(16),
        default=DeliveryStatus.PENDING.value,
        server_default=DeliveryStatus.PENDING.value,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    sent_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )
