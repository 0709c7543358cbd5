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
