"""Build the bundled dataset (app/data/bundled/) from the shared source folder.

Usage: .venv/bin/python scripts/build_dataset.py [SOURCE_DIR]

SOURCE_DIR (default: ../shared/data relative to the repository) holds ``prices.csv.gz``
(long format ``date,symbol,open,high,low,close,volume,adj_close``) and ``symbols.csv``.
Writes ``prices.parquet`` (int64 micro-unit prices, see app/data/dataset_io.py), a
copy of ``symbols.csv`` and ``catalog.json`` (the light catalog the API validates
against, app/data/catalog.py). Fails unless every price survives the micro-unit round
trip bit-exactly and the written file reads back identical to the CSV.
"""

from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from app.data import dataset_io  # noqa: E402
from app.data.catalog import catalog_of_directory, write_catalog  # noqa: E402
from app.data.store import BUNDLED_DIR, BUNDLED_NAME  # noqa: E402


def read_source(source: Path) -> pd.DataFrame:
    # Prices are read as text and parsed with Python's correctly rounded float(): the
    # reference that "lossless" is checked against.
    text = dict.fromkeys(dataset_io.PRICE_COLUMNS, str)
    frame = pd.read_csv(
        source / "prices.csv.gz",
        dtype={"symbol": str, "volume": np.int64, **text},
        keep_default_na=False,
    )
    for col in dataset_io.PRICE_COLUMNS:
        frame[col] = frame[col].to_numpy(dtype=object).astype(np.float64)
    frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d")
    return frame


def check_lossless(frame: pd.DataFrame) -> None:
    for col in dataset_io.PRICE_COLUMNS:
        values = frame[col].to_numpy(dtype=np.float64)
        back = dataset_io.from_micro(dataset_io.to_micro(values))
        bad = np.flatnonzero(back != values)
        if len(bad):
            row = frame.iloc[bad[0]]
            sys.exit(f"{col}: {len(bad)} values not exact in micro-units, e.g. {row}")


def check_written(path: Path, frame: pd.DataFrame) -> None:
    table = pq.read_table(path)
    expected = frame.sort_values(["symbol", "date"], kind="stable")
    dates = table.column("date").to_numpy().astype("datetime64[D]")
    if not np.array_equal(dates, expected["date"].to_numpy().astype("datetime64[D]")):
        sys.exit("date column differs after the round trip")
    if table.column("symbol").to_pylist() != expected["symbol"].tolist():
        sys.exit("symbol column differs after the round trip")
    for col in dataset_io.PRICE_COLUMNS:
        back = dataset_io.from_micro(table.column(col).to_numpy())
        if not np.array_equal(back, expected[col].to_numpy(dtype=np.float64)):
            sys.exit(f"{col} differs after the round trip")
    if not np.array_equal(table.column("volume").to_numpy(), expected["volume"]):
        sys.exit("volume differs after the round trip")


def copy_symbols(source: Path, target: Path) -> None:
    with (source / "symbols.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    dataset_io.write_symbols(target, rows)


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO.parent / "shared" / "data"
    started = time.perf_counter()
    frame = read_source(source)
    print(f"read {len(frame):,} rows, {frame['symbol'].nunique()} symbols")
    check_lossless(frame)
    BUNDLED_DIR.mkdir(parents=True, exist_ok=True)
    target = BUNDLED_DIR / dataset_io.PRICES_FILE
    n_rows = dataset_io.write_prices(
        target,
        name=BUNDLED_NAME,
        dates=frame["date"].to_numpy().astype("datetime64[D]"),
        symbols=frame["symbol"].to_numpy(dtype=object),
        prices={
            c: frame[c].to_numpy(dtype=np.float64) for c in dataset_io.PRICE_COLUMNS
        },
        volume=frame["volume"].to_numpy(dtype=np.int64),
    )
    check_written(target, frame)
    copy_symbols(source, BUNDLED_DIR / dataset_io.SYMBOLS_FILE)
    # The light catalog the API process validates against instead of the prices.
    write_catalog(BUNDLED_DIR, catalog_of_directory(BUNDLED_DIR, BUNDLED_NAME))
    size_mb = target.stat().st_size / 1e6
    elapsed = time.perf_counter() - started
    print(f"wrote {target} ({n_rows:,} rows, {size_mb:.1f} MB) in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
