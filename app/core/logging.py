"""Logging: structlog rendered through stdlib logging, so uvicorn, SQLAlchemy, Celery
and our own ``structlog.get_logger()`` calls share one format (JSON or console).

Request-scoped context (a request id, the user id) is added with
``structlog.contextvars.bind_contextvars(...)``: ``merge_contextvars`` is the first
processor, so a middleware that binds at the start of a request and clears at the end
is all a request-id feature needs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from app.core.config import Settings

REDACTED = "[REDACTED]"
_SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "password_hash",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "secret",
        "jwt_secret",
        "api_key",
        "cookie",
    }
)
# ``token=...`` (and similar) inside URLs / query strings, e.g. a WebSocket URL.
_QUERY_SECRET = re.compile(
    r"(?i)\b(token|access_token|password|secret|api_key)=([^&\s\"']+)"
)
_HANDLER_NAME = "app-structlog"
_configured = False


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _is_sensitive(k) else _redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


def _is_sensitive(key: object) -> bool:
    return isinstance(key, str) and key.lower() in _SENSITIVE_KEYS


def redact_secrets(
    _: WrappedLogger, __: str, event_dict: EventDict
) -> MutableMapping[str, Any]:
    """structlog processor: mask secret-looking keys and ``token=`` in strings."""
    return {
        key: REDACTED if _is_sensitive(key) else _redact_value(value)
        for key, value in event_dict.items()
    }


def _drop_color_message(
    _: WrappedLogger, __: str, event_dict: EventDict
) -> MutableMapping[str, Any]:
    """uvicorn passes an ANSI-coloured copy of each message as an ``extra``."""
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def _render_chain(settings: Settings) -> list[Processor]:
    as_json = (
        settings.log_json
        if settings.log_json is not None
        else settings.environment == "production"
    )
    if as_json:
        return [
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ]
    # The console renderer formats exc_info itself.
    return [structlog.dev.ConsoleRenderer(colors=False)]


def configure_logging(settings: Settings, *, force: bool = False) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    global _configured  # noqa: PLW0603 - process-wide, idempotent setup
    if _configured and not force:
        return
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_render_chain(settings),
        ],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Replace only our own handler: others (pytest's capture, a host app's) stay.
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # Let uvicorn's loggers propagate to the root handler instead of printing twice.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    _configured = True
