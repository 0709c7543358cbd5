"""Python client of the backtest service: submit, follow and read backtests.

See ``README.md`` in the distribution (``backtest-client``) for a tour.
"""

from backtest_client._http import ConnectionFailed, RetryEvent, RetryPolicy, __version__
from backtest_client.async_backtests import AsyncBacktest
from backtest_client.backtests import Backtest
from backtest_client.client import AsyncClient, Client
from backtest_client.errors import (
    ApiError,
    BacktestClientError,
    BacktestFailed,
    BadRequest,
    Conflict,
    EndpointNotAvailable,
    FieldError,
    Forbidden,
    IdempotencyKeyMismatch,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ResultsNotReady,
    ServerError,
    ServiceUnavailable,
    Unauthorized,
    UnknownStrategy,
    ValidationFailed,
    WaitTimeout,
)
from backtest_client.sweeps import AsyncSweep, Sweep

__all__ = [
    "ApiError",
    "AsyncBacktest",
    "AsyncClient",
    "AsyncSweep",
    "Backtest",
    "BacktestClientError",
    "BacktestFailed",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "EndpointNotAvailable",
    "FieldError",
    "Forbidden",
    "IdempotencyKeyMismatch",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "ResultsNotReady",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Sweep",
    "Unauthorized",
    "UnknownStrategy",
    "ValidationFailed",
    "WaitTimeout",
    "__version__",
]
