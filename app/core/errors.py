"""Typed application errors and the one JSON envelope every error response uses.

Services raise :class:`AppError` subclasses; :func:`register_error_handlers` renders
them, FastAPI's validation errors, Starlette's HTTP errors (404, 405, ...) and
unexpected exceptions into::

    {"error": "<Code>", "message": "...", "details"?: ..., "task_id"?: "..."}

Unexpected exceptions become a generic 500 whose traceback is logged, never echoed.
An infrastructure outage (the database or Redis unreachable, restarting or out of
connections) is not a bug: wherever it surfaces (a route, a dependency, a
middleware) it becomes a 503 with ``Retry-After``, and neither its text nor a
connection string reaches the client (:func:`unavailable_dependency`).
"""

# ruff: noqa: N818 - the class names are the public error codes (NotFound, Conflict)
from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, cast

import kombu.exceptions
import redis.exceptions
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection
from starlette.routing import compile_path
from starlette.types import (
    ASGIApp,
    ExceptionHandler,
    Message,
    Receive,
    Scope,
    Send,
)
from starlette.websockets import WebSocket, WebSocketState

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


# --- infrastructure outages -----------------------------------------------------

# How long clients are asked to wait before retrying during an outage.
OUTAGE_RETRY_AFTER_SECONDS = 5
WS_TRY_AGAIN_LATER = 1013  # RFC 6455 close code: reconnect later
# SQLSTATEs of a server that cannot serve us right now (asyncpg and psycopg errors
# carry ``sqlstate``; SQLAlchemy's wrapped DBAPI errors too): class 08 connection
# exceptions, 57P01-57P03 admin/crash shutdown and "the database system is starting
# up", 53300 too many connections.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# Exception types an outage surfaces as; a handler is registered for each, and it
# re-raises what ``unavailable_dependency`` does not recognise (e.g. IntegrityError).
_OUTAGE_TYPES: tuple[type[Exception], ...] = (
    sa_exc.SQLAlchemyError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,
    ConnectionError,  # ConnectionRefusedError and friends (asyncpg connects raw)
    TimeoutError,
)


def unavailable_dependency(exc: BaseException) -> str | None:
    """``"database"``, ``"redis"`` or ``"service"`` (a raw socket error of unknown
    origin) when ``exc`` means that dependency is down (unreachable, restarting, out
    of connections), else None."""
    if _database_down(exc):
        return "database"
    if isinstance(exc, _REDIS_ERRORS):
        return "redis"
    if isinstance(exc, ConnectionError | TimeoutError):
        return "service"
    return None


_REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    kombu.exceptions.OperationalError,  # Celery could not reach the broker
)


def _database_down(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or (exc.orig is not None and _sqlstate_unavailable(exc.orig))
        )
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True  # pool checkout timed out / connection lost
    if _sqlstate_unavailable(exc):
        return True
    # asyncpg raises socket errors unwrapped when it cannot connect.
    return isinstance(exc, ConnectionError | TimeoutError) and _from_database_driver(
        exc
    )


def _sqlstate_unavailable(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)


def _from_database_driver(exc: BaseException) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg", "sqlalchemy", "psycopg", "aiosqlite")):
            return True
        traceback = traceback.tb_next
    return False


_OUTAGE_MESSAGES = {
    "database": "The database is temporarily unavailable; try again shortly.",
    "redis": "The job queue is temporarily unavailable; try again shortly.",
}


def outage_error(dependency: str) -> ServiceUnavailable:
    message = _OUTAGE_MESSAGES.get(
        dependency, "A backing service is temporarily unavailable; try again shortly."
    )
    return ServiceUnavailable(message, retry_after=OUTAGE_RETRY_AFTER_SECONDS)


def _log_outage(dependency: str, exc: BaseException, scope: Scope) -> None:
    # A warning without the traceback: an outage is expected and loud enough in the
    # dependency's own logs. The exception's type (not its text: it may carry a DSN).
    logger.warning(
        "dependency_unavailable",
        dependency=dependency,
        error_type=type(exc).__name__,
        method=scope.get("method"),
        path=scope.get("path"),
    )


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


async def _outage_handler(conn: HTTPConnection, exc: Exception) -> Response | None:
    """503 for a request; for a WebSocket (Starlette hands both to the handlers) a
    close with 1013 "try again later", after which clients reconnect."""
    dependency = unavailable_dependency(exc)
    if dependency is None:
        raise exc  # not an outage (a constraint violation, a bug): the generic 500
    _log_outage(dependency, exc, conn.scope)
    if isinstance(conn, WebSocket):
        await close_try_again_later(conn)
        return None
    return error_response(outage_error(dependency))


async def close_try_again_later(websocket: WebSocket) -> None:
    if websocket.application_state == WebSocketState.DISCONNECTED:
        return
    with contextlib.suppress(RuntimeError, OSError):  # the client has gone already
        await websocket.close(code=WS_TRY_AGAIN_LATER, reason="service unavailable")


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
    """Turns any exception that escaped the handlers into the generic 500 envelope,
    or into the 503 of an outage when it is one (raised outside a route, or of a type
    no handler is registered for, such as asyncpg's "cannot connect now").

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
        except Exception as exc:
            dependency = unavailable_dependency(exc)
            if dependency is not None and not started:
                _log_outage(dependency, exc, scope)
                await error_response(outage_error(dependency))(scope, receive, send)
                return
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
    # One handler for requests and WebSockets (Starlette types the two apart).
    outage_handler = cast("ExceptionHandler", _outage_handler)
    for outage_type in _OUTAGE_TYPES:
        app.add_exception_handler(outage_type, outage_handler)
    app.add_middleware(UnhandledErrorMiddleware)
