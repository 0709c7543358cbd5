"""Rendering errors at the HTTP edge: one handler per error family, all into the
envelope of :func:`app.core.errors.error_body`.

:class:`~app.core.errors.AppError` subclasses, FastAPI's validation errors and
Starlette's HTTP errors (404, 405, ...) are rendered by handlers; unexpected
exceptions become a generic 500 whose traceback is logged, never echoed. An
infrastructure outage (:func:`app.core.outages.unavailable_dependency`) becomes a 503
with ``Retry-After`` wherever it surfaces (route, dependency, middleware), or a
WebSocket close 1013, and neither its text nor a connection string reaches the client.
"""

from __future__ import annotations

import contextlib
from http import HTTPStatus
from typing import cast

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
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

from app.core.errors import AppError, error_body, field_path
from app.core.outages import (
    OUTAGE_TYPES,
    WS_TRY_AGAIN_LATER,
    outage_error,
    unavailable_dependency,
)

logger = structlog.get_logger(__name__)


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
    for outage_type in OUTAGE_TYPES:
        app.add_exception_handler(outage_type, outage_handler)
    app.add_middleware(UnhandledErrorMiddleware)
