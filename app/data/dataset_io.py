"""On-disk format of a price dataset, shared by the build script and the importer.

A dataset is a directory holding two files:

* ``prices.parquet``: long format, one row per (symbol, session), sorted by symbol then
  date. Columns ``date`` (date32), ``symbol`` (dictionary-encoded string), ``open, high,
  low, close, adj_close`` as int64 **micro-units** (``round(price * 1e6)``) and
  ``volume`` (int64 shares). Integers with delta encoding and zstd compress about twice
  as well as float64. The scale and a summary (name, symbol count, date range) live in
  the schema metadata so listing datasets only reads the footer.
* ``symbols.csv``: one row per symbol with at least ``symbol,name,sector,type``
  (``type`` is ``stock`` or ``etf``); other columns are kept but ignored.

Prices with at most 6 decimals and below ~9e9 survive the micro-unit round trip
bit-exactly (``micro / 1e6`` is the correctly rounded nearest double); finer digits are
rounded to the nearest micro-unit.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from app.data import paths
from app.engine.data import SymbolInfo
from app.engine.errors import DataError

# The two files of a dataset (named in the pyarrow-free app.data.paths).
PRICES_FILE = paths.PRICES_FILE
SYMBOLS_FILE = paths.SYMBOLS_FILE
PRICE_SCALE = 1_000_000
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
INT_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
SYMBOL_FIELDS: tuple[str, ...] = ("symbol", "name", "sector", "type")
#: Largest price the int64 micro-unit encoding holds with float64 precision intact.
MAX_PRICE = 9.0e9


def to_micro(prices: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Prices (float64, any shape) -> int64 micro-units, ``round(price * 1e6)``."""
    return np.rint(prices * PRICE_SCALE).astype(np.int64)


def from_micro(micro: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """int64 micro-units -> float64 prices (exact inverse of :func:`to_micro` for
    prices with at most 6 decimals)."""
    return micro / float(PRICE_SCALE)


def write_prices(
    path: Path,
    *,
    name: str,
    dates: npt.NDArray[np.datetime64],
    symbols: npt.NDArray[np.str_] | npt.NDArray[np.object_],
    prices: Mapping[str, npt.NDArray[np.float64]],
    volume: npt.NDArray[np.int64],
) -> int:
    """Write the long-format price table to ``path``; returns the number of rows.

    ``dates`` (datetime64[D]), ``symbols`` and each array of ``prices`` (keys
    :data:`PRICE_COLUMNS`, float64) and ``volume`` are aligned 1-D arrays of one
    length; rows are re-sorted by symbol then date here.
    """
    days = dates.astype("datetime64[D]")
    order = np.lexsort((days, symbols))
    sorted_days = days[order]
    sym_sorted = np.asarray(symbols, dtype=object)[order]
    arrays: dict[str, pa.Array] = {
        "date": pa.array(sorted_days, type=pa.date32()),
        "symbol": pa.array(sym_sorted, type=pa.string()).dictionary_encode(),
    }
    for col in PRICE_COLUMNS:
        arrays[col] = pa.array(to_micro(prices[col][order]), type=pa.int64())
    arrays["volume"] = pa.array(volume[order].astype(np.int64), type=pa.int64())
    table = pa.table(arrays)
    n_symbols = len(np.unique(sym_sorted)) if len(order) else 0
    metadata = {
        b"price_scale": str(PRICE_SCALE).encode(),
        b"dataset": name.encode(),
        b"n_symbols": str(n_symbols).encode(),
        b"first_date": str(sorted_days.min()).encode() if len(order) else b"",
        b"last_date": str(sorted_days.max()).encode() if len(order) else b"",
    }
    table = table.replace_schema_metadata(metadata)
    pq.write_table(
        table,
        path,
        compression="zstd",
        compression_level=19,
        use_dictionary=["symbol"],
        column_encoding=dict.fromkeys(INT_COLUMNS, "DELTA_BINARY_PACKED"),
    )
    return int(table.num_rows)


def write_symbols(path: Path, rows: Sequence[Mapping[str, str]]) -> None:
    """Write ``symbols.csv``; the header is the union of the rows' keys, the
    :data:`SYMBOL_FIELDS` first."""
    extra = [k for r in rows for k in r if k not in SYMBOL_FIELDS]
    fields = [*SYMBOL_FIELDS, *dict.fromkeys(extra)]
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def read_symbols(path: Path) -> dict[str, SymbolInfo]:
    """``symbols.csv`` -> {symbol: :class:`SymbolInfo`}; empty if the file is absent."""
    if not path.exists():
        return {}
    with path.open(newline="", encoding="utf-8") as fh:
        return {
            row["symbol"]: SymbolInfo(
                symbol=row["symbol"],
                name=row.get("name") or "",
                sector=row.get("sector") or "",
                type=row.get("type") or "stock",
            )
            for row in csv.DictReader(fh)
            if row.get("symbol")
        }


def read_summary(path: Path) -> dict[str, str]:
    """The summary stored in the schema metadata of ``prices.parquet`` plus ``n_rows``.

    Reads the footer only. Raises :class:`DataError` if the file is not a dataset.
    """
    try:
        meta = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(
            f"cannot read dataset file {path}: {exc}", field="dataset"
        ) from exc
    raw = schema.metadata or {}
    if raw.get(b"price_scale") != str(PRICE_SCALE).encode():
        raise DataError(
            f"{path} is not a price dataset (no price_scale={PRICE_SCALE} metadata); "
            "rebuild it with scripts/build_dataset.py or re-import it",
            field="dataset",
        )
    summary = {k.decode(): v.decode() for k, v in raw.items() if k != b"ARROW:schema"}
    summary["n_rows"] = str(meta.num_rows)
    return summary


def parse_date(text: str) -> dt.date | None:
    """ISO ``YYYY-MM-DD`` -> date, ``None`` for an empty string."""
    return dt.date.fromisoformat(text) if text else None
