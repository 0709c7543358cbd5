"""The client's models against the service's OpenAPI schema (drift fails here), the
service's independence from the client, and the retry rules."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import typing
from pathlib import Path
from typing import Any

import httpx
import pytest
from backtest_client import models
from backtest_client._http import RetryPolicy, retry_delay
from backtest_client._requests import SUBMIT_ALIASES
from backtest_client.async_backtests import AsyncBacktests
from backtest_client.backtests import Backtests

from app.core.config import Settings
from app.main import create_app

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def schemas() -> dict[str, Any]:
    settings = Settings(environment="test", jwt_secret="x" * 48, log_level="WARNING")
    components: dict[str, Any] = create_app(settings).openapi()["components"]["schemas"]
    return components


def _fields(model: type[models.Model]) -> set[str]:
    return {f.name for f in dataclasses.fields(model)}  # type: ignore[arg-type]


# Where the service defines the WebSocket frame (the domain layout moves it).
_PROGRESS_MODULES = ("app.jobs.progress",)


def _progress_schema() -> dict[str, Any]:
    """The WebSocket frame is not an HTTP body, so not in OpenAPI: its pydantic
    model ``ProgressMessage`` documents it."""
    for name in _PROGRESS_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        if hasattr(module, "ProgressMessage"):
            schema: dict[str, Any] = module.ProgressMessage.model_json_schema()
            return schema
    pytest.fail(f"ProgressMessage not found in {_PROGRESS_MODULES}")


@pytest.mark.parametrize("model", models.SCHEMA_MODELS, ids=lambda m: m.__name__)
def test_model_fields_match_the_schema(
    model: type[models.Model], schemas: dict[str, Any]
) -> None:
    if model.__schema__ == "ProgressMessage":
        schema = _progress_schema()
    else:
        assert model.__schema__ in schemas, f"{model.__schema__} left the API"
        schema = schemas[model.__schema__]
    properties = set(schema["properties"])
    assert _fields(model) == properties, (
        f"{model.__name__} vs {model.__schema__}: client only "
        f"{_fields(model) - properties}, server only {properties - _fields(model)}"
    )
    # What the server always sends, the client never treats as optional.
    required = set(schema.get("required", []))
    defaults = {
        f.name
        for f in dataclasses.fields(model)  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING
    }
    if model is not models.BacktestRequest:  # request fields: None = server default
        assert not (required & defaults), f"{model.__name__}: {required & defaults}"


def test_status_values_match(schemas: dict[str, Any]) -> None:
    server = set(schemas["BacktestStatus"]["properties"]["status"]["enum"])
    assert set(typing.get_args(models.Status)) == server
    assert models.TERMINAL.issubset(server)


@pytest.mark.parametrize("resource", [Backtests, AsyncBacktests])
def test_submit_offers_every_request_field(
    resource: type[Any], schemas: dict[str, Any]
) -> None:
    parameters = set(inspect.signature(resource.submit).parameters)
    fields = {
        SUBMIT_ALIASES.get(p, p) for p in parameters - {"self", "idempotency_key"}
    }
    assert fields == set(schemas["BacktestRequest"]["properties"])


def test_literal_choices_match(schemas: dict[str, Any]) -> None:
    hints = typing.get_type_hints(models.BacktestRequest)
    for name in ("rebalancing", "execution"):
        client = {a for a in typing.get_args(hints[name]) if a is not type(None)}
        literal = next(iter(client))
        server = schemas["BacktestRequest"]["properties"][name]["enum"]
        assert set(typing.get_args(literal)) == set(server), name


def test_the_service_never_imports_the_client() -> None:
    offenders = []
    for path in (REPO / "app").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] == "backtest_client" for n in names):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def _response(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(status, headers=headers)


def test_retry_honours_retry_after_within_bounds() -> None:
    policy = RetryPolicy(max_retries=2, max_wait=10)
    wait = retry_delay(
        policy, attempt=0, method="GET", retry_allowed=True,
        response=_response(429, "3"),
    )  # fmt: skip
    assert wait == 3
    too_long = retry_delay(
        policy, attempt=0, method="GET", retry_allowed=True,
        response=_response(429, "30"),
    )  # fmt: skip
    assert too_long is None
    spent = retry_delay(
        policy, attempt=2, method="GET", retry_allowed=True,
        response=_response(503, "1"),
    )  # fmt: skip
    assert spent is None


def test_no_retry_for_unkeyed_posts_or_resent_deletes() -> None:
    policy = RetryPolicy()
    post = retry_delay(
        policy, attempt=0, method="POST", retry_allowed=False,
        response=_response(503, "1"),
    )  # fmt: skip
    assert post is None
    # A DELETE whose answer was lost may have acted: sending it again could delete
    # the job it cancelled.
    lost = retry_delay(
        policy, attempt=0, method="DELETE", retry_allowed=True,
        error=httpx.ReadTimeout("lost"),
    )  # fmt: skip
    assert lost is None
    never_sent = retry_delay(
        policy, attempt=0, method="POST", retry_allowed=False,
        error=httpx.ConnectError("refused"),
    )  # fmt: skip
    assert never_sent == policy.backoff
    assert (
        retry_delay(
            policy, attempt=0, method="GET", retry_allowed=True, response=_response(404)
        )
        is None
    )


def test_webhook_events_match_the_service() -> None:
    """Every event type the service accepts, and no other, is in the client."""
    from app import kinds  # noqa: PLC0415 - registers the job kinds
    from app.webhooks.schemas import OTHER_EVENTS  # noqa: PLC0415
    from app.webhooks.service import check_events  # noqa: PLC0415

    service = {
        f"{kind.name}.{status}"
        for kind in kinds.KINDS
        for status in ("completed", "failed")
    } | set(OTHER_EVENTS)
    assert set(models.WEBHOOK_EVENTS) == service
    assert check_events(list(models.WEBHOOK_EVENTS)) == list(models.WEBHOOK_EVENTS)
