"""The light catalog of a dataset: what the API process needs to validate requests and
answer the catalog routes, without the price matrices.

A dataset directory (:mod:`app.data.dataset_io`) holds, beside ``prices.parquet``, a
generated ``catalog.json`` (a few hundred KB): the sessions, every symbol's
description and coverage (first/last session with a close, sessions with a close,
the last close, the runs of sessions with a bar), the row count and, for the bundled
dataset, the S&P 500 coverage per year. ``scripts/build_dataset.py`` and the importer
write it from the loaded dataset (:func:`write_catalog`); a test checks that the
shipped file matches the data.

The API process reads only this file (:func:`load_catalog`): the dataset itself
(~300 MB as float64 matrices, plus pyarrow to read it) is loaded by workers only.
For validation the catalog builds a :meth:`DatasetCatalog.skeleton`: a real
:class:`MarketData` with the dataset's sessions, symbols and descriptions whose
price matrices are zero-byte broadcasts, so the engine's own ``check_config`` runs on
it unchanged. The one check that reads prices (a benchmark needs a close on the
first session of the range) is answered from the runs
(:meth:`DatasetCatalog.has_bar`).

A catalog whose recorded ``prices.parquet`` size differs from the file's (a dataset
rebuilt without it) or a missing one is rebuilt from the data the first time it is
asked for, and written beside it when the directory is writable; that costs one
dataset load in that process, and is logged.

This module imports neither pyarrow nor the store at import time.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from app.data.membership import YearCoverage, coverage_by_year, has_membership
from app.data.paths import PRICES_FILE
from app.engine.data import MarketData, SymbolInfo

CATALOG_FILE = "catalog.json"
#: Bumped when the file's layout changes; an older file is rebuilt.
CATALOG_FORMAT = 1

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetInfo:
    """Summary of one dataset, as listed by ``list_datasets``."""

    name: str
    source: Literal["bundled", "imported"]
    n_symbols: int
    first_date: dt.date | None
    last_date: dt.date | None
    n_rows: int


@dataclass(frozen=True)
class SymbolCoverage:
    """Where one symbol has data; ``n_days`` counts sessions with a close."""

    symbol: str
    name: str
    sector: str
    type: str
    first_date: dt.date | None
    last_date: dt.date | None
    n_days: int
    last_close: float | None


Runs = tuple[tuple[int, int], ...]  # inclusive (first_row, last_row) of bars


@dataclass(frozen=True, eq=False)
class DatasetCatalog:
    """One dataset without its prices (module docstring). ``symbols`` and
    ``runs`` are in the dataset's column order (stocks, then ETFs, alphabetical)."""

    name: str
    n_rows: int
    prices_bytes: int
    dates: npt.NDArray[np.datetime64]
    symbols: tuple[SymbolCoverage, ...]
    runs: tuple[Runs, ...]
    years: tuple[YearCoverage, ...] | None  # None: no index membership known

    @property
    def first_date(self) -> dt.date:
        return _to_date(self.dates[0])

    @property
    def last_date(self) -> dt.date:
        return _to_date(self.dates[-1])

    @cached_property
    def skeleton(self) -> MarketData:
        """A :class:`MarketData` with this dataset's sessions, symbols and
        descriptions; every price is 1.0 and the matrices take no memory (read-only
        broadcasts of one number). For validation only: it answers everything the
        engine's ``check_config`` asks except whether a price exists on a given
        session (use :meth:`has_bar`)."""
        shape = (len(self.dates), len(self.symbols))
        flat = np.broadcast_to(np.float64(1.0), shape)
        return MarketData(
            name=self.name,
            dates=self.dates,
            symbols=tuple(s.symbol for s in self.symbols),
            open=flat,
            high=flat,
            low=flat,
            close=flat,
            volume=flat,
            adj_close=flat,
            info=tuple(
                SymbolInfo(s.symbol, s.name, s.sector, s.type) for s in self.symbols
            ),
        )

    def membership_stand_in(self) -> npt.NDArray[np.bool_]:
        """A membership mask of the right shape (zero bytes, all False) for the
        engine's shape check; validation never reads its values."""
        shape = (len(self.dates), len(self.symbols))
        return np.broadcast_to(np.False_, shape)

    @cached_property
    def _column_of(self) -> dict[str, int]:
        return {s.symbol: i for i, s in enumerate(self.symbols)}

    def has_bar(self, symbol: str, row: int) -> bool:
        """Whether ``symbol`` has a bar (hence a close and an adjusted close) on
        session ``row``."""
        runs = self.runs[self._column_of[symbol]]
        return any(first <= row <= last for first, last in runs)

    def info(self, source: Literal["bundled", "imported"]) -> DatasetInfo:
        return DatasetInfo(
            name=self.name,
            source=source,
            n_symbols=len(self.symbols),
            first_date=self.first_date,
            last_date=self.last_date,
            n_rows=self.n_rows,
        )


