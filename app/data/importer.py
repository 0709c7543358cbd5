"""Import a user's price file (CSV or Parquet, long format) as a named dataset.

Expected columns (header names are case-insensitive; spaces count as underscores):

* required ``date, symbol, open, high, low, close, volume``: one row per (date, symbol),
  ``date`` as ``YYYY-MM-DD``, prices split-adjusted in one currency, volume in shares
  (fractional volumes are rounded to whole shares);
* optional ``adj_close`` (split- and dividend-adjusted close; missing means "no
  dividends": it is set equal to ``close``) and per-symbol ``name, sector, type``
  (``stock`` or ``etf``; the first non-empty value per symbol is kept).

Every problem is reported with its location (CSV: 1-based line number in the file,
header = line 1; Parquet: 0-based row index) and what to fix; up to
:data:`MAX_PROBLEMS` problems are raised together as one :class:`DataError`. Prices are
stored as micro-units (6 decimals, see :mod:`app.data.dataset_io`). The dataset is
written to a temporary directory and moved into place atomically: a failed import
leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from app.data import dataset_io, store
from app.data.catalog import catalog_of_directory, write_catalog
from app.data.import_checks import ValidFrame, validate
from app.data.store import BUNDLED_NAME, DATASET_NAME_PATTERN, DatasetInfo
from app.engine.errors import DataError, InvalidInputError

MAX_ROWS = 5_000_000
MAX_PROBLEMS = 20
REQUIRED_COLUMNS: tuple[str, ...] = (
    "date", "symbol", "open", "high", "low", "close", "volume",
)  # fmt: skip
OPTIONAL_COLUMNS: tuple[str, ...] = ("adj_close", "name", "sector", "type")
_NUMERIC = ("open", "high", "low", "close", "adj_close", "volume")
_NA_TOKENS = ["", "NaN", "nan", "NA", "N/A", "null", "NULL", "None"]
_PARQUET_MAGIC = b"PAR1"


def import_dataset(
    path: Path, *, name: str, datasets_dir: Path, replace: bool = False
) -> DatasetInfo:
    """Validate ``path`` and store it as dataset ``name`` under ``datasets_dir``.

    Returns the new dataset's summary. Raises :class:`InvalidInputError` (field
    ``name``) for a bad or taken name, :class:`DataError` for an unreadable or invalid
    file (field ``"row N, column C"`` of the first problem). With ``replace=True`` an
    existing dataset of that name is swapped out only once the new one is complete.
    """
    check_name(name)
    target = datasets_dir / name
    if target.exists() and not replace:
        raise InvalidInputError(
            f"dataset {name!r} already exists; choose another name or pass replace",
            field="name",
        )
    frame, is_csv = _read(path)
    valid = validate(frame, is_csv=is_csv, max_problems=MAX_PROBLEMS)
    _write_atomically(valid, name=name, target=target, source=path.name)
    return _info(name, datasets_dir)


def check_name(name: str) -> None:
    """Refuse dataset names that are not ``[a-z0-9][a-z0-9_-]{0,63}`` or reserved."""
    if not DATASET_NAME_PATTERN.fullmatch(name):
        raise InvalidInputError(
            f"invalid dataset name {name!r}: use 1-64 lower-case letters, digits, "
            "'-' or '_', starting with a letter or digit",
            field="name",
        )
    if name == BUNDLED_NAME:
        raise InvalidInputError(
            f"{BUNDLED_NAME!r} is the bundled dataset; choose another name",
            field="name",
        )


# ------------------------------------------------------------------------ reading
def _read(path: Path) -> tuple[pd.DataFrame, bool]:
    """The file as a frame with normalised column names, and whether it is CSV."""
    if not path.is_file():
        raise DataError(f"file not found: {path}", field="file")
    if path.stat().st_size == 0:
        raise DataError(
            f"{path.name} is empty; it needs a header and rows", field="file"
        )
    with path.open("rb") as fh:
        is_parquet = fh.read(4) == _PARQUET_MAGIC
    frame = _read_parquet(path) if is_parquet else _read_csv(path)
    if len(frame) > MAX_ROWS:
        raise _too_many_rows(path)
    _check_columns(list(frame.columns), is_csv=not is_parquet)
    if not is_parquet:
        frame = _drop_blank_lines(frame)
    if frame.empty:
        raise DataError(f"{path.name} has a header but no data rows", field="file")
    return frame, not is_parquet


def _too_many_rows(path: Path) -> DataError:
    return DataError(
        f"{path.name} has more than {MAX_ROWS:,} rows; split it into several "
        "datasets (e.g. by symbol or period)",
        field="file",
    )


def _normalise(column: object) -> str:
    return re.sub(r"\s+", "_", str(column).strip().lower())


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        header = pd.read_csv(path, nrows=0).columns
        names = [_normalise(c) for c in header]
        _check_unique(names, is_csv=True)
        return pd.read_csv(
            path,
            header=0,
            names=names,
            dtype={c: str for c in names if c not in _NUMERIC},
            keep_default_na=False,
            na_values={c: _NA_TOKENS for c in names if c in _NUMERIC},
            skip_blank_lines=False,
            nrows=MAX_ROWS + 1,
            low_memory=False,
        )
    except pd.errors.EmptyDataError as exc:
        raise DataError(
            f"{path.name} is empty; it needs a header", field="file"
        ) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(
            f"{path.name} is not a readable CSV file ({exc}); save it as UTF-8 CSV "
            "with a header line",
            field="file",
        ) from exc


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        parquet = pq.ParquetFile(path)
        too_big = parquet.metadata.num_rows > MAX_ROWS
        frame: pd.DataFrame = pd.DataFrame() if too_big else parquet.read().to_pandas()
    except (OSError, ValueError) as exc:
        raise DataError(
            f"{path.name} is not a readable Parquet file ({exc})", field="file"
        ) from exc
    if too_big:
        raise _too_many_rows(path)
    frame.columns = [_normalise(c) for c in frame.columns]
    _check_unique(list(frame.columns), is_csv=False)
    return frame.reset_index(drop=True)


def _check_unique(names: list[str], *, is_csv: bool) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        where = "row 1" if is_csv else "schema"
        raise DataError(
            f"{'line 1 (header)' if is_csv else 'schema'}: column(s) "
            f"{', '.join(repeated)} appear more than once; keep one of each",
            field=f"{where}, column {repeated[0]}",
        )


def _check_columns(found: list[str], *, is_csv: bool) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if not missing:
        return
    where = "line 1 (header)" if is_csv else "schema"
    raise DataError(
        f"{where}: missing required column(s) {', '.join(missing)}; found "
        f"{', '.join(found) or 'none'}. The file needs the columns "
        f"{','.join(REQUIRED_COLUMNS)} (optional: {','.join(OPTIONAL_COLUMNS)})",
        field=f"{'row 1' if is_csv else 'schema'}, column {missing[0]}",
    )


def _drop_blank_lines(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop empty lines, keeping the original index (it maps to line numbers)."""
    blank = np.ones(len(frame), dtype=bool)
    for c in REQUIRED_COLUMNS:
        text = frame[c].astype("string").str.strip().fillna("")
        blank &= (text == "").to_numpy(dtype=bool)
    kept: pd.DataFrame = frame.loc[~blank]
    return kept


# ------------------------------------------------------------------------ writing
def _write_atomically(
    valid: ValidFrame, *, name: str, target: Path, source: str
) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0o700 would hide the dataset from other users
        dataset_io.write_prices(
            staging / dataset_io.PRICES_FILE,
            name=name,
            dates=valid.dates,
            symbols=valid.symbols,
            prices=valid.prices,
            volume=valid.volume,
        )
        rows = [{**r, "source": source} for r in valid.symbol_rows]
        dataset_io.write_symbols(staging / dataset_io.SYMBOLS_FILE, rows)
        # The light catalog the API validates against (it never loads the prices).
        write_catalog(staging, catalog_of_directory(staging, name))
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target``; an existing ``target`` is replaced only after
    the move succeeded (restored if it fails)."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError as exc:
        if old is not None:
            os.replace(old, target)
        raise DataError(
            f"could not store dataset {target.name!r} ({exc}); try again",
            field="name",
        ) from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _info(name: str, datasets_dir: Path) -> DatasetInfo:
    return next(i for i in store.list_datasets(datasets_dir) if i.name == name)
