"""Reading a completed backtest's stored results: analysis, positions, holdings,
exposure and the full-resolution equity table (exports, report).

Every function takes a job row already read for its owner (404 otherwise) and raises
409 until it has completed. Jobs completed before positions and the book were stored
have none: 409 too, saying so.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import anyio
import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from app.backtests import repository, results_repository
from app.backtests.charts import keep_indices
from app.backtests.results_repository import PositionSort
from app.core.errors import Conflict, ValidationFailed
from app.db.models import BacktestResult, Job, Position
from app.jobs import service as jobs

_NOT_STORED = (
    "This backtest completed before its analysis was stored; run it again to get it."
)


async def analysis(session: AsyncSession, *, row: Job) -> dict[str, Any]:
    jobs.require_completed(row)
    doc = await results_repository.get_analysis(session, row.id)
    if doc is None:
        raise Conflict(_NOT_STORED, task_id=str(row.id))
    return doc


async def positions(
    session: AsyncSession,
    *,
    row: Job,
    symbol: str | None,
    sector: str | None,
    is_open: bool | None,
    start_date: dt.date | None,
    end_date: dt.date | None,
    sort: PositionSort,
    limit: int,
    offset: int,
) -> tuple[list[Position], int]:
    jobs.require_completed(row)
    return await results_repository.page_positions(
        session,
        row.id,
        symbol=symbol.upper() if symbol else None,
        sector=sector,
        is_open=is_open,
        opened_from=start_date,
        opened_to=end_date,
        sort=sort,
        limit=limit,
        offset=offset,
    )


async def all_positions(session: AsyncSession, *, row: Job) -> list[Position]:
    jobs.require_completed(row)
    return await results_repository.all_positions(session, row.id)


@dataclass(frozen=True)
class Loaded:
    """A completed job's stored series (chart payload) and book, decoded; read-only
    (shared by the requests that hit :data:`_LOADED`)."""

    series: dict[str, Any]
    stored: BacktestResult
    book: dict[str, npt.NDArray[Any]]
    #: full-resolution exposure, computed on first use (see :func:`exposure_body`)
    derived: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def dates(self) -> list[str]:
        dates: list[str] = self.series["dates"]
        return dates


#: The last few decoded results, by job id, in this process (a completed result never
#: changes; the row is read for its owner before, so a deleted job is a 404 first).
#: Holdings, exposure, exports and the report of one result are usually read
#: together; this saves the series and book reads and the book's decoding.
_LOADED: OrderedDict[uuid.UUID, Loaded] = OrderedDict()
LOADED_CACHE_SIZE = 8


async def load(session: AsyncSession, *, row: Job) -> Loaded:
    jobs.require_completed(row)
    if (hit := _LOADED.get(row.id)) is not None:
        _LOADED.move_to_end(row.id)
        return hit
    series = await repository.get_series(session, row.id)
    stored = await results_repository.get(session, row.id)
    if series is None or stored is None:
        raise Conflict(_NOT_STORED, task_id=str(row.id))
    # app.backtests.results imports the engine's analysis and position modules
    # (numba): imported on the first results read, not at the API's start.
    from app.backtests.results import load_book  # noqa: PLC0415

    book = await anyio.to_thread.run_sync(load_book, stored.book)
    # a detached copy: the session's row may be expired by a later rollback
    columns = BacktestResult(symbols=list(stored.symbols), sectors=list(stored.sectors))
    loaded = Loaded(series=series, stored=columns, book=book)
    _LOADED[row.id] = loaded
    while len(_LOADED) > LOADED_CACHE_SIZE:
        _LOADED.popitem(last=False)
    return loaded


# ----------------------------------------------------------------------- holdings
def holdings_body(loaded: Loaded, day: dt.date | None) -> dict[str, Any]:
    """What was held at the close of ``day`` (or the nearest earlier session; the
    last session without ``day``): shares × mark + cash = equity of that close."""
    dates = loaded.dates
    if day is None:
        i = len(dates) - 1
    else:
        sessions = np.array(dates, dtype="datetime64[D]")
        i = int(np.searchsorted(sessions, np.datetime64(day, "D"), "right")) - 1
        if i < 0:
            raise ValidationFailed(
                f"date must be on or after the backtest's first session {dates[0]}",
                field="query.date",
            )
    book = loaded.book
    lo, hi = int(book["held_ptr"][i]), int(book["held_ptr"][i + 1])
    cols = book["held_col"][lo:hi].astype(np.int64)
    shares, mark = book["held_shares"][lo:hi], book["held_mark"][lo:hi]
    value = shares * mark
    equity = float(loaded.series["equity"][i])
    cash = float(book["cash"][i])
    symbols, sectors = loaded.stored.symbols, loaded.stored.sectors
    order = np.lexsort((cols, -value))

    def share(amount: float) -> float | None:
        # a portfolio emptied by withdrawals has zero equity: no weight of nothing
        return amount / equity if equity > 0 else None

    return {
        "date": dates[i],
        "requested_date": None if day is None else day.isoformat(),
        "equity": equity,
        "cash": cash,
        "cash_weight": share(cash),
        "invested": float(value.sum()),
        "holdings": [
            {
                "symbol": symbols[cols[j]],
                "sector": sectors[cols[j]] or "Unknown",
                "shares": float(shares[j]),
                "price": float(mark[j]),
                "value": float(value[j]),
                "weight": share(float(value[j])),
            }
            for j in order
        ],
    }


# ----------------------------------------------------------------------- exposure
def exposure_body(
    loaded: Loaded, max_points: int, initial_capital: float
) -> dict[str, Any]:
    """Exposure at the chart's down-sampled dates; turnover of every rebalance."""
    equity = np.asarray(loaded.series["equity"], dtype=np.float64)
    drawdown = np.asarray(loaded.series["drawdown"], dtype=np.float64)
    idx = keep_indices(equity, drawdown, max_points)
    exp = loaded.derived.get("exposure")
    if exp is None:  # a race computes it twice, with the same result
        from app.backtests.results import exposure_of  # noqa: PLC0415 - see load()

        exp = loaded.derived["exposure"] = exposure_of(
            loaded.book,
            equity=equity,
            sectors=loaded.stored.sectors,
            initial_capital=initial_capital,
        )
    dates = loaded.dates
    rebalances = exp["rebalances"]
    return {
        "dates": [dates[i] for i in idx],
        "holdings": exp["holdings"][idx].tolist(),
        "invested": exp["invested"][idx].tolist(),
        "sector_weights": {
            n: w[idx].tolist() for n, w in exp["sector_weights"].items()
        },
        "rebalances": [
            {
                "date": dates[int(r)],
                "turnover": float(t),
                "bought": float(b),
                "sold": float(s),
                "fills": int(f),
            }
            for r, t, b, s, f in zip(
                rebalances["row"],
                rebalances["turnover"],
                rebalances["bought"],
                rebalances["sold"],
                rebalances["fills"],
                strict=True,
            )
        ],
    }


