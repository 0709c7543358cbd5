"""``uvicorn tests.integration.slow_app:create_app --factory``: the real app with the
engine slowed down by ``TEST_ENGINE_CHUNK_DELAY_SECONDS`` (see ``slow_engine``)."""

from __future__ import annotations

from typing import Any

from tests.integration import slow_engine


def create_app() -> Any:
    slow_engine.install()
    from app.main import create_app as real_create_app  # noqa: PLC0415

    return real_create_app()
