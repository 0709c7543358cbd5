"""usernames are case-insensitive: unique index on lower(username)

Logins and registrations look usernames up case-insensitively (and the failed-login
limits key on the lower-cased name), so two accounts may no longer differ only in
case. Existing clashes are resolved first, safely and visibly: the oldest account
keeps its name, each newer one is renamed ``<name>-<n>`` (the first free ``n``),
and every rename is logged as a warning for the operator to pass on (the password
and everything else are unchanged). Then ``uq_users_username_lower`` is created. Works
on PostgreSQL and SQLite (both index expressions).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "uq_users_username_lower"
USERNAME_MAX_LENGTH = 64
logger = logging.getLogger("alembic.runtime.migration")


def _free_name(name: str, taken: set[str]) -> str:
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = name[: USERNAME_MAX_LENGTH - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
        n += 1


def _rename_clashes(connection: sa.Connection) -> None:
    rows = connection.execute(
        sa.text("SELECT id, username FROM users ORDER BY created_at, id")
    ).all()
    taken: set[str] = set()
    for user_id, username in rows:
        if username.lower() not in taken:
            taken.add(username.lower())
            continue
        new = _free_name(username, taken | {u.lower() for _, u in rows})
        taken.add(new.lower())
        connection.execute(
            sa.text("UPDATE users SET username = :new WHERE id = :id"),
            {"new": new, "id": user_id},
        )
        logger.warning(
            "username %r differed from an older account only in case; renamed %r",
            username,
            new,
        )


def upgrade() -> None:
    _rename_clashes(op.get_bind())
    op.create_index(INDEX, "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    # IF EXISTS: on SQLite, 0007's downgrade rebuilds the users table (batch mode),
    # which drops this expression index (SQLAlchemy does not reflect it to copy).
    op.execute(f"DROP INDEX IF EXISTS {INDEX}")
