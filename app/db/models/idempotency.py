from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONDocument, utcnow

IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotencyStatus(StrEnum):
    IN_FLIGHT = "in_flight"
    COMPLETED = "completed"


_STATUSES = ", ".join(f"'{s.value}'" for s in IdempotencyStatus)


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key`` for one user: the hash of the request it was
    first used with and, once that request succeeded, the response to replay.

    The primary key ``(user_id, key)`` makes the database decide between concurrent
    requests with the same key: exactly one INSERT wins."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(
        String(IDEMPOTENCY_KEY_MAX_LENGTH), primary_key=True
    )
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(
        String(16), default=IdempotencyStatus.IN_FLIGHT.value
    )
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )
