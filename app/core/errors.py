"""Typed application errors: a stable ``code``, a readable ``message``, an HTTP
status and optional ``details``/headers. Services raise them; the API edge
(:mod:`app.api.errors`) renders every one into the common JSON envelope::

    {"error": "<Code>", "message": "...", "details"?: ..., "task_id"?: "..."}

Framework-free: nothing here knows FastAPI.
"""

# ruff: noqa: N818 - the class names are the public error codes (NotFound, Conflict)
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class AppError(Exception):
    """An error meant for the client: a stable ``code``, a readable ``message``."""

    def __init__(
        self,
        code: str,
        message: str,
        status_code: int,
        details: Any = None,
        *,
        task_id: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status_code = status_code
        self.details = details
        self.task_id = task_id
        self.headers: dict[str, str] = dict(headers or {})


class ValidationFailed(AppError):
    """A semantically invalid input; ``field`` uses the same path style as the 400s
    FastAPI validation produces (``body.start_date``)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        details = [{"field": field, "message": message}] if field else None
        super().__init__("ValidationError", message, 400, details)


class Unauthorized(AppError):
    def __init__(self, message: str = "Could not validate credentials") -> None:
        super().__init__(
            "Unauthorized", message, 401, headers={"WWW-Authenticate": "Bearer"}
        )


class Forbidden(AppError):
    def __init__(self, message: str = "Not allowed") -> None:
        super().__init__("Forbidden", message, 403)


class NotFound(AppError):
    def __init__(self, message: str = "Not found", *, task_id: str | None = None):
        super().__init__("NotFound", message, 404, task_id=task_id)


class Conflict(AppError):
    def __init__(
        self, message: str = "Conflict", *, task_id: str | None = None
    ) -> None:
        super().__init__("Conflict", message, 409, task_id=task_id)


class RateLimited(AppError):
    def __init__(
        self, message: str = "Too many requests", *, retry_after: int | None = None
    ) -> None:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        details = {"retry_after": retry_after} if retry_after is not None else None
        super().__init__("RateLimited", message, 429, details, headers=headers)


class ServiceUnavailable(AppError):
    def __init__(
        self,
        message: str = "Service unavailable",
        *,
        retry_after: int = 5,
        details: Any = None,
    ) -> None:
        headers = {"Retry-After": str(retry_after)}
        super().__init__("ServiceUnavailable", message, 503, details, headers=headers)


def error_body(
    code: str, message: str, details: Any = None, task_id: str | None = None
) -> dict[str, Any]:
    """The envelope every error response carries."""
    body: dict[str, Any] = {"error": code, "message": message}
    if details is not None:
        body["details"] = details
    if task_id is not None:
        body["task_id"] = task_id
    return body


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "symbols", 0)`` → ``"body.symbols[0]"``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path
