"""Logging: one format through stdlib logging, secrets redacted, request ids bound
to every line of a request and carried into Celery task logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import structlog
from fastapi import FastAPI

from app.api.observability import ObservabilityMiddleware, accept_request_id
from app.core import task_context
from app.core.config import Settings
from app.core.logging import _HANDLER_NAME, REDACTED, configure_logging, redact_secrets

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLXZhbHVl"


def _redact(**event: Any) -> dict[str, Any]:
    return dict(redact_secrets(None, "info", event))


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Configure JSON logging into a buffer; restore a quiet console config after."""
    configure_logging(Settings(environment="test", log_json=True), force=True)
    handler = next(
        h for h in logging.getLogger().handlers if h.get_name() == _HANDLER_NAME
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        yield stream
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
        configure_logging(
            Settings(environment="test", log_json=False, log_level="WARNING"),
            force=True,
        )
        structlog.contextvars.clear_contextvars()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_redact_secrets_masks_sensitive_keys_at_any_depth() -> None:
    event = _redact(
        event="x",
        password="p1",
        db_password="p2",
        refresh_token="t1",
        Authorization="Bearer t2",
        body={"new_password": "p3", "user": {"api_key": "k"}},
    )

    assert event["password"] == event["db_password"] == REDACTED
    assert event["refresh_token"] == event["Authorization"] == REDACTED
    assert event["body"] == {"new_password": REDACTED, "user": {"api_key": REDACTED}}


def test_redact_secrets_masks_query_string_secrets() -> None:
    event = _redact(event="GET /v1/backtest/1/progress?token=abc.def&x=1&password=pw")

    assert event["event"] == (
        f"GET /v1/backtest/1/progress?token={REDACTED}&x=1&password={REDACTED}"
    )


def test_redact_secrets_masks_jwts_and_url_passwords() -> None:
    event = _redact(
        event=f"Authorization: Bearer {JWT}",
        url="postgresql+asyncpg://app:s3cret@db:5432/app",
    )

    assert JWT not in event["event"]
    assert event["url"] == f"postgresql+asyncpg://app:{REDACTED}@db:5432/app"


def test_uvicorn_websocket_access_line_is_redacted(json_logs: io.StringIO) -> None:
    # uvicorn's own call: logger.info('%s - "WebSocket %s" [accepted]', client, path)
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:50000",
        f"/v1/backtest/1/progress?token={JWT}",
    )
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:50000",
        "GET",
        "/v1/x?access_token=abc",
        "1.1",
        200,
    )

    output = json_logs.getvalue()

    assert JWT not in output
    assert "access_token=abc" not in output
    assert f"token={REDACTED}" in output
    assert all(line["logger"].startswith("uvicorn") for line in _lines(json_logs))


def test_exception_messages_are_redacted(json_logs: io.StringIO) -> None:
    log = structlog.get_logger("test")
    try:
        raise ValueError(f"cannot open ws://h/p?token={JWT}")
    except ValueError:
        log.exception("failed", password="hunter2")

    output = json_logs.getvalue()

    assert JWT not in output
    assert "hunter2" not in output
    assert _lines(json_logs)[0]["exception"]


def test_console_renderer_is_used_in_development() -> None:
    settings = Settings(environment="development")
    configure_logging(settings, force=True)
    handler = next(
        h for h in logging.getLogger().handlers if h.get_name() == _HANDLER_NAME
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        logging.getLogger("sqlalchemy.engine").warning("hello %s", "world")
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
        configure_logging(Settings(environment="test", log_level="WARNING"), force=True)

    assert "hello world" in stream.getvalue()
    assert not stream.getvalue().startswith("{")


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123", True),
        ("a.b:c_d-e", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("with space", False),
        ("new\nline", False),
        ("", False),
        (None, False),
    ],
)
def test_accept_request_id(given: str | None, kept: bool) -> None:
    result = accept_request_id(given)

    assert (result == given) is kept
    assert len(result) <= 128


async def test_request_id_is_bound_to_every_log_line_and_returned(
    json_logs: io.StringIO,
) -> None:
    app = FastAPI()
    app.add_middleware(ObservabilityMiddleware)

    @app.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        structlog.get_logger("test.endpoint").info("item.read", item_id=item_id)
        logging.getLogger("test.stdlib").info("stdlib line")
        return {"id": item_id}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/items/7", headers={"X-Request-ID": "req-42"})

    lines = [line for line in _lines(json_logs) if line["logger"].startswith("test")]
    assert response.headers["X-Request-ID"] == "req-42"
    assert [line["request_id"] for line in lines] == ["req-42", "req-42"]
    assert structlog.contextvars.get_contextvars() == {}


def test_request_id_travels_in_celery_headers_into_task_context() -> None:
    structlog.contextvars.bind_contextvars(request_id="req-7")
    headers: dict[str, Any] = {}
    task_context._on_publish(headers=headers)
    structlog.contextvars.clear_contextvars()
    task = SimpleNamespace(request=SimpleNamespace(request_id=headers["request_id"]))

    task_context._on_prerun(task_id="celery-1", task=task)
    bound = structlog.contextvars.get_contextvars()
    task_context._on_postrun()

    assert bound == {"request_id": "req-7", "celery_task_id": "celery-1"}
    assert structlog.contextvars.get_contextvars() == {}


def test_celery_info_lines_of_periodic_maintenance_tasks_are_left_out(
    json_logs: io.StringIO,
) -> None:
    """Embedded mode: Celery's own INFO lines (its real formats) for the sweeper and
    the outbox re-send, every few seconds, are dropped; a job's, and any warning,
    stay. (``json_logs`` configures settings without Redis: embedded.)"""
    from celery.app.trace import LOG_RECEIVED, LOG_SUCCESS  # noqa: PLC0415

    trace, strategy = (
        logging.getLogger("celery.app.trace"),
        logging.getLogger("celery.worker.strategy"),
    )
    for name in ("notifications.resend", "jobs.sweep", "jobs.run"):
        context = {"id": f"id-{name}", "name": name, "args": "()", "kwargs": "{}"}
        strategy.info(LOG_RECEIVED, context)
        trace.info(LOG_SUCCESS, {**context, "runtime": 0.01, "return_value": None})
    trace.warning(
        "Task %(name)s[%(id)s] retry", {"id": "x", "name": "notifications.resend"}
    )

    events = [line["event"] for line in _lines(json_logs)]

    assert events == [
        "Task jobs.run[id-jobs.run] received",
        "Task jobs.run[id-jobs.run] succeeded in 0.01s: None",
        "Task notifications.resend[x] retry",
    ]
