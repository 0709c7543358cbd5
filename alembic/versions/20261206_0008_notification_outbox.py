"""notification outbox: pending e-mails

The e-mail outbox of issue 21: a completion (or a refused schedule firing) writes
its message in the same transaction as the state it announces; ``emails.send``
sends it afterwards and the periodic re-send picks up rows whose message was lost.
(Webhook deliveries already are outbox rows: ``webhook_deliveries``.) PostgreSQL
and SQLite.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:00:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pending_emails',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('to_address', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name=op.f('ck_pending_emails_status')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_pending_emails_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pending_emails'))
    )
    op.create_index('ix_pending_emails_status_next_attempt_at', 'pending_emails', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pending_emails_status_next_attempt_at', table_name='pending_emails')
    op.drop_table('pending_emails')
