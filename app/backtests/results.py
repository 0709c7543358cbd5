"""What a completed backtest stores beyond its lots and chart, and how it reads back.

Built once on the worker (:func:`build`, in the job's thread, after the engine run),
saved in the transaction that completes the job, read by the analysis, positions,
holdings, exposure, export and report endpoints:

* ``analysis``: :func:`app.engine.analysis.analyse_backtest` of the equity curve with
  the benchmark, seeded from the task id (``seed = task_id.int % 2**32``), so a stored
  result is reproducible from the job alone;
* positions (one row each, :mod:`app.engine.positions`), and the position/lot/fill
  counts and statistics merged into the job's metrics;
* the **book**: a zlib-compressed ``.npz`` of the fills, the sparse daily holdings
  (``ptr``/``col``/``shares``/``mark``, 20 bytes per held symbol-day before
  compression), the daily cash and dividend income; exposure is derived from it on
  read. Its size grows with the run's length times the number of symbols held, never
  with the universe: ~0.3 MB for ten years of a 20-name portfolio rebalanced
  monthly (``scripts/bench_results.py`` prints it).
"""

from __future__ import annotations

import io
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from app.engine.analysis import analyse_backtest
from app.engine.backtest import BacktestResult
from app.engine.data import MarketData
from app.engine.portfolio import twr_index
from app.engine.positions import (
    Positions,
    build_positions,
    exposure,
    holdings_book,
    position_metrics,
)
from app.engine.simulator import Fills

FloatArray = npt.NDArray[np.float64]
BOOK_COMPRESSION_LEVEL = 1


@dataclass(frozen=True)
class Stored:
    """Everything :func:`build` computed, ready to insert."""

    metrics: dict[str, Any]
    analysis: dict[str, Any]
    positions: list[dict[str, Any]]
    symbols: list[str]
    sectors: list[str]
    book: bytes


def seed_of(job_id: uuid.UUID) -> int:
    """The bootstrap seed of a job: its id as an integer, modulo 2**32."""
    return job_id.int % 2**32


def build(result: BacktestResult, data: MarketData, job_id: uuid.UUID) -> Stored:
    """Positions, metrics, analysis and book of ``result`` (run on ``data``)."""
    config = result.config
    days = result.dates.astype("datetime64[D]").astype(np.int64)
    cols = data.columns(result.symbols)
    sectors = [data.info[c].sector for c in cols]
    start_row = data.row_of(result.dates[0])
    rows = slice(start_row, start_row + days.size)
    cum_div = None
    if config.dividends:  # only the columns that traded: the rest is never read
        traded = np.unique(result.fills.col)
        cum_div = np.zeros((days.size, cols.size))
        divs = data.dividends_per_share[rows][:, cols[traded]]
        cum_div[:, traded] = np.cumsum(divs, axis=0)
    sim = result.simulation
    positions = build_positions(
        sim.fills,
        result.trades,
        days=days,
        last_mark=sim.mark[-1],
        cum_dividends=cum_div,
    )
    # With cash flows the analysis reads time-weighted curves (flows are not
    # performance; README "Portfolios"), the benchmarks' with the same flows.
    flows = result.flows
    has_flows = flows is not None and bool(flows.any())

    def curve(values: FloatArray) -> FloatArray:
        return twr_index(values, flows) if has_flows and flows is not None else values

    benchmarks = {run.name: curve(run.equity) for run in result.benchmark_runs}
    analysis = analyse_backtest(
        dates=result.dates,
        equity=curve(result.equity),
        benchmarks=benchmarks,
        seed=seed_of(job_id),
        risk_free_rate=config.risk_free_rate,
    )
    book = _book_bytes(result)
    return Stored(
        metrics={
            **result.metrics,
            **position_metrics(positions, result.trades, sim.fills),
        },
        analysis=analysis,
        positions=position_records(positions, result, sectors),
        symbols=list(result.symbols),
        sectors=sectors,
        book=book,
    )


def position_records(
    p: Positions, result: BacktestResult, sectors: list[str]
) -> list[dict[str, Any]]:
    """Positions as plain dicts with the ``Position`` column names."""
    dates = result.dates.astype("datetime64[D]").tolist()
    return [
        {
            "symbol": result.symbols[p.col[i]],
            "sector": sectors[p.col[i]] or "Unknown",
            "opened": dates[p.opened_row[i]],
            "closed": None if p.closed_row[i] < 0 else dates[p.closed_row[i]],
            "avg_entry_price": float(p.avg_entry_price[i]),
            "avg_exit_price": _maybe(p.avg_exit_price[i]),
            "peak_shares": float(p.peak_shares[i]),
            "shares": float(p.open_shares[i]),
            "cost": float(p.cost[i]),
            "dividends": float(p.dividends[i]),
            "realised_pnl": float(p.realised_pnl[i]),
            "unrealised_pnl": float(p.unrealised_pnl[i]),
            "pnl": float(p.pnl[i]),
            "return_pct": float(p.return_[i]),
            "holding_days": int(p.holding_days[i]),
            "fills": int(p.n_fills[i]),
            "lots": int(p.n_lots[i]),
        }
        for i in range(len(p))
    ]


def _maybe(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def _book_bytes(result: BacktestResult) -> bytes:
    """Fills, the sparse daily holdings, cash and dividend income; exposure is
    derived from these on read (:func:`exposure_of`)."""
    sim = result.simulation
    fills = sim.fills
    held = holdings_book(sim.positions, sim.mark)
    arrays: dict[str, Any] = {
        "fill_row": fills.row.astype(np.int32),
        "fill_col": fills.col.astype(np.int32),
        "fill_quantity": fills.quantity,
        "fill_price": fills.price,
        "fill_commission": fills.commission,
        "held_ptr": held["ptr"],
        "held_col": held["col"],
        "held_shares": held["shares"],
        "held_mark": held["mark"],
        "cash": sim.cash,
        "dividends": sim.dividend_income,
        # external flows per day (> 0 contribution, < 0 withdrawal): the ledger's
        # cash-flow rows, beside the fills
        "net_flow": np.zeros(len(sim.cash)) if result.flows is None else result.flows,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    # zlib level 1: about half the raw size in a third of the time of the default
    # level (savez_compressed); the marks barely compress at any level
    return zlib.compress(buffer.getvalue(), BOOK_COMPRESSION_LEVEL)


def exposure_of(
    book: dict[str, npt.NDArray[Any]],
    *,
    equity: FloatArray,
    sectors: list[str],
    initial_capital: float,
) -> dict[str, Any]:
    """The full-resolution exposure (:func:`app.engine.positions.exposure`) of a
    stored book."""
    fills = Fills(
        row=book["fill_row"].astype(np.int64),
        col=book["fill_col"].astype(np.int64),
        quantity=book["fill_quantity"],
        price=book["fill_price"],
        commission=book["fill_commission"],
    )
    held = {
        "ptr": book["held_ptr"],
        "col": book["held_col"],
        "shares": book["held_shares"],
        "mark": book["held_mark"],
    }
    return exposure(
        book=held,
        equity=equity,
        sectors=sectors,
        fills=fills,
        initial_capital=initial_capital,
    )


def load_book(blob: bytes) -> dict[str, npt.NDArray[Any]]:
    """The arrays of a stored book."""
    raw = io.BytesIO(zlib.decompress(blob))
    with np.load(raw, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
