"""Typed application errors and the one JSON envelope every error response uses.

Services raise :class:`AppError` subclasses; :func:`register_error_handlers` renders
them, FastAPI's validation errors, Starlette's HTTP errors (404, 405, ...) and
unexpected exceptions into::

    {"error": "<Code>", "message": "...", "details"?: ..., "task_id"?: "..."}

Unexpected exceptions become a generic 500 whose traceback is logged, never echoed.
"""

# ruff: noqa: N818 - the class names are the public error codes (NotFound, Conflict)
from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = structlog.get_logger(__name__)


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


class BadRequest(AppError):
    def __init__(self, message: str = "Bad request", details: Any = None) -> None:
        super().__init__("BadRequest", message, 400, details)


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


# --- rendering ------------------------------------------------------------------


def error_body(
    code: str, message: str, details: Any = None, task_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"error": code, "message": message}
    if details is not None:
        body["details"] = details
    if task_id is not None:
        body["task_id"] = task_id
    return body


def error_response(exc: AppError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details, exc.task_id),
        status_code=exc.status_code,
        headers=exc.headers or None,
    )


def _status_code_name(status_code: int) -> str:
    """``404`` → ``"NotFound"``, ``405`` → ``"MethodNotAllowed"``."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"
    return "".join(word.capitalize() for word in phrase.replace("-", " ").split())


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "symbols", 0)`` → ``"body.symbols[0]"``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


async def _app_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return error_response(exc)


def _allowed_methods(request: Request) -> str | None:
    """Every documented method at this path. Starlette's own 405 names only the first
    route that matched the path, but one path often has several routes (GET and POST
    ``/v1/backtest``); the OpenAPI document knows them all."""
    paths = request.app.openapi().get("paths", {})
    for template, operations in paths.items():
        regex, _, _ = compile_path(template)
        if regex.match(request.url.path):
            return ", ".join(sorted(m.upper() for m in operations))
    return None


async def _http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _status_code_name(exc.status_code)
    message = exc.detail if isinstance(exc.detail, str) else code
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    if exc.status_code == 405 and (allow := _allowed_methods(request)):
        headers["Allow"] = allow
    return JSONResponse(
        error_body(code, message), status_code=exc.status_code, headers=headers or None
    )


async def _validation_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(err.get("type") == "json_invalid" for err in errors):
        body = error_body("BadRequest", "Malformed JSON in request body")
        return JSONResponse(body, status_code=400)
    details = [
        {"field": field_path(err.get("loc", ())), "message": str(err.get("msg", ""))}
        for err in errors
    ]
    body = error_body("ValidationError", "Request validation failed", details)
    return JSONResponse(body, status_code=400)


class UnhandledErrorMiddleware:
    """Turns any exception that escaped the handlers into the generic 500 envelope.

    A plain ASGI middleware rather than an ``Exception`` handler: Starlette re-raises
    after calling such a handler, which would log the traceback twice (and crash test
    clients); here it is logged once and the client sees no detail.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logger.exception(
                "unhandled_error", method=scope.get("method"), path=scope.get("path")
            )
            if started:
                raise
            body = error_body("InternalError", "Internal server error")
            await JSONResponse(body, status_code=500)(scope, receive, send)


def register_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error_handler)
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_error_handler)
    app.add_middleware(UnhandledErrorMiddleware)
