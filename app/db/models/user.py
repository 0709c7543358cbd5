from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Boolean, CheckConstraint, Index, String, Uuid, func, sql
from sqlalchemy.orm import Mapped, mapped_column

from app.core.security import Tier
from app.db.base import Base, utcnow

USERNAME_MIN_LENGTH = 3
USERNAME_MAX_LENGTH = 64
EMAIL_MAX_LENGTH = 254
_TIERS = ", ".join(f"'{t.value}'" for t in Tier)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"tier IN ({_TIERS})", name="tier"),
        CheckConstraint(
            f"length(username) BETWEEN {USERNAME_MIN_LENGTH} AND {USERNAME_MAX_LENGTH}",
            name="username_length",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    tier: Mapped[str] = mapped_column(
        String(16), default=Tier.FREE.value, server_default=Tier.FREE.value
    )
    is_admin: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql.false()
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )
    # Optional: where completion e-mails go (``notify_email``).
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX_LENGTH))
    notify_email: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql.false()
    )

    def __repr__(self) -> str:
        return f"User(id={self.id!s}, username={self.username!r}, tier={self.tier!r})"


# Usernames are case-insensitive (migration 0005).
Index("uq_users_username_lower", func.lower(User.username), unique=True)
