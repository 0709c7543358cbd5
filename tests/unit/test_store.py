"""The price store: the bundled dataset, caching, listing and coverage."""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from app.data.importer import import_dataset
from app.data.store import (
    BUNDLED_NAME,
    clear_cache,
    list_datasets,
    load_dataset,
    symbol_coverage,
)
from app.engine.data import MarketData
from app.engine.errors import DataError, InvalidInputError

CSV = """date,symbol,open,high,low,close,volume
2021-03-01,XA,10,11,9,10.5,100
2021-03-02,XA,10.5,11,10,10.75,200
2021-03-02,XB,5,5.5,4.5,5.25,300
"""


@pytest.fixture(scope="module")
def sp500() -> MarketData:
    return load_dataset()


@pytest.fixture
def datasets_dir(tmp_path: Path) -> Path:
    source = tmp_path / "prices.csv"
    source.write_text(CSV)
    target = tmp_path / "datasets"
    import_dataset(source, name="mini", datasets_dir=target)
    return target


def _close(data: MarketData, symbol: str, day: str) -> float:
    row = data.row_of(np.datetime64(day))
    assert data.dates[row] == np.datetime64(day)
    return float(data.close[row, data.column_of[symbol]])


def _dividends_in_year(
    data: MarketData, symbol: str, year: int
) -> npt.NDArray[np.float64]:
    years = data.dates.astype("datetime64[Y]").astype(int) + 1970
    div = data.dividends_per_share[:, data.column_of[symbol]]
    paid: npt.NDArray[np.float64] = div[(years == year) & (div > 0)]
    return paid


def test_load_dataset_bundled_shape(sp500: MarketData) -> None:
    assert (sp500.n_days, sp500.n_symbols) == (4945, 526)
    assert sp500.dates[0] == np.datetime64("2005-01-03")
    assert sp500.dates[-1] == np.datetime64("2024-08-26")
    assert np.all(np.diff(sp500.dates.astype(np.int64)) > 0)
    assert sp500.close.dtype == np.float64
    assert sp500.name == BUNDLED_NAME


def test_load_dataset_bundled_stocks_then_etfs_alphabetical(sp500: MarketData) -> None:
    # Stocks first (a contiguous block: the default universe is a zero-copy view).
    stocks, etfs = list(sp500.symbols[:502]), list(sp500.symbols[502:])
    assert stocks == sorted(stocks) and etfs == sorted(etfs)
    assert list(sp500.stocks) == stocks and list(sp500.benchmarks) == etfs
    assert len(sp500.stocks) == 502
    assert len(sp500.benchmarks) == 24
    aapl = sp500.info[sp500.column_of["AAPL"]]
    assert (aapl.name, aapl.sector, aapl.type) == (
        "Apple Inc.",
        "Information Technology",
        "stock",
    )
    assert sp500.info[sp500.column_of["SPY"]].type == "etf"


def test_load_dataset_bundled_known_closes(sp500: MarketData) -> None:
    assert _close(sp500, "SPY", "2023-06-30") == 443.28
    assert _close(sp500, "SPY", "2023-12-29") == 475.31
    assert _close(sp500, "BRK.B", "2024-08-26") == 454.49


def test_load_dataset_bundled_first_bar_matches_source(sp500: MarketData) -> None:
    # prices.csv.gz line 2: 2005-01-03,A,17.2389,17.2961,16.8097,17.0815,3378826,14.4382
    j = sp500.column_of["A"]
    bar = [getattr(sp500, c)[0, j] for c in ("open", "high", "low", "close", "volume")]
    assert bar == [17.2389, 17.2961, 16.8097, 17.0815, 3378826.0]
    assert sp500.adj_close[0, j] == 14.4382


def test_load_dataset_nan_before_late_listing(sp500: MarketData) -> None:
    j = sp500.column_of["ABNB"]
    first = sp500.row_of(np.datetime64("2020-12-10"))
    assert sp500.first_row[j] == first
    assert np.isnan(sp500.close[:first, j]).all()
    assert np.isnan(sp500.volume[:first, j]).all()
    assert not np.isnan(sp500.close[first:, j]).any()


def test_load_dataset_matrices_read_only(sp500: MarketData) -> None:
    with pytest.raises(ValueError, match="read-only"):
        sp500.close[0, 0] = 1.0


