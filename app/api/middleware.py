"""ASGI middleware of the limits: request-body size (413) and rate-limit headers.

``LimitsMiddleware``:

* refuses a body over ``MAX_REQUEST_BODY_BYTES`` with 413 in the error envelope:
  at once when ``Content-Length`` says so, otherwise (chunked uploads) as soon as the
  bytes received pass the limit, before the application sees any of them;
* adds the rate-limit headers of the decision a dependency stored in
  ``request.state.rate_limit`` to the response, whatever its status (a header the
  response already has, e.g. on a 429, is kept).
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_response
from app.core.errors import AppError
from app.core.rate_limit import STATE_KEY, Decision


class PayloadTooLarge(AppError):  # noqa: N818 - the public error code
    def __init__(self, limit: int) -> None:
        super().__init__(
            "PayloadTooLarge",
            f"Request body too large: at most {limit} bytes.",
            413,
        )


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        too_large = PayloadTooLarge(self.max_body_bytes)
        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await error_response(too_large)(scope, receive, send)
            return
        if length is None and _may_have_body(scope):
            messages = await self._buffer(receive)
            if messages is None:
                await error_response(too_large)(scope, receive, send)
                return
            receive = _replay(messages, receive)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                decision = state.get(STATE_KEY)
                if isinstance(decision, Decision):
                    headers = MutableHeaders(scope=message)
                    for name, value in decision.headers().items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _buffer(self, receive: Receive) -> list[Message] | None:
        """The request's body messages, or None once they exceed the limit."""
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                return None
            if not message.get("more_body", False):
                return messages


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _may_have_body(scope: Scope) -> bool:
    return any(
        name == b"transfer-encoding" for name, _ in scope.get("headers", [])
    ) and scope.get("method") in {"POST", "PUT", "PATCH"}


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
