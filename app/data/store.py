"""The price store: loads a dataset directory into an aligned :class:`MarketData`.

Two kinds of dataset exist: the **bundled** one (``sp500``, shipped in
``app/data/bundled``) and **imported** ones (``<datasets_dir>/<name>/``, written by
:mod:`app.data.importer`). Both use the format of :mod:`app.data.dataset_io`.

Loaded datasets are cached once per process, keyed by name, file path and modification
time, so a re-imported dataset is picked up and repeated loads return the same object.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from app.data import dataset_io
from app.data.catalog import DatasetInfo, SymbolCoverage, coverage_of
from app.data.paths import (
    BUNDLED_DIR,
    BUNDLED_NAME,
    DATASET_NAME_PATTERN,
    dataset_dir,
    has_prices,
    imported_names,
)
from app.engine.data import MarketData, SymbolInfo
from app.engine.errors import DataError

__all__ = [
    "BUNDLED_DIR",
    "BUNDLED_NAME",
    "DATASET_NAME_PATTERN",
    "DatasetInfo",
    "SymbolCoverage",
    "clear_cache",
    "list_datasets",
    "load_dataset",
    "read_dataset_directory",
    "symbol_coverage",
]


_lock = threading.RLock()
_data_cache: dict[tuple[str, str], tuple[int, MarketData]] = {}
_info_cache: dict[str, tuple[int, DatasetInfo]] = {}
_coverage_cache: weakref.WeakKeyDictionary[MarketData, tuple[SymbolCoverage, ...]] = (
    weakref.WeakKeyDictionary()
)


def clear_cache() -> None:
    """Forget every loaded dataset and summary (for tests)."""
    with _lock:
        _data_cache.clear()
        _info_cache.clear()
        _coverage_cache.clear()


def load_dataset(
    name: str | None = None,
    *,
    datasets_dir: Path | None = None,
    bundled_dir: Path | None = None,
) -> MarketData:
    """Load a dataset as aligned ``(n_days, n_symbols)`` float64 matrices.

    ``name`` ``None`` or ``"sp500"`` selects the bundled dataset (from ``bundled_dir``,
    default ``app/data/bundled``); any other name an imported dataset under
    ``datasets_dir``. Rows are the union of the sessions of all symbols (ascending),
    columns the stocks then the ETFs, each in alphabetical order, ``NaN`` where a
    symbol has no bar.
    Prices are in the dataset's currency, volume in shares. The result is cached per
    process and read-only. Raises :class:`InvalidInputError` (field ``dataset``) for an
    unknown name, :class:`DataError` for an unreadable file.
    """
    name = name or BUNDLED_NAME
    directory = dataset_dir(name, datasets_dir, bundled_dir)
    path = directory / dataset_io.PRICES_FILE
    key = (name, str(path))
    with _lock:
        mtime = path.stat().st_mtime_ns
        cached = _data_cache.get(key)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        data = read_dataset_directory(directory, name)
        _data_cache[key] = (mtime, data)
        return data


def list_datasets(
    datasets_dir: Path | None, *, bundled_dir: Path | None = None
) -> list[DatasetInfo]:
    """The bundled dataset followed by the imported ones (alphabetical).

    Reads only each file's footer (cached by modification time).
    """
    bundled = bundled_dir or BUNDLED_DIR
    infos = []
    if has_prices(bundled):
        infos.append(_dataset_info(BUNDLED_NAME, "bundled", bundled))
    if datasets_dir is not None:
        for name in imported_names(datasets_dir):
            infos.append(_dataset_info(name, "imported", datasets_dir / name))
    return infos


def symbol_coverage(data: MarketData) -> list[SymbolCoverage]:
    """Per symbol (in ``data.symbols`` order): descriptive info, first/last session
    with a close, number of sessions with a close and the last close. Cached per
    ``data`` object."""
    with _lock:
        cached = _coverage_cache.get(data)
        if cached is None:
            cached = coverage_of(data)
            _coverage_cache[data] = cached
    return list(cached)


# ----------------------------------------------------------------------- listing
def _dataset_info(
    name: str, source: Literal["bundled", "imported"], directory: Path
) -> DatasetInfo:
    path = directory / dataset_io.PRICES_FILE
    mtime = path.stat().st_mtime_ns
    with _lock:
        cached = _info_cache.get(str(path))
        if cached is not None and cached[0] == mtime:
            return cached[1]
    summary = dataset_io.read_summary(path)
    info = DatasetInfo(
        name=name,
        source=source,
        n_symbols=int(summary.get("n_symbols") or 0),
        first_date=dataset_io.parse_date(summary.get("first_date", "")),
        last_date=dataset_io.parse_date(summary.get("last_date", "")),
        n_rows=int(summary["n_rows"]),
    )
    with _lock:
        _info_cache[str(path)] = (mtime, info)
    return info


# ------------------------------------------------------------------------ reading
def read_dataset_directory(directory: Path, name: str) -> MarketData:
    """Read the dataset in ``directory`` (uncached; :func:`load_dataset` caches)."""
    path = directory / dataset_io.PRICES_FILE
    dataset_io.read_summary(path)  # refuses files without the micro-unit metadata
    parquet = pq.ParquetFile(path)
    infos = dataset_io.read_symbols(directory / dataset_io.SYMBOLS_FILE)
    flat, dates, symbols = _cell_index(parquet, infos)
    shape = (len(dates), len(symbols))
    matrices = {c: _scatter(parquet, c, flat, shape) for c in dataset_io.INT_COLUMNS}
    return MarketData(
        name=name,
        dates=dates,
        symbols=tuple(symbols),
        info=tuple(infos.get(s) or SymbolInfo(s) for s in symbols),
        **matrices,
    )


def _cell_index(
    parquet: pq.ParquetFile, infos: dict[str, SymbolInfo]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.datetime64], list[str]]:
    """Flat index ``row * n_symbols + col`` of every bar, the sessions, the symbols.

    Columns: stocks first, then ETFs, each alphabetical. The default universe (every
    stock) is then one contiguous block, which the engine takes as a zero-copy view.
    """
    keys = parquet.read(columns=["date", "symbol"])
    rows, dates = _day_rows(keys.column("date"))
    cols, symbols = _symbol_cols(keys.column("symbol"))
    is_etf = [(infos.get(s) or SymbolInfo(s)).type == "etf" for s in symbols]
    order = sorted(range(len(symbols)), key=lambda i: (is_etf[i], symbols[i]))
    new_col = np.empty(len(symbols), dtype=np.int64)
    new_col[order] = np.arange(len(symbols))
    rows *= len(symbols)
    rows += new_col[cols]
    return rows, dates, [symbols[i] for i in order]


def _day_rows(
    column: pa.ChunkedArray,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.datetime64]]:
    """Row index of every bar and the sorted unique sessions (O(n), no sort)."""
    # date32 viewed as int32 day numbers: zero-copy, no pandas involved.
    days = _to_numpy(pa.chunked_array([c.view(pa.int32()) for c in column.chunks]))
    days = days.astype(np.int64)
    if len(days) == 0:
        raise DataError("the dataset has no rows", field="dataset")
    first = int(days.min())
    offset = days - first
    present = np.zeros(int(offset.max()) + 1, dtype=bool)
    present[offset] = True
    row_of_offset = np.cumsum(present, dtype=np.int64) - 1
    sessions = (np.flatnonzero(present) + first).astype("datetime64[D]")
    return row_of_offset[offset], sessions


def _symbol_cols(column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Column index of every bar (symbols alphabetical) and the symbol list."""
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    encoded = pa.chunked_array(column.unify_dictionaries().chunks).combine_chunks()
    codes = _to_numpy(pa.chunked_array([encoded.indices])).astype(np.int64)
    dictionary = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    used = np.zeros(len(dictionary), dtype=bool)
    used[codes] = True
    used_codes = np.flatnonzero(used)
    order = used_codes[np.argsort(dictionary[used_codes].astype(str), kind="stable")]
    rank = np.empty(len(dictionary), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], [str(s) for s in dictionary[order]]


def _scatter(
    parquet: pq.ParquetFile,
    column: str,
    flat: npt.NDArray[np.int64],
    shape: tuple[int, int],
) -> npt.NDArray[np.float64]:
    values = _to_numpy(parquet.read(columns=[column]).column(column))
    out = np.full(shape[0] * shape[1], np.nan)
    if column == "volume":
        out[flat] = values
    else:
        out[flat] = dataset_io.from_micro(values)
    return out.reshape(shape)


def _to_numpy(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    """Null-free fixed-width column -> one numpy array, straight from the buffers.

    ``Array.to_numpy`` imports pandas (about 0.5 s cold), reading the buffers does not.
    """
    dtype = np.dtype(column.type.to_pandas_dtype())
    parts = []
    for chunk in column.chunks:
        if chunk.null_count:
            raise DataError("the dataset file contains missing values", field="dataset")
        buffer = chunk.buffers()[1]
        parts.append(
            np.frombuffer(
                buffer, dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize
            )
        )
    return np.concatenate(parts) if parts else np.empty(0, dtype)
