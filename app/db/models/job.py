from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
    sql,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, JSONDocument, utcnow


class JobStatus(StrEnum):
    """The states of every job, whatever its kind (see ``app.jobs``)."""

    # Accepted, waiting for the scheduler (app.jobs.scheduler) to give it a slot:
    # no broker message yet.
    QUEUED = "queued"
    # Handed to the broker (a message is on its way to a worker).
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Dispatched: holding one of the user's concurrency slots (the per-tier cap).
ACTIVE_STATUSES = (JobStatus.PENDING, JobStatus.RUNNING)
# Not finished yet: waiting in the queue or dispatched (cancel applies to all).
OPEN_STATUSES = (JobStatus.QUEUED, JobStatus.PENDING, JobStatus.RUNNING)
TERMINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value}
)
_STATUSES = ", ".join(f"'{s.value}'" for s in JobStatus)
NAME_MAX_LENGTH = 200


KIND_MAX_LENGTH = 32


class Job(Base):
    """One job of any kind (``kind``: "backtest", ...); its ``id`` is the public
    ``task_id``. The lifecycle columns (status, claim, attempts, heartbeat, cancel)
    are the same for every kind; ``metrics``, ``total_return`` and ``sharpe_ratio``
    hold a kind's headline results, ``current_date`` and ``trades_executed`` its
    progress detail. Kind-specific results live in their own tables, keyed by the
    job id (``trades``, ``backtest_series``)."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
        Index("ix_jobs_user_id_created_at", "user_id", "created_at"),
        Index("ix_jobs_user_id_status", "user_id", "status"),
        Index("ix_jobs_status_heartbeat_at", "status", "heartbeat_at"),
        # The scheduler's "next queued job of this user": cheapest, then oldest.
        Index("ix_jobs_status_user_id_cost", "status", "user_id", "cost"),
        Index("ix_jobs_dead_lettered_at", "dead_lettered_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(KIND_MAX_LENGTH))
    name: Mapped[str | None] = mapped_column(String(NAME_MAX_LENGTH))
    status: Mapped[str] = mapped_column(
        String(16),
        default=JobStatus.PENDING.value,
        server_default=JobStatus.PENDING.value,
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # The simulated date reached so far; CURRENT_DATE is an SQL keyword, hence the
    # column name.
    current_date: Mapped[dt.date | None] = mapped_column("sim_date", Date)
    trades_executed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    config: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # Denormalised from ``metrics`` so history can be sorted by them.
    total_return: Mapped[float | None] = mapped_column(Float)
    sharpe_ratio: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The poison-message counter: deliveries of the job's message that began and
    # never ended (a delivery adds one before its claim and takes it off when it
    # returns, whatever the outcome), i.e. how often the job stopped its worker.
    deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when the job was failed for stopping its worker too often: the admin
    # dead-letter list (``GET /v1/admin/dead-letters``).
    dead_lettered_at: Mapped[dt.datetime | None] = mapped_column()
    # The category of a failure: "timeout", "worker_lost", "internal" or "job"
    # (the job itself cannot succeed); None unless failed.
    error_code: Mapped[str | None] = mapped_column(String(32))
    # Set by the worker that claimed the job; progress/result writes must present it.
    claim_token: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column()
    # The scheduler's cost estimate (symbols x sessions x decision rows, see
    # app.jobs.scheduler): a user's cheaper queued jobs are dispatched first.
    cost: Mapped[float] = mapped_column(Float, default=1.0, server_default="1")
    # When the scheduler moved it from queued to pending (its turn came).
    dispatched_at: Mapped[dt.datetime | None] = mapped_column()
    # When the job was last handed to the broker (the sweeper re-sends lost ones).
    enqueued_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.now()
    )
    started_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    cancel_requested: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=sql.false()
    )
