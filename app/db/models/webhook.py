"""Webhook endpoints and their deliveries (``app.webhooks``)."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

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

from app.db.base import Base, JSONDocument, utcnow

URL_MAX_LENGTH = 2048


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # an attempt is due at ``next_attempt_at``
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # every attempt of the schedule failed, or the endpoint is gone


_DELIVERY_STATUSES = ", ".join(f"'{s.value}'" for s in DeliveryStatus)


class WebhookEndpoint(Base):
    """A URL that hears about a user's jobs. ``secret`` is the Standard Webhooks
    signing secret (``whsec_<base64>``), shown once at creation and on rotation.
    ``failing_since``: first failed attempt since the last success; an endpoint
    failing for ``WEBHOOK_DISABLE_AFTER_HOURS`` is disabled (``disabled_reason``)."""

    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index("ix_webhook_endpoints_user_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(String(URL_MAX_LENGTH))
    events: Mapped[list[str]] = mapped_column(JSONDocument)
    description: Mapped[str | None] = mapped_column(String(200))
    secret: Mapped[str] = mapped_column(String(128))
    failing_since: Mapped[dt.datetime | None] = mapped_column()
    disabled_at: Mapped[dt.datetime | None] = mapped_column()
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )


class WebhookDelivery(Base):
    """One event for one URL, tried on the retry schedule until it succeeds.
    ``msg_id`` is the ``webhook-id`` header: the same on every attempt, so a receiver
    can deduplicate (delivery is at least once). ``url`` is the endpoint's URL, or a
    submission's ``callback_url`` (signed with the endpoint's secret all the same)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(f"status IN ({_DELIVERY_STATUSES})", name="status"),
        Index(
            "ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"
        ),
        Index(
            "ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(URL_MAX_LENGTH))
    event_type: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[str] = mapped_column(
        String(16),
        default=DeliveryStatus.PENDING.value,
        server_default=DeliveryStatus.PENDING.value,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    response_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    last_attempt_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )
