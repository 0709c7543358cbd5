"""Datasets as the API process uses them: their light catalogs
(:mod:`app.data.catalog`), read off the event loop, with a bad name reported as the
request's field error. The API never loads the price matrices; workers do
(:func:`app.data.store.load_dataset`)."""

from __future__ import annotations

import anyio

from app.core.config import Settings
from app.core.errors import ValidationFailed
from app.data.catalog import DatasetCatalog, DatasetInfo, load_catalog
from app.data.paths import (
    BUNDLED_DIR,
    BUNDLED_NAME,
    dataset_dir,
    has_prices,
    imported_names,
)
from app.engine.errors import InvalidInputError


def catalog(settings: Settings, name: str | None) -> DatasetCatalog:
    """The (process-cached) catalog of dataset ``name`` (``None``: the bundled one).
    Raises :class:`InvalidInputError` (field ``dataset``) for an unknown name."""
    name = name or BUNDLED_NAME
    directory = dataset_dir(name, settings.resolved_datasets_dir)
    return load_catalog(directory, name)


async def catalog_for(settings: Settings, name: str | None) -> DatasetCatalog:
    """:func:`catalog` in a thread; an unknown name is a 400 on ``body.dataset``."""
    try:
        return await anyio.to_thread.run_sync(lambda: catalog(settings, name))
    except InvalidInputError as exc:
        raise ValidationFailed(exc.message, field="body.dataset") from exc


def list_datasets(settings: Settings) -> list[DatasetInfo]:
    """The bundled dataset followed by the imported ones (alphabetical), from their
    catalogs."""
    datasets_dir = settings.resolved_datasets_dir
    infos = []
    if has_prices(BUNDLED_DIR):
        infos.append(load_catalog(BUNDLED_DIR, BUNDLED_NAME).info("bundled"))
    for name in imported_names(datasets_dir):
        directory = datasets_dir / name
        infos.append(load_catalog(directory, name).info("imported"))
    return infos
