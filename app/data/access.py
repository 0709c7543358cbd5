"""Datasets as the API process uses them: loaded off the event loop, with a bad name
reported as the request's field error."""

from __future__ import annotations

import anyio

from app.core.config import Settings
from app.core.errors import ValidationFailed
from app.data.store import load_dataset
from app.engine.data import MarketData
from app.engine.errors import InvalidInputError


async def dataset_for(settings: Settings, name: str | None) -> MarketData:
    """The (process-cached) dataset; loading it the first time takes ~0.3 s."""
    try:
        return await anyio.to_thread.run_sync(
            lambda: load_dataset(name, datasets_dir=settings.resolved_datasets_dir)
        )
    except InvalidInputError as exc:
        raise ValidationFailed(exc.message, field="body.dataset") from exc
