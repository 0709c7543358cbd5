"""ORM models, all in one place (no cycles between domains). Importing this package
registers every table on ``Base.metadata``."""

from app.db.models.backtest import BacktestSeries
from app.db.models.backtest_results import BacktestResult, Position
from app.db.models.email import PendingEmail
from app.db.models.idempotency import IdempotencyKey, IdempotencyStatus
from app.db.models.job import (
    ACTIVE_STATUSES,
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Job,
    JobStatus,
)
from app.db.models.share import JobShare
from app.db.models.sweep import SORTABLE_METRICS, SweepChunk, SweepRow, SweepSummary
from app.db.models.template import Schedule, ScheduleFiring, Template
from app.db.models.trade import Trade
from app.db.models.user import User
from app.db.models.webhook import DeliveryStatus, WebhookDelivery, WebhookEndpoint

__all__ = [
    "ACTIVE_STATUSES",
    "OPEN_STATUSES",
    "SORTABLE_METRICS",
    "TERMINAL_STATUSES",
    "BacktestResult",
    "BacktestSeries",
    "DeliveryStatus",
    "IdempotencyKey",
    "IdempotencyStatus",
    "Job",
    "JobShare",
    "JobStatus",
    "PendingEmail",
    "Position",
    "Schedule",
    "ScheduleFiring",
    "SweepChunk",
    "SweepRow",
    "SweepSummary",
    "Template",
    "Trade",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
