"""ORM models. Importing this package registers every table on ``Base.metadata``."""

from app.db.models.backtest import (
    ACTIVE_STATUSES,
    Backtest,
    BacktestSeries,
    BacktestStatus,
)
from app.db.models.idempotency import IdempotencyKey, IdempotencyStatus
from app.db.models.trade import Trade
from app.db.models.user import User

__all__ = [
    "ACTIVE_STATUSES",
    "Backtest",
    "BacktestSeries",
    "BacktestStatus",
    "IdempotencyKey",
    "IdempotencyStatus",
    "Trade",
    "User",
]