# ------------------------------------------------------------------- building
def build_catalog(
    data: MarketData, *, n_rows: int, prices_bytes: int
) -> DatasetCatalog:
    """The catalog of a loaded dataset (``n_rows``: rows of its ``prices.parquet``,
    ``prices_bytes``: that file's size)."""
    present = ~np.isnan(data.close)
    symbols = coverage_of(data, present)
    runs = [_runs(present[:, j]) for j in range(data.n_symbols)]
    known = has_membership(data.name)
    return DatasetCatalog(
        name=data.name,
        n_rows=n_rows,
        prices_bytes=prices_bytes,
        dates=data.dates.astype("datetime64[D]"),
        symbols=symbols,
        runs=tuple(runs),
        years=tuple(coverage_by_year(data)) if known else None,
    )


def coverage_of(
    data: MarketData, present: npt.NDArray[np.bool_] | None = None
) -> tuple[SymbolCoverage, ...]:
    """Each symbol's name, sector, type, first and last session with a close, count
    of sessions with a close and last close (``present``: ``~isnan(close)``, if the
    caller has it)."""
    if present is None:
        present = ~np.isnan(data.close)
    counts = np.count_nonzero(present, axis=0)
    out = []
    for j, info in enumerate(data.info):
        first, last = int(data.first_row[j]), int(data.last_row[j])
        has = last >= 0
        out.append(
            SymbolCoverage(
                symbol=info.symbol,
                name=info.name,
                sector=info.sector,
                type=info.type,
                first_date=_to_date(data.dates[first]) if has else None,
                last_date=_to_date(data.dates[last]) if has else None,
                n_days=int(counts[j]),
                last_close=float(data.close[last, j]) if has else None,
            )
        )
    return tuple(out)


def _runs(present: npt.NDArray[np.bool_]) -> Runs:
    edges = np.diff(np.concatenate(([0], present.astype(np.int8), [0])))
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1) - 1
    return tuple((int(a), int(b)) for a, b in zip(starts, stops, strict=True))


# --------------------------------------------------------------- file format
def to_json(catalog: DatasetCatalog) -> dict[str, Any]:
    """The ``catalog.json`` document: sessions as day numbers since the first one
    (compact), dates ISO, everything else as in the dataclasses."""
    days = catalog.dates.astype(np.int64)
    return {
        "format": CATALOG_FORMAT,
        "dataset": catalog.name,
        "n_rows": catalog.n_rows,
        "prices_bytes": catalog.prices_bytes,
        "first_session": str(catalog.dates[0]) if len(days) else None,
        "session_offsets": (days - days[0]).tolist() if len(days) else [],
        "symbols": [
            {
                **_jsonable(asdict(s)),
                "runs": [list(r) for r in runs],
            }
            for s, runs in zip(catalog.symbols, catalog.runs, strict=True)
        ],
        "years": None if catalog.years is None else [asdict(y) for y in catalog.years],
    }


