"""One exception per category of the service's error envelope.

Every error response of the service has one body,
``{"error": "<Code>", "message": "…", "details"?: …, "task_id"?: …}``;
:func:`error_from_response` turns it into the matching subclass of :class:`ApiError`.
Catch :class:`BacktestClientError` for everything this package raises.
"""

# ruff: noqa: N818 - the names are the service's error codes (NotFound, Conflict)
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class BacktestClientError(Exception):
    """Base of every exception raised by ``backtest_client``."""


@dataclass(frozen=True)
class FieldError:
    """One invalid input: ``field`` is a path such as ``body.start_date``."""

    field: str
    message: str


class ApiError(BacktestClientError):
    """The service answered with an error envelope."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str = "Error",
        details: Any = None,
        task_id: str | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.details = details
        self.task_id = task_id
        self.response = response

    def __str__(self) -> str:
        return f"{self.status_code} {self.code}: {self.message}"


class BadRequest(ApiError):
    """400 that is not about a particular field (e.g. malformed JSON)."""


class ValidationFailed(BadRequest):
    """400 ``ValidationError``: ``field_errors`` says which input to fix and why."""

    @property
    def field_errors(self) -> list[FieldError]:
        if not isinstance(self.details, list):
            return []
        return [
            FieldError(str(d.get("field", "")), str(d.get("message", "")))
            for d in self.details
            if isinstance(d, dict)
        ]

    def __str__(self) -> str:
        fields = "; ".join(f"{e.field}: {e.message}" for e in self.field_errors)
        return f"{super().__str__()} ({fields})" if fields else super().__str__()


class Unauthorized(ApiError):
    """401: no token, a bad or expired token, or wrong credentials."""


class Forbidden(ApiError):
    """403."""


class NotFound(ApiError):
    """404: an unknown id, or another user's backtest (the service does not say
    which)."""


class EndpointNotAvailable(NotFound):
    """404 because this server version has no such route (its OpenAPI document does
    not list it): e.g. sweeps or reports on an older server."""


class Conflict(ApiError):
    """409: results not ready yet, a username taken, an idempotent request still in
    flight."""


class IdempotencyKeyMismatch(ApiError):
    """422: the Idempotency-Key was used before with a different body."""


class PayloadTooLarge(ApiError):
    """413: request body over the server's limit."""


class _RetryAfterError(ApiError):
    @property
    def retry_after(self) -> float | None:
        """Seconds the server asked to wait (``Retry-After``), if it said."""
        if self.response is None:
            return None
        return parse_retry_after(self.response.headers.get("Retry-After"))


class RateLimited(_RetryAfterError):
    """429: over a rate limit or quota; ``retry_after`` says when a retry succeeds."""


class ServiceUnavailable(_RetryAfterError):
    """503: database, queue or Redis unavailable; retry after ``retry_after``."""


class ServerError(ApiError):
    """500 or another unexpected status."""


class ResultsNotReady(BacktestClientError):
    """Metrics or results were asked of a backtest that has not completed."""


class BacktestFailed(BacktestClientError):
    """``wait()`` ended in ``failed`` or ``cancelled``."""

    def __init__(self, task_id: str, status: str, error: str | None) -> None:
        super().__init__(
            f"backtest {task_id} {status}" + (f": {error}" if error else "")
        )
        self.task_id = task_id
        self.status = status
        self.error = error


class UnknownStrategy(BacktestClientError, ValueError):
    """A strategy name the server does not list."""


class WaitTimeout(BacktestClientError, TimeoutError):
    """``wait(timeout=…)`` ran out before the backtest reached a terminal state."""


_BY_CODE: dict[str, type[ApiError]] = {
    "BadRequest": BadRequest,
    "ValidationError": ValidationFailed,
    "Unauthorized": Unauthorized,
    "Forbidden": Forbidden,
    "NotFound": NotFound,
    "Conflict": Conflict,
    "IdempotencyKeyMismatch": IdempotencyKeyMismatch,
    "PayloadTooLarge": PayloadTooLarge,
    "RateLimited": RateLimited,
    "ServiceUnavailable": ServiceUnavailable,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: IdempotencyKeyMismatch,
    429: RateLimited,
    503: ServiceUnavailable,
}


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the service sends an integer; an HTTP date from a
    proxy is ignored rather than guessed at)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0)


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error ``response`` (envelope or not)."""
    body: Any = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = str(body["error"])
        message = str(body.get("message") or code)
        details = body.get("details")
        task_id = body.get("task_id")
    else:
        code = response.reason_phrase.replace(" ", "") or "Error"
        message = response.text[:200] or response.reason_phrase
        details, task_id = None, None
    cls = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, ServerError)
    if cls is ValidationFailed and response.status_code != 400:
        cls = _BY_STATUS.get(response.status_code, ServerError)
    return cls(
        message,
        status_code=response.status_code,
        code=code,
        details=details,
        task_id=str(task_id) if task_id is not None else None,
        response=response,
    )
