"""Control characters in the URL: one check for every route's query parameters and
path, before routing (see :mod:`app.core.text`; bodies are checked by their schema)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response
from app.core.errors import AppError, NotFound, ValidationFailed
from app.core.text import UNSAFE_TEXT_MESSAGE, is_safe_text


def unsafe_query_field(scope: Scope) -> str | None:
    """``query.<name>`` of the first unsafe query parameter, else None."""
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        if not is_safe_text(value) or not is_safe_text(name):
            return f"query.{name}" if is_safe_text(name) else "query"
    return None


class SafeTextMiddleware:
    """A control character in a query parameter (name or value): 400 in the error
    envelope naming the parameter. In the path: 404 (no resource has such a name;
    path parameters are ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            error: AppError | None = None
            if field := unsafe_query_field(scope):
                error = ValidationFailed(f"{field} {UNSAFE_TEXT_MESSAGE}", field=field)
            elif not is_safe_text(scope.get("path", "")):
                error = NotFound()
            if error is not None:
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)