def from_json(doc: dict[str, Any]) -> DatasetCatalog:
    first = np.datetime64(doc["first_session"], "D")
    dates = first + np.asarray(doc["session_offsets"], dtype=np.int64)
    symbols = []
    runs = []
    for row in doc["symbols"]:
        symbols.append(
            SymbolCoverage(
                symbol=row["symbol"],
                name=row["name"],
                sector=row["sector"],
                type=row["type"],
                first_date=_date_or_none(row["first_date"]),
                last_date=_date_or_none(row["last_date"]),
                n_days=int(row["n_days"]),
                last_close=row["last_close"],
            )
        )
        runs.append(tuple((int(a), int(b)) for a, b in row["runs"]))
    years = doc["years"]
    return DatasetCatalog(
        name=doc["dataset"],
        n_rows=int(doc["n_rows"]),
        prices_bytes=int(doc["prices_bytes"]),
        dates=dates.astype("datetime64[D]"),
        symbols=tuple(symbols),
        runs=tuple(runs),
        years=None if years is None else tuple(YearCoverage(**y) for y in years),
    )


def write_catalog(directory: Path, catalog: DatasetCatalog) -> Path:
    """Write ``directory/catalog.json`` atomically (a temporary file, then a rename)."""
    path = directory / CATALOG_FILE
    text = json.dumps(to_json(catalog), separators=(",", ":"), allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=".catalog-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.chmod(tmp, 0o644)  # mkstemp's 0o600 would hide it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def catalog_of_directory(directory: Path, name: str) -> DatasetCatalog:
    """Load the dataset in ``directory`` (the store: pyarrow, the full matrices) and
    build its catalog. For the build script, the importer and a stale catalog."""
    from app.data import dataset_io, store  # noqa: PLC0415 - heavy: workers/CLI only

    prices = directory / dataset_io.PRICES_FILE
    summary = dataset_io.read_summary(prices)
    data = store.read_dataset_directory(directory, name)
    return build_catalog(
        data, n_rows=int(summary["n_rows"]), prices_bytes=prices.stat().st_size
    )


# ------------------------------------------------------------------- reading
_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int], DatasetCatalog]] = {}


def clear_cache() -> None:
    """Forget every catalog read (for tests)."""
    with _lock:
        _cache.clear()


def load_catalog(directory: Path, name: str) -> DatasetCatalog:
    """The catalog of the dataset in ``directory`` (cached per process while its
    ``catalog.json`` and ``prices.parquet`` are unchanged); rebuilt from the data when
    missing, of an older format or recorded for another ``prices.parquet``."""
    path = directory / CATALOG_FILE
    prices = directory / PRICES_FILE
    prices_bytes = prices.stat().st_size
    try:
        stamp = (path.stat().st_mtime_ns, prices_bytes)
    except FileNotFoundError:
        stamp = (-1, prices_bytes)
    with _lock:
        cached = _cache.get(str(path))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        catalog = _read(path, prices_bytes)
        if catalog is None or catalog.name != name:
            catalog = _rebuild(directory, name)
            stamp = (_mtime(path), prices_bytes)
        _cache[str(path)] = (stamp, catalog)
        return catalog


def _read(path: Path, prices_bytes: int) -> DatasetCatalog | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("catalog %s unreadable (%s): rebuilding it", path, exc)
        return None
    if doc.get("format") != CATALOG_FORMAT or doc.get("prices_bytes") != prices_bytes:
        log.warning("catalog %s is stale: rebuilding it from the data", path)
        return None
    return from_json(doc)


def _rebuild(directory: Path, name: str) -> DatasetCatalog:
    log.warning(
        "dataset %r has no current %s: loading the data once to build it",
        name,
        CATALOG_FILE,
    )
    catalog = catalog_of_directory(directory, name)
    try:
        write_catalog(directory, catalog)
    except OSError as exc:  # a read-only dataset directory: keep it in memory
        log.warning("cannot write %s in %s (%s)", CATALOG_FILE, directory, exc)
    return catalog


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1


# ----------------------------------------------------------------------- util
def _to_date(day: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(day.astype("datetime64[D]")))


def _date_or_none(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
