"""Saved job configurations (``app.templates``) and their schedules
(``app.schedules``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONDocument, utcnow

TEMPLATE_NAME_MAX_LENGTH = 200


class Template(Base):
    """A named submission of one job kind, per user (names unique per user)."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(TEMPLATE_NAME_MAX_LENGTH))
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )


class Schedule(Base):
    """Runs a template on a cron expression in a time zone."""

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_user_id", "user_id"),
        Index("ix_schedules_status_next_run_at", "status", "next_run_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE")
    )
    template_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("templates.id", ondelete="CASCADE")
    )
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    next_run_at: Mapped[dt.datetime | None] = mapped_column()
    last_run_at: Mapped[dt.datetime | None] = mapped_column()
    last_job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )


class ScheduleFiring(Base):
    """One firing of a schedule for one due time: the primary key makes two beat
    processes (or two sweeper passes) fire a due time exactly once."""

    __tablename__ = "schedule_firings"

    schedule_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[dt.datetime] = mapped_column(primary_key=True)
    job_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )
