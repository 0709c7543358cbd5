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
import structlog.tracebacks
from structlog.typing import EventDict, Processor, WrappedLogger

from app.core.config import Settings
from app.core.queue import RESEND_TASK, SWEEP_TASK

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
# Key names containing one of these are masked whatever their value.
_SENSITIVE_PARTS = ("password", "secret", "authorization", "cookie", "api_key")
# ``token=...`` (and similar) inside URLs / query strings, e.g. a WebSocket URL.
_QUERY_SECRET = re.compile(
    r"(?i)\b([\w-]*(?:token|password|passwd|secret|api_key|apikey))=([^&\s\"']+)"
)
# A JWT anywhere in a string (``Bearer eyJ...``, a pasted URL, an error message).
_JWT = re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]*")
# The password of a connection URL: ``scheme://user:password@host``.
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)")
# Without local variables: a frame's locals can hold a password or a token in a form
# no pattern recognises (an object's repr).
_DICT_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)
_HANDLER_NAME = "app-structlog"
_configured = False


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        # Each pattern needs a marker a plain substring test finds far faster than
        # the regex scan; most log values (every access line) have none of them.
        if "=" in value:
            value = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", value)
        if "://" in value:
            value = _URL_PASSWORD.sub(
                lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", value
            )
        if "eyJ" in value:
            value = _JWT.sub(REDACTED, value)
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _is_sensitive(k) else _redact_value(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


def _is_sensitive(key: object) -> bool:
    if not isinstance(key, str):
        return False
    lowered = key.lower()
    return (
        lowered in _SENSITIVE_KEYS
        or lowered.endswith("_token")
        or any(part in lowered for part in _SENSITIVE_PARTS)
    )


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
    # Tracebacks are rendered to data first and redacted again: an exception message
    # can carry a URL with a token or a DSN with a password.
    if as_json:
        return [
            _DICT_TRACEBACKS,
            redact_secrets,
            structlog.processors.JSONRenderer(),
        ]
    return [
        structlog.processors.format_exc_info,
        redact_secrets,
        structlog.dev.ConsoleRenderer(colors=False),
    ]


# Embedded mode: the periodic maintenance tasks (the sweeper, the outbox re-send:
# every few seconds, nearly always with nothing to do) would put Celery's "Task ...
# received" and "... succeeded" INFO lines in the terminal of `scripts/run.sh` every
# few seconds, drowning what matters. Those two INFO lines are left out for them;
# their warnings and errors (a failure, a retry) stay, what they do is logged by the
# tasks themselves, and at DEBUG everything shows. A distributed worker's log keeps
# them (its operators read it to see that maintenance runs).
QUIET_PERIODIC_TASKS = frozenset({SWEEP_TASK, RESEND_TASK})


class QuietPeriodicTasks(logging.Filter):
    """Drops Celery's INFO records about :data:`QUIET_PERIODIC_TASKS` (their
    arguments are a mapping naming the task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.INFO or not record.name.startswith("celery."):
            return True
        args = record.args
        return not (
            isinstance(args, Mapping) and args.get("name") in QUIET_PERIODIC_TASKS
        )


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
    if settings.embedded:
        handler.addFilter(QuietPeriodicTasks())
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
