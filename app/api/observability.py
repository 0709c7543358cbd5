"""Request ids and HTTP/WebSocket metrics: one outermost pure-ASGI middleware.

* Request id: taken from ``X-Request-ID`` when it is a safe token (at most 128
  characters of letters, digits and ``._:-``), otherwise generated; bound into
  structlog's context for every log line of the request (uvicorn's access line
  included: it is written while the response starts, inside the request's context),
  returned in the response header and carried into Celery task logs (see
  :mod:`app.core.task_context`).
* Metrics: ``http_requests_total`` / ``http_request_duration_seconds`` labelled with
  the matched route's *template*, and the open WebSocket gauge.

A pure ASGI middleware rather than ``BaseHTTPMiddleware``: streaming bodies and
WebSockets pass through untouched and the context variables reach the endpoint.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS, WEBSOCKET_CONNECTIONS

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128
_SAFE_REQUEST_ID = re.compile(rf"[A-Za-z0-9._:\-]{{1,{MAX_REQUEST_ID_LENGTH}}}")
UNMATCHED_ROUTE = "<unmatched>"


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The client's id when it is safe to log and echo, a fresh one otherwise."""
    if value and _SAFE_REQUEST_ID.fullmatch(value):
        return value
    return new_request_id()


def route_template(scope: Scope) -> str:
    """``/v1/backtest/{task_id}`` for a matched route, a fixed label otherwise.

    FastAPI keeps included routers nested: ``scope["route"]`` holds the path relative
    to its router (``/backtest/{task_id}``), the effective route context the full one.
    """
    fastapi_scope: Any = scope.get("fastapi")
    context = (
        fastapi_scope.get("effective_route_context")
        if isinstance(fastapi_scope, dict)
        else None
    )
    route: Any = context if context is not None else scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED_ROUTE


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes all
                return None
    return None


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = accept_request_id(_header(scope, b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            if scope["type"] == "http":
                await self._http(scope, receive, send, request_id)
            else:
                await self._websocket(scope, receive, send, request_id)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> None:
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route, method = route_template(scope), str(scope.get("method", ""))
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            HTTP_REQUEST_DURATION.labels(method=method, route=route).observe(
                time.perf_counter() - started
            )

    async def _websocket(
        self, scope: Scope, receive: Receive, send: Send, request_id: str
    ) -> None:
        accepted = False

        async def send_with_id(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
                accepted = True
                WEBSOCKET_CONNECTIONS.inc()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if accepted:
                WEBSOCKET_CONNECTIONS.dec()
