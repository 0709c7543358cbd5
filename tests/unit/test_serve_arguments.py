"""The uvicorn launcher's arguments (app.ops.serve)."""

from __future__ import annotations

import uvicorn

from app.core.config import Settings
from app.ops.serve import WORKER_HEALTHCHECK_SECONDS, uvicorn_arguments


def _parsed(arguments: list[str]) -> dict[str, object]:
    """What uvicorn's own command line makes of the arguments (no server started)."""
    command = uvicorn.main  # the click command the launcher runs
    with command.make_context("uvicorn", list(arguments)) as ctx:
        return dict(ctx.params)


def test_worker_health_check_bound_is_longer_than_uvicorns_default() -> None:
    args = uvicorn_arguments(["app.main:create_app", "--workers", "2"], Settings())

    params = _parsed(args)
    assert params["timeout_worker_healthcheck"] == WORKER_HEALTHCHECK_SECONDS
    assert WORKER_HEALTHCHECK_SECONDS > 5  # uvicorn's default killed busy workers


def test_a_launchers_own_health_check_bound_wins() -> None:
    args = uvicorn_arguments(
        ["app.main:create_app", "--timeout-worker-healthcheck", "7"], Settings()
    )

    assert _parsed(args)["timeout_worker_healthcheck"] == 7


def test_proxy_arguments_come_last_and_win() -> None:
    args = uvicorn_arguments(["app.main:create_app", "--proxy-headers"], Settings())

    assert _parsed(args)["proxy_headers"] is False  # no trusted proxies configured
