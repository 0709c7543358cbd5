"""Where datasets live and how a name resolves to a directory.

Light on purpose (no pyarrow, no numpy): the API process resolves dataset names with
it and reads only the light catalog (:mod:`app.data.catalog`); workers load the
prices (:mod:`app.data.store`).
"""

from __future__ import annotations

import re
from pathlib import Path

from app.engine.errors import DataError, InvalidInputError

BUNDLED_NAME = "sp500"
BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
#: Names of imported datasets (also their directory names).
DATASET_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: The two files of a dataset (format: :mod:`app.data.dataset_io`).
PRICES_FILE = "prices.parquet"
SYMBOLS_FILE = "symbols.csv"


def dataset_dir(
    name: str, datasets_dir: Path | None, bundled_dir: Path | None = None
) -> Path:
    """The directory of dataset ``name`` (the bundled one or an imported one).

    Raises :class:`InvalidInputError` (field ``dataset``) for an unknown name and
    :class:`DataError` if the bundled dataset is missing.
    """
    if name == BUNDLED_NAME:
        directory = bundled_dir or BUNDLED_DIR
        if not has_prices(directory):
            raise DataError(
                f"the bundled dataset is missing from {directory}; "
                "run scripts/build_dataset.py",
                field="dataset",
            )
        return directory
    if datasets_dir is not None and name in imported_names(datasets_dir):
        return datasets_dir / name
    available = [BUNDLED_NAME, *imported_names(datasets_dir)]
    raise InvalidInputError(
        f"unknown dataset {name!r}; available: {', '.join(available)}",
        field="dataset",
    )


def imported_names(datasets_dir: Path | None) -> list[str]:
    """The imported datasets under ``datasets_dir`` (alphabetical); a directory
    counts once its prices file is in place (the importer swaps it in whole)."""
    if datasets_dir is None or not datasets_dir.is_dir():
        return []
    return sorted(
        d.name
        for d in datasets_dir.iterdir()
        if DATASET_NAME_PATTERN.fullmatch(d.name)
        and d.name != BUNDLED_NAME
        and has_prices(d)
    )


def has_prices(directory: Path) -> bool:
    return (directory / PRICES_FILE).is_file()
