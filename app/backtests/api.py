"""``/v1/backtest``: submit, read, page, chart, list and cancel/delete backtests."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import (
    APIRouter,
    Depends,
    Header,
    Query,
    Request,
    Response,
    WebSocket,
    status,
)
from fastapi.responses import JSONResponse

from app.accounts.deps import CurrentUser, SubmittingUser
from app.api.caching import conditional
from app.api.deps import SessionDep, SettingsDep
from app.api.pagination import MAX_OFFSET, set_page_headers
from app.api.schemas import error_responses
from app.backtests import results_api, service
from app.backtests.charts import DEFAULT_POINTS, MAX_POINTS, MIN_POINTS
from app.backtests.exports import MEDIA_TYPES, csv_bytes, disposition
from app.backtests.repository import TradeSort
from app.backtests.schemas import (
    BacktestCreated,
    BacktestRequest,
    BacktestStatus,
    CancelResponse,
    ChartData,
    HistoryItem,
    IsoDateTime,
    TradeOut,
)
from app.db.models.idempotency import IDEMPOTENCY_KEY_MAX_LENGTH
from app.jobs import idempotency, relay
from app.jobs import service as jobs
from app.jobs.deps import SubmissionQuotaDep, queue_estimate_of, viewed_job
from app.jobs.progress import get_bus
from app.jobs.repository import JobSort, JobView
from app.jobs.scheduler import QueueEstimate

router = APIRouter(prefix="/backtest", tags=["backtests"])
KIND = service.KIND
ViewedBacktest = Annotated[JobView, Depends(viewed_job(KIND))]

MAX_TRADE_PAGE = 500
MAX_HISTORY_PAGE = 100

_ID_DOC = "The backtest's `task_id` (UUID)."
_CACHE_DOC = (
    " Once completed the response is immutable: it carries an `ETag` and "
    "`Cache-Control: immutable`, and `If-None-Match` gets a 304."
)
StatusFilter = Literal[
    "queued", "pending", "running", "completed", "failed", "cancelled"
]  # fmt: skip
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes the submission safe to retry (see above).",
    ),
]


def _status_body(row: JobView, queue: QueueEstimate | None) -> BacktestStatus:
    return BacktestStatus(
        task_id=row.id,
        name=row.name,
        status=row.status,
        progress=row.progress,
        current_date=row.current_date,
        trades_executed=row.trades_executed,
        fills_executed=row.trades_executed,
        config=row.config,
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        error=row.error,
        error_code=row.error_code,
        metrics=row.metrics,
        queue_position=None if queue is None else queue.position,
        eta_seconds=None if queue is None else queue.eta_seconds,
    )


@router.post(
    "",
    summary="Submit a backtest",
    description="Validates the request against the dataset (dates within coverage, "
    "known symbols, strategy parameters, screening language), stores the job and "
    "queues it. Progress: `GET /v1/backtest/{task_id}` or the WebSocket "
    "`/v1/backtest/{task_id}/progress`.\n\n"
    "**Limits** (per tier): accepted submissions per rolling hour and active "
    "(pending + running) jobs; over either → 429 with `Retry-After`. Every response "
    "carries `X-RateLimit-Limit/Remaining/Reset`, `RateLimit-Policy` and `RateLimit`. "
    "Invalid requests (400) do not count.\n\n"
    "**Idempotency-Key** (optional, ≤ 255 visible ASCII characters, kept ≥ 24 h, "
    "per user): repeating a successful request with the same key and body returns "
    "the original response (`Idempotent-Replayed: true`) without a new job; the same "
    "key with another body is a 422 `IdempotencyKeyMismatch`; while the first "
    "request is still in flight, 409.",
    status_code=status.HTTP_200_OK,
    response_model=BacktestCreated,
    responses=error_responses(400, 401, 409, 413, 422, 429, 503),
)
async def create_backtest(
    body: BacktestRequest,
    session: SessionDep,
    user: SubmittingUser,
    settings: SettingsDep,
    quota: SubmissionQuotaDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    outcome = await service.submit_once(
        session,
        user=user,
        request=body,
        settings=settings,
        quota=quota,
        key=idempotency_key,
    )
    headers = {idempotency.REPLAY_HEADER: "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


@router.get(
    "/history",
    summary="List your backtests",
    description="Newest first by default; filter by status and creation time, sort "
    "by `created_at`, `total_return` or `sharpe_ratio` (prefix `-` for descending). "
    "The total is in `X-Total-Count`, neighbouring pages in `Link`.",
    response_model=list[HistoryItem],
    responses=error_responses(400, 401, 429),
)
@router.get(
    "",
    summary="List your backtests (same as /history)",
    response_model=list[HistoryItem],
    responses=error_responses(400, 401, 429),
)
async def list_backtests(
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    status_filter: Annotated[StatusFilter | None, Query(alias="status")] = None,
    created_after: IsoDateTime | None = None,
    created_before: IsoDateTime | None = None,
    sort: JobSort = "-created_at",
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[HistoryItem]:
    rows, total = await jobs.history(
        session,
        user=user,
        kind=KIND,
        status=status_filter,
        created_after=created_after,
        created_before=created_before,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    set_page_headers(request, response, total=total, limit=limit, offset=offset)
    return [
        HistoryItem(
            task_id=r.id,
            name=r.name,
            status=r.status,
            created_at=r.created_at,
            completed_at=r.completed_at,
            total_return=r.total_return,
            sharpe_ratio=r.sharpe_ratio,
        )
        for r in rows
    ]


@router.get(
    "/{task_id}",
    summary="Status, progress and metrics of a backtest",
    description="`metrics` (the full metric set) is present once `status` is "
    "`completed`; `error` explains a `failed` job. " + _ID_DOC + _CACHE_DOC,
    response_model=BacktestStatus,
    responses={304: {"description": "Not modified"}, **error_responses(401, 404, 429)},
)
async def get_backtest(
    request: Request, response: Response, row: ViewedBacktest
) -> Response:
    version = jobs.result_version(row)
    if fresh := conditional(request, response, version=version, variant="status"):
        return fresh
    # Serialised here by pydantic-core (the response model documents the shape):
    # FastAPI would otherwise validate the model a second time on the way out.
    return Response(
        _status_body(row, queue_estimate_of(request)).model_dump_json(),
        media_type="application/json",
        headers=dict(response.headers),
    )


@router.get(
    "/{task_id}/trades",
    summary="Lots (FIFO round trips) of a completed backtest",
    description="One row per **lot**: the shares of one buy fill until the sell "
    "fills that consume them, first in first out (a partial exit splits a lot; lots "
    "still held at the end are marked to market with `is_open: true`). A position "
    "(`/positions`) is made of one or more lots. Filter by `symbol` and by "
    "entry date (`start_date`, `end_date`); `sort` by entry_date (default), "
    "exit_date, symbol, pnl or pnl_percent (prefix `-` for descending). The total is "
    "in `X-Total-Count`, neighbouring pages in `Link`. `format=csv` returns every "
    "matching lot (same filters and order, no paging) as a CSV attachment. "
    "409 until completed." + _CACHE_DOC,
    response_model=list[TradeOut],
    responses={
        200: {"content": {"text/csv": {}}, "description": "A page of lots."},
        304: {"description": "Not modified"},
        **error_responses(400, 401, 404, 409, 429),
    },
)
async def get_trades(
    task_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    symbol: Annotated[str | None, Query(max_length=16)] = None,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    sort: TradeSort = "entry_date",
    limit: Annotated[int, Query(ge=1, le=MAX_TRADE_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    format: Literal["json", "csv"] = "json",
) -> list[TradeOut] | Response:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=KIND)
    variant = f"trades?{sorted(request.query_params.multi_items())}"
    version = jobs.result_version(row)
    if fresh := conditional(request, response, version=version, variant=variant):
        return fresh
    if format == "csv":
        return await _trades_csv(
            session, row, response, symbol=symbol, start_date=start_date,
            end_date=end_date, sort=sort,
        )  # fmt: skip
    rows, total = await service.trades(
        session,
        row=row,
        symbol=symbol,
        start_date=start_date,
        end_date=end_date,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    set_page_headers(request, response, total=total, limit=limit, offset=offset)
    return [TradeOut.model_validate(r, from_attributes=True) for r in rows]


async def _trades_csv(
    session: SessionDep,
    row: Any,
    response: Response,
    *,
    symbol: str | None,
    start_date: dt.date | None,
    end_date: dt.date | None,
    sort: TradeSort,
) -> Response:
    rows, total = await service.trades(
        session,
        row=row,
        symbol=symbol,
        start_date=start_date,
        end_date=end_date,
        sort=sort,
        limit=None,
        offset=0,
    )
    fields = list(TradeOut.model_fields)
    body = csv_bytes(fields, ([getattr(r, f) for f in fields] for r in rows))
    headers = {
        **response.headers,
        **disposition(f"lots-{row.id}.csv"),
        "X-Total-Count": str(total),
    }
    return Response(body, media_type=MEDIA_TYPES["csv"], headers=headers)


@router.get(
    "/{task_id}/chart",
    summary="Equity curve, drawdown and monthly returns",
    description="Series longer than `max_points` are down-sampled (MinMaxLTTB), "
    "always keeping the first and last day, the equity extremes and the deepest "
    "drawdown. 409 until completed." + _CACHE_DOC,
    response_model=ChartData,
    responses={
        304: {"description": "Not modified"},
        **error_responses(400, 401, 404, 409, 429),
    },
)
async def get_chart(
    task_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    max_points: Annotated[int, Query(ge=MIN_POINTS, le=MAX_POINTS)] = DEFAULT_POINTS,
) -> ChartData | Response:
    row = await jobs.get_owned(session, user=user, task_id=task_id, kind=KIND)
    version = jobs.result_version(row)
    variant = f"chart?max_points={max_points}"
    if fresh := conditional(request, response, version=version, variant=variant):
        return fresh
    body = await service.chart(
        session,
        row=row,
        max_points=max_points,
        cache=getattr(request.app.state, "chart_cache", None),
    )
    return ChartData.model_validate(body)


@router.delete(
    "/{task_id}",
    summary="Cancel a running backtest, or delete a finished one",
    description="Pending or running: the job becomes `cancelled` at once (a queued "
    "job never starts; a running one stops at its next checkpoint, well within 2 s). "
    "Completed, failed or cancelled: the job and its results are deleted (a later "
    "GET is 404).",
    response_model=CancelResponse,
    responses=error_responses(401, 404, 429),
)
async def cancel_backtest(
    task_id: str, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> CancelResponse:
    row, message = await jobs.cancel_or_delete(
        session,
        user=user,
        task_id=task_id,
        kind=KIND,
        bus=get_bus(settings.redis_url),
        settings=settings,
    )
    return CancelResponse(
        task_id=row.id,
        status=row.status,
        message=message,
    )


@router.websocket("/{task_id}/progress")
async def progress_socket(
    websocket: WebSocket, task_id: str, token: str | None = None
) -> None:
    """Live progress; the protocol and close codes are :mod:`app.jobs.relay`'s."""
    await relay.serve_progress(websocket, task_id=task_id, token=token, kind=KIND)


router.include_router(results_api.router)