# -------------------------------------------------------------------- equity table
def equity_columns(loaded: Loaded) -> dict[str, list[Any]]:
    """The full-resolution daily table, column name -> values (``return`` is None on
    the first session and where undefined (an emptied portfolio), time-weighted on
    flow days; ``net_flow`` the day's contributions minus withdrawals, zeros for
    books stored before cash flows existed; ``benchmark_<NAME>`` per benchmark)."""
    series, book = loaded.series, loaded.book
    equity = np.asarray(series["equity"], dtype=np.float64)
    flows = book["net_flow"] if "net_flow" in book else np.zeros(equity.size)
    # time-weighted: a day's flow is not return (E_t / (E_{t-1} + F_t) - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        daily = np.where(
            flows[1:] != 0.0,
            equity[1:] / (equity[:-1] + flows[1:]) - 1.0,
            equity[1:] / equity[:-1] - 1.0,
        )
    returns: list[float | None] = [
        None,
        *(float(x) if np.isfinite(x) else None for x in daily),
    ]
    columns: dict[str, list[Any]] = {
        "date": list(series["dates"]),
        "equity": equity.tolist(),
        "return": returns,
        "drawdown": list(series["drawdown"]),
        "cash": book["cash"].tolist(),
        # contributions minus withdrawals of the day (books stored before cash
        # flows existed have none: zeros)
        "net_flow": flows.tolist(),
        "dividends": book["dividends"].tolist(),
    }
    if series.get("benchmarks"):
        for run in series["benchmarks"]:
            columns[f"benchmark_{run['name']}"] = list(run["equity"])
    elif series.get("benchmark") is not None:
        columns[f"benchmark_{series.get('benchmark_symbol') or 'benchmark'}"] = list(
            series["benchmark"]
        )
    return columns
