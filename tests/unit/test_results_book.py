"""The stored book's encoding: per-member compression now, zlib-wrapped before."""

from __future__ import annotations

import io
import uuid
import zipfile
import zlib

import numpy as np

from app.backtests.results import build, load_book
from app.backtests.schemas import BacktestRequest
from app.data.store import load_dataset
from app.engine.backtest import run_backtest


def test_book_round_trips_and_stores_prices_raw() -> None:
    data = load_dataset(None)
    body = {
        "strategy_id": 1,
        "symbols": list(data.stocks[:8]),
        "start_date": "2019-01-01",
        "end_date": "2019-12-31",
        "rebalancing": "weekly",
        "benchmark": "SPY",
    }
    result = run_backtest(BacktestRequest.model_validate(body).to_config(), data)
    blob = build(result, data, uuid.uuid4()).book
    book = load_book(blob)
    sim = result.simulation
    np.testing.assert_array_equal(book["cash"], sim.cash)
    np.testing.assert_array_equal(book["fill_price"], sim.fills.price)
    np.testing.assert_array_equal(book["fill_commission"], sim.fills.commission)
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        kinds = {i.filename: i.compress_type for i in archive.infolist()}
    assert kinds["fill_price.npy"] == kinds["fill_commission.npy"] == zipfile.ZIP_STORED
    assert kinds["held_col.npy"] == kinds["held_shares.npy"] == zipfile.ZIP_DEFLATED
    # a book stored before (the whole .npz zlib-compressed) still reads the same
    old = io.BytesIO()
    np.savez(old, **book)
    legacy = load_book(zlib.compress(old.getvalue(), 1))
    assert legacy.keys() == book.keys()
    for name, array in book.items():
        np.testing.assert_array_equal(legacy[name], array)


def test_report_has_a_column_per_benchmark_of_the_analysis() -> None:
    from app.backtests.report import _annual, _crises  # noqa: PLC0415

    analysis = {
        "benchmarks": ["SPY", "60/40 <b>"],
        "annual_returns": [
            {
                "year": 2020,
                "portfolio": 0.1,
                "benchmarks": {"SPY": 0.2, "60/40 <b>": -0.05},
            }
        ],
        "crises": [
            {
                "name": "COVID crash",
                "from": "2020-02-19",
                "to": "2020-03-23",
                "complete": True,
                "portfolio": -0.3,
                "benchmarks": {"SPY": -0.34, "60/40 <b>": -0.2},
            }
        ],
    }
    for html in (_annual(analysis, "SPY"), _crises(analysis, "SPY")):
        assert "<th>SPY</th><th>60/40 &lt;b&gt;</th>" in html
    assert "-5.0%" in _annual(analysis, "SPY").replace("−", "-")
    assert "-20.0%" in _crises(analysis, "SPY").replace("−", "-")
