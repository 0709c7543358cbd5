"""The light catalog the API validates against (app/data/catalog.py): the shipped file
matches the data, an imported dataset gets one, a stale one is rebuilt, and
validating a request on the catalog gives exactly what the engine's check_config
gives on the loaded dataset."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.backtests.service import check_catalog_config
from app.data import catalog as light
from app.data import dataset_io, paths
from app.data.importer import import_dataset
from app.data.membership import membership_mask_for
from app.data.store import load_dataset, symbol_coverage
from app.engine.backtest import check_config
from app.engine.config import AllocationBenchmark, BacktestConfig
from app.engine.data import MarketData
from app.engine.errors import InvalidInputError

# XB has a gap (no bar on 2021-03-03), XC starts late.
CSV = """date,symbol,open,high,low,close,volume
2021-03-01,XA,10,11,9,10.5,100
2021-03-02,XA,10.5,11,10,10.75,200
2021-03-03,XA,10.5,11,10,10.8,200
2021-03-04,XA,10.5,11,10,10.9,200
2021-03-01,XB,5,5.5,4.5,5.25,300
2021-03-02,XB,5,5.5,4.5,5.5,300
2021-03-04,XB,5,6,4.5,5.75,300
2021-03-03,XC,1,1,1,1,1
2021-03-04,XC,1,1.5,1,1.5,1
"""


@pytest.fixture(scope="module")
def sp500() -> MarketData:
    return load_dataset()


@pytest.fixture(scope="module")
def sp500_catalog() -> light.DatasetCatalog:
    light.clear_cache()
    return light.load_catalog(paths.BUNDLED_DIR, paths.BUNDLED_NAME)


@pytest.fixture
def imported(tmp_path: Path) -> Path:
    source = tmp_path / "prices.csv"
    source.write_text(CSV)
    datasets = tmp_path / "datasets"
    import_dataset(source, name="mini", datasets_dir=datasets)
    return datasets


def test_shipped_catalog_matches_the_bundled_data(sp500: MarketData) -> None:
    """Regenerate with scripts/build_dataset.py (or app.data.catalog.write_catalog)
    if this fails: the API would validate against stale symbols or sessions."""
    prices = paths.BUNDLED_DIR / paths.PRICES_FILE
    summary = dataset_io.read_summary(prices)
    built = light.build_catalog(
        sp500, n_rows=int(summary["n_rows"]), prices_bytes=prices.stat().st_size
    )
    shipped = json.loads((paths.BUNDLED_DIR / light.CATALOG_FILE).read_text())
    assert shipped == json.loads(json.dumps(light.to_json(built)))


def test_catalog_reads_back_what_the_store_computes(
    sp500: MarketData, sp500_catalog: light.DatasetCatalog
) -> None:
    assert np.array_equal(sp500_catalog.dates, sp500.dates)
    assert list(sp500_catalog.symbols) == symbol_coverage(sp500)
    skeleton = sp500_catalog.skeleton
    assert skeleton.symbols == sp500.symbols
    assert skeleton.info == sp500.info
    assert skeleton.benchmarks == sp500.benchmarks
    assert skeleton.stocks == sp500.stocks
    assert sp500_catalog.years is not None and len(sp500_catalog.years) == 20
    # the stand-ins take (almost) no memory
    assert skeleton.close.strides == (0, 0)
    assert sp500_catalog.membership_stand_in().shape == (sp500.n_days, sp500.n_symbols)


def test_imported_dataset_gets_a_catalog_with_its_gaps(imported: Path) -> None:
    directory = imported / "mini"
    assert (directory / light.CATALOG_FILE).is_file()
    catalog = light.load_catalog(directory, "mini")
    data = load_dataset("mini", datasets_dir=imported)
    present = ~np.isnan(data.close)
    for j, symbol in enumerate(data.symbols):
        for row in range(data.n_days):
            assert catalog.has_bar(symbol, row) == bool(present[row, j])
    assert catalog.runs[data.column_of["XB"]] == ((0, 1), (3, 3))
    assert catalog.years is None  # no index membership for an imported dataset
    assert catalog.info("imported").n_rows == 9


def test_missing_or_stale_catalog_is_rebuilt(imported: Path) -> None:
    directory = imported / "mini"
    path = directory / light.CATALOG_FILE
    good = json.loads(path.read_text())
    doc = {**good, "prices_bytes": good["prices_bytes"] + 1, "symbols": []}
    path.write_text(json.dumps(doc))
    light.clear_cache()
    catalog = light.load_catalog(directory, "mini")
    assert len(catalog.symbols) == 3
    assert json.loads(path.read_text()) == good  # written back
    path.unlink()
    light.clear_cache()
    assert len(light.load_catalog(directory, "mini").symbols) == 3
    assert path.is_file()


def test_format_constants_agree() -> None:
    assert dataset_io.PRICES_FILE == paths.PRICES_FILE == "prices.parquet"


# ------------------------------------------------------------ validation parity
def _config(**changes: Any) -> BacktestConfig:
    base = BacktestConfig(
        start_date=dt.date(2015, 1, 1), end_date=dt.date(2019, 12, 31)
    )
    return dataclasses.replace(base, **changes)


CASES: dict[str, dict[str, Any]] = {
    "valid": {},
    "valid_pit": {"universe": "sp500_pit"},
    "start_after_end": {"start_date": dt.date(2020, 1, 1)},
    "before_coverage": {
        "start_date": dt.date(1990, 1, 1),
        "end_date": dt.date(1990, 12, 31),
    },
    "after_coverage": {
        "start_date": dt.date(2030, 1, 1),
        "end_date": dt.date(2031, 1, 1),
    },
    "one_session": {
        "start_date": dt.date(2019, 12, 31),
        "end_date": dt.date(2020, 1, 1),
    },
    "unknown_symbol": {"symbols": ("AAPL", "NOPE", "ZZZZ")},
    "duplicate_symbol": {"symbols": ("AAPL", "AAPL")},
    "etf_universe": {"symbols": ("SPY", "QQQ")},
    "benchmark_not_etf": {"benchmark": "AAPL"},
    "benchmark_etf": {"benchmark": "SPY"},
    "benchmark_no_first_price": {
        "benchmark": "XLC",
        "start_date": dt.date(2010, 1, 1),
    },
    "benchmarks_no_first_price": {
        "benchmarks": ("SPY", "XLC"),
        "start_date": dt.date(2010, 1, 1),
    },
    "benchmarks_late_symbol_ok": {
        "benchmarks": ("XLC",),
        "start_date": dt.date(2019, 1, 1),
    },
    "benchmarks_unknown": {"benchmarks": ("NOPE",)},
    "allocation_unknown": {"allocation": (("NOPE", 0.5),)},
    "allocation_ok": {"allocation": (("SPY", 0.6), ("AGG", 0.4))},
    "allocation_benchmark_unknown": {
        "benchmarks": (AllocationBenchmark(name="x", allocation=(("NOPE", 1.0),)),)
    },
    "screen_universe_unknown": {
        "filter_criteria": {
            "universe": ["AAPL", "NOPE"],
            "filters": [],
            "top_n": 1,
            "rank_by": {"factor": "momentum", "window": 20},
        }
    },
    "screen_bad_factor": {"filter_criteria": {"filters": [{"factor": "nope"}]}},
    "strategy_unknown": {"strategy_id": 999},
    "strategy_bad_param": {"strategy_id": 2, "strategy_params": {"top_n": -1}},
    "capital_too_small": {"initial_capital": 1.0},
    "commission_too_high": {"commission_rate": 0.9},
}


def _outcome(check: Any) -> tuple[str, str | None] | None:
    try:
        check()
    except InvalidInputError as exc:
        return (exc.message, exc.field)
    return None


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_on_the_catalog_equals_the_engine_on_the_data(
    case: str, sp500: MarketData, sp500_catalog: light.DatasetCatalog
) -> None:
    config = _config(**CASES[case])
    pit = config.universe == "sp500_pit"
    full_mask = membership_mask_for(sp500) if pit else None
    stand_in = sp500_catalog.membership_stand_in() if pit else None
    expected = _outcome(lambda: check_config(config, sp500, membership=full_mask))
    got = _outcome(
        lambda: check_catalog_config(config, sp500_catalog, membership=stand_in)
    )
    assert got == expected
    if case.startswith(("valid", "benchmark_etf", "allocation_ok", "benchmarks_late")):
        assert expected is None
    elif case != "etf_universe":
        assert expected is not None  # the case exercises a refusal


def test_validation_parity_on_an_imported_dataset_with_gaps(imported: Path) -> None:
    data = load_dataset("mini", datasets_dir=imported)
    catalog = light.load_catalog(imported / "mini", "mini")
    for start in (dt.date(2021, 3, 1), dt.date(2021, 3, 2), dt.date(2021, 3, 3)):
        for bench in ("XA", "XB", "XC"):
            config = BacktestConfig(
                start_date=start,
                end_date=dt.date(2021, 3, 4),
                dataset="mini",
                benchmarks=(bench,),
            )
            expected = _outcome(lambda c=config: check_config(c, data))
            got = _outcome(lambda c=config: check_catalog_config(c, catalog))
            assert got == expected, (start, bench)