def test_load_dataset_cached_returns_same_object() -> None:
    first = load_dataset()
    assert load_dataset() is first
    assert load_dataset("sp500") is first


def test_load_dataset_reloads_after_file_change(datasets_dir: Path) -> None:
    first = load_dataset("mini", datasets_dir=datasets_dir)
    prices = datasets_dir / "mini" / "prices.parquet"
    stat = prices.stat()
    os.utime(prices, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = load_dataset("mini", datasets_dir=datasets_dir)
    assert again is not first
    assert np.array_equal(again.close, first.close, equal_nan=True)


def test_load_dataset_unknown_name_lists_available(datasets_dir: Path) -> None:
    with pytest.raises(InvalidInputError, match="available: sp500, mini") as info:
        load_dataset("nope", datasets_dir=datasets_dir)
    assert info.value.field == "dataset"


def test_load_dataset_missing_bundled_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="build_dataset"):
        load_dataset(bundled_dir=tmp_path)


def test_load_dataset_imported_aligns_symbols(datasets_dir: Path) -> None:
    data = load_dataset("mini", datasets_dir=datasets_dir)
    assert data.symbols == ("XA", "XB")
    assert list(data.dates.astype(str)) == ["2021-03-01", "2021-03-02"]
    assert np.array_equal(
        data.close, np.array([[10.5, np.nan], [10.75, 5.25]]), equal_nan=True
    )


def test_dividends_per_share_spy_quarterly(sp500: MarketData) -> None:
    counts = [len(_dividends_in_year(sp500, "SPY", y)) for y in range(2005, 2024)]
    assert counts == [4] * len(counts)
    paid_2023 = _dividends_in_year(sp500, "SPY", 2023)
    # SPY's 2023 distributions: 1.506 + 1.638 + 1.583 + 1.906 = 6.633 dollars.
    assert 6.55 < paid_2023.sum() < 6.72
    assert np.all((paid_2023 > 1.4) & (paid_2023 < 2.0))


def test_dividends_per_share_brkb_none(sp500: MarketData) -> None:
    assert not sp500.dividends_per_share[:, sp500.column_of["BRK.B"]].any()


def test_symbol_coverage_late_listing(sp500: MarketData) -> None:
    by_symbol = {c.symbol: c for c in symbol_coverage(sp500)}
    abnb = by_symbol["ABNB"]
    assert abnb.first_date == dt.date(2020, 12, 10)
    assert abnb.last_date == dt.date(2024, 8, 26)
    assert abnb.n_days == int(
        (~np.isnan(sp500.close[:, sp500.column_of["ABNB"]])).sum()
    )
    assert by_symbol["SPY"].last_close == 560.79
    assert by_symbol["SPY"].type == "etf"


def test_symbol_coverage_one_entry_per_symbol(sp500: MarketData) -> None:
    coverage = symbol_coverage(sp500)
    assert [c.symbol for c in coverage] == list(sp500.symbols)


def test_list_datasets_bundled_then_imported(datasets_dir: Path) -> None:
    infos = list_datasets(datasets_dir)
    assert [(i.name, i.source) for i in infos] == [
        ("sp500", "bundled"),
        ("mini", "imported"),
    ]
    sp500, mini = infos
    assert (sp500.n_symbols, sp500.n_rows) == (526, 2_389_027)
    assert (sp500.first_date, sp500.last_date) == (
        dt.date(2005, 1, 3),
        dt.date(2024, 8, 26),
    )
    assert (mini.n_symbols, mini.n_rows) == (2, 3)


def test_list_datasets_ignores_unfinished_dirs(datasets_dir: Path) -> None:
    (datasets_dir / ".import-x-123").mkdir()
    (datasets_dir / "empty").mkdir()
    assert [i.name for i in list_datasets(datasets_dir)] == ["sp500", "mini"]


def test_load_dataset_concurrent_loads_share_one_object(datasets_dir: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = list(
            pool.map(
                lambda _: load_dataset("mini", datasets_dir=datasets_dir), range(8)
            )
        )
    assert all(data is loaded[0] for data in loaded)


def test_clear_cache_forces_reload(datasets_dir: Path) -> None:
    first = load_dataset("mini", datasets_dir=datasets_dir)
    clear_cache()
    assert load_dataset("mini", datasets_dir=datasets_dir) is not first
