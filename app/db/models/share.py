"""Public links to a completed job's results (``app.shares``)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import ForeignKey, String, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, utcnow


class JobShare(Base):
    """At most one live link per job. Only the SHA-256 of the token is stored, so a
    database leak gives no working links; revoking deletes the row."""

    __tablename__ = "job_shares"

    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )
