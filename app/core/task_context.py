"""The request id travels with a Celery message (a message header) into the task's
log context, next to the Celery task id; the task itself binds ``task_id`` (the
backtest id) and ``user_id`` once it has loaded the job.

Publisher side (``before_task_publish``): the ``request_id`` bound in structlog's
context by the HTTP middleware is copied into the message headers. ``anyio``'s
``to_thread.run_sync`` copies the context into the thread that sends the message.
Worker side (``task_prerun`` / ``task_postrun``): the header is bound into structlog's
context for the duration of the task and cleared afterwards.
"""

from __future__ import annotations

from typing import Any

import structlog
from celery import signals

REQUEST_ID_HEADER = "request_id"
_DISPATCH = "app.core.task_context"


def _on_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


def request_id_of(task: Any) -> str | None:
    """The header as Celery exposes it on ``task.request`` (custom headers become
    attributes of the request context)."""
    request = getattr(task, "request", None)
    value = getattr(request, REQUEST_ID_HEADER, None)
    headers = getattr(request, "headers", None)
    if value is None and isinstance(headers, dict):
        value = headers.get(REQUEST_ID_HEADER)
    return str(value) if value else None


def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    context: dict[str, str] = {"celery_task_id": str(task_id)}
    if request_id := request_id_of(task):
        context["request_id"] = request_id
    structlog.contextvars.bind_contextvars(**context)


def _on_postrun(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


def install() -> None:
    """Connect the handlers (idempotent: fixed dispatch uids)."""
    signals.before_task_publish.connect(
        _on_publish, weak=False, dispatch_uid=f"{_DISPATCH}.publish"
    )
    signals.task_prerun.connect(
        _on_prerun, weak=False, dispatch_uid=f"{_DISPATCH}.prerun"
    )
    signals.task_postrun.connect(
        _on_postrun, weak=False, dispatch_uid=f"{_DISPATCH}.postrun"
    )
