"""``/v1/backtest/{task_id}/...``: what a completed result tells you — analysis,
positions, holdings, exposure, the equity export and the HTML report.

Included by :mod:`app.backtests.api`'s router (same prefix, tag and auth); every
route is 404 for another user's (or an unknown) id and 409 until completed.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import anyio
import orjson
from fastapi import APIRouter, Query, Request, Response

from app.accounts.deps import CurrentUser
from app.api.caching import conditional
from app.api.deps import SessionDep
from app.api.pagination import MAX_OFFSET, set_page_headers
from app.api.schemas import error_responses
from app.backtests import results_service as service
from app.backtests.charts import DEFAULT_POINTS, MAX_POINTS, MIN_POINTS
from app.backtests.exports import MEDIA_TYPES, ExportFormat, columns_to, disposition
from app.backtests.report import render_report
from app.backtests.results_repository import PositionSort
from app.backtests.results_schemas import (
    AnalysisOut,
    ExposureOut,
    HoldingsOut,
    PositionOut,
)
from app.jobs import service as jobs

router = APIRouter()
KIND = "backtest"
MAX_POSITION_PAGE = 500
_CACHED = " Immutable once completed (`ETag`, `If-None-Match` → 304)."
_RESPONSES = {
    304: {"description": "Not modified"},
    **error_responses(400, 401, 404, 409),
}


def _json(body: object, response: Response) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
        headers=dict(response.headers),
    )


@router.get(
    "/{task_id}/analysis",
    summary="Analysis of a completed backtest",
    description="Computed once when the backtest completed and stored: probabilistic "
    "Sharpe, t-test, VaR/CVaR, the five deepest drawdowns, annual returns, rolling "
    "252-session Sharpe/volatility/beta, crisis windows, up/down capture and a "
    'stationary block bootstrap seeded from the task id (README "Reading a '
    'result" states every convention). 409 until completed.' + _CACHED,
    response_model=AnalysisOut,
    responses=_RESPONSES,
)
async def get_analysis(
    task_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=KIND)
    if fresh := conditional(request, response, version=jobs.result_version(row)):
        return fresh
    return _json(await service.analysis(session, row=row), response)


@router.get(
    "/{task_id}/positions",
    summary="Positions of a completed backtest",
    description="One row per position: a symbol held continuously from the buy that "
    "opened it to the sell that emptied it (`closed` null and `is_open` true while "
    "still held at the end). A position holds one or more lots (the FIFO round trips "
    "of `/trades`) and two or more fills. Filter by `symbol`, `sector`, `is_open` and "
    "opening date (`start_date`, `end_date`); `sort` by opened (default), closed, "
    "symbol, pnl, return_pct or holding_days (prefix `-` for descending). The total "
    "is in `X-Total-Count`, neighbouring pages in `Link`. 409 until completed."
    + _CACHED,
    response_model=list[PositionOut],
    responses=_RESPONSES,
)
async def get_positions(
    task_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    symbol: Annotated[str | None, Query(max_length=16)] = None,
    sector: Annotated[str | None, Query(max_length=64)] = None,
    is_open: bool | None = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    sort: PositionSort = "opened",
    limit: Annotated[int, Query(ge=1, le=MAX_POSITION_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[PositionOut] | Response:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=KIND)
    variant = f"positions?{sorted(request.query_params.multi_items())}"
    version = jobs.result_version(row)
    if fresh := conditional(request, response, version=version, variant=variant):
        return fresh
    rows, total = await service.positions(
        session,
        row=row,
        symbol=symbol,
        sector=sector,
        is_open=is_open,
        start_date=start_date,
        end_date=end_date,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    set_page_headers(request, response, total=total, limit=limit, offset=offset)
    return [PositionOut.model_validate(r, from_attributes=True) for r in rows]


@router.get(
    "/{task_id}/holdings",
    summary="Holdings at the close of a session",
    description="What the portfolio held at the close of `date` (or of the nearest "
    "earlier session; the last session without `date`): symbol, shares, the close "
    "valuing them (carried forward over gaps), value, weight and sector, and the "
    "cash. `Σ value + cash = equity` of that close, the equity curve's value. 400 "
    "for a date before the first session; 409 until completed." + _CACHED,
    response_model=HoldingsOut,
    responses=_RESPONSES,
)
async def get_holdings(
    task_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    date: dt.date | None = None,
) -> Response:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=KIND)
    version = jobs.result_version(row)
    if fresh := conditional(request, response, version=version, variant=f"h{date}"):
        return fresh
    loaded = await service.load(session, row=row)
    return _json(service.holdings_body(loaded, date), response)


@router.get(
    "/{task_id}/exposure",
    summary="Exposure over time",
    description="At the same down-sampled dates as `/chart` (at most `max_points`): "
    "number of holdings, invested fraction of equity and weight of each sector at "
    "the close; and every rebalance's one-way turnover "
    "`(bought + sold) / 2 / previous close's equity` with its notional and fill "
    "count. 409 until completed." + _CACHED,
    response_model=ExposureOut,
    responses=_RESPONSES,
)
async def get_exposure(
    task_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    max_points: Annotated[int, Query(ge=MIN_POINTS, le=MAX_POINTS)] = DEFAULT_POINTS,
) -> Response:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=KIND)
    version = jobs.result_version(row)
    variant = f"exposure?{max_points}"
    if fresh := conditional(request, response, version=version, variant=variant):
        return fresh
    loaded = await service.load(session, row=row)
    capital = float(row.config.get("initial_capital", 100_000.0))
    body = await anyio.to_thread.run_sync(
        service.exposure_body, loaded, max_points, capital
    )
    return _json(body, response)


@router.get(
    "/{task_id}/equity",
    summary="Daily equity series for download",
    description="Full resolution, one row per session: `date, equity, return` (simple "
    "daily return, empty on the first session), `drawdown, cash, net_flow` "
    "(deposits minus withdrawals: always 0, a backtest has none), `dividends` "
    "(cash dividend income of the day), and `benchmark_<SYMBOL>` with a benchmark. "
    "`format`: csv (default), parquet or json (a list of row objects). 409 until "
    "completed." + _CACHED,
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.apache.parquet": {},
                "application/json": {},
            },
            "description": "The table, as an attachment.",
        },
        **_RESPONSES,
    },
)
async def get_equity(
    task_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    format: ExportFormat = "csv",
) -> Response:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=KIND)
    version = jobs.result_version(row)
    if fresh := conditional(request, response, version=version, variant=format):
        return fresh
    loaded = await service.load(session, row=row)
    columns = service.equity_columns(loaded)
    body = await anyio.to_thread.run_sync(columns_to, format, columns)
    headers = {**response.headers, **disposition(f"equity-{row.id}.{format}")}
    return Response(body, media_type=MEDIA_TYPES[format], headers=headers)


@router.get(
    "/{task_id}/report",
    summary="A self-contained HTML tearsheet",
    description="One HTML file with inline CSS, SVG charts and data, no external "
    "request: configuration, headline metrics against the benchmark, equity (linear "
    "and log) and drawdown, monthly-returns heatmap, annual returns, top drawdowns, "
    "rolling statistics, crisis windows, bootstrap distribution and the "
    "fills/lots/positions summary; prints cleanly on A4. `download=true` adds "
    "`Content-Disposition: attachment`. 409 until completed." + _CACHED,
    responses={
        200: {"content": {"text/html": {}}, "description": "The report."},
        **_RESPONSES,
    },
)
async def get_report(
    task_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    download: bool = False,
) -> Response:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=KIND)
    version = jobs.result_version(row)
    if fresh := conditional(request, response, version=version, variant="report"):
        return fresh
    loaded = await service.load(session, row=row)
    analysis = await service.analysis(session, row=row)
    positions = await service.all_positions(session, row=row)
    html = await anyio.to_thread.run_sync(
        render_report, row, loaded, analysis, positions
    )
    headers = dict(response.headers)
    if download:
        headers.update(disposition(f"report-{row.id}.html"))
    return Response(html, media_type="text/html; charset=utf-8", headers=headers)
