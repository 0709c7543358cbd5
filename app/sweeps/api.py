"""``/v1/sweeps``: submit, read, list, cancel/delete parameter sweeps; their rows,
heatmap, returns and progress; re-run one row as a backtest."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, WebSocket
from fastapi.responses import JSONResponse

from app.accounts.deps import CurrentUser, SubmittingUser
from app.api.deps import SessionDep, SettingsDep
from app.api.pagination import set_page_headers
from app.api.schemas import error_responses
from app.db.models import Job
from app.db.models.idempotency import IDEMPOTENCY_KEY_MAX_LENGTH
from app.jobs import idempotency, relay
from app.jobs import service as jobs
from app.jobs.deps import SubmissionQuotaDep
from app.jobs.progress import get_bus
from app.jobs.repository import JobSort
from app.sweeps import grid, repository, service
from app.sweeps.schemas import (
    MAX_GRID_KEYS,
    OBJECTIVES,
    Heatmap,
    RowBacktestCreated,
    SweepCancelled,
    SweepCreated,
    SweepLimits,
    SweepListItem,
    SweepRequest,
    SweepRowOut,
    SweepStatus,
    WalkForwardChart,
)

router = APIRouter(prefix="/sweeps", tags=["sweeps"])
KIND = service.KIND
MAX_RESULTS_PAGE = 500
MAX_LIST_PAGE = 100
MAX_OFFSET = 10_000_000
StatusFilter = Literal[
    "queued", "pending", "running", "completed", "failed", "cancelled"
]  # fmt: skip
SweepId = Annotated[str, Path(description="The sweep's `sweep_id` (UUID).")]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes the submission safe to retry (as for POST /v1/backtest).",
    ),
]


async def _owned(session: SessionDep, user: CurrentUser, sweep_id: str) -> Job:
    return await jobs.get_owned(session, user=user, task_id=sweep_id, kind=KIND)


@router.post(
    "",
    summary="Submit a parameter sweep",
    description="Runs `base` (a complete POST /v1/backtest body) once per "
    "combination of `grid`. Invalid combinations are dropped and counted in "
    "`skipped_combinations`; none valid → 400 naming the reason. The grid's size is "
    "capped per tier. Counts as one submission and one active job. "
    "`Idempotency-Key` as for POST /v1/backtest.",
    response_model=SweepCreated,
    responses=error_responses(400, 401, 409, 413, 422, 429, 503),
)
async def create_sweep(
    body: SweepRequest,
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
    "",
    summary="List your sweeps",
    description="Newest first by default; `X-Total-Count` and `Link` headers.",
    response_model=list[SweepListItem],
    responses=error_responses(400, 401),
)
async def list_sweeps(
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    status_filter: Annotated[StatusFilter | None, Query(alias="status")] = None,
    created_after: dt.datetime | None = None,
    created_before: dt.datetime | None = None,
    sort: JobSort = "-created_at",
    limit: Annotated[int, Query(ge=1, le=MAX_LIST_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[SweepListItem]:
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
        SweepListItem(
            sweep_id=r.id,
            name=r.name,
            status=r.status,
            combinations=r.config["combinations"],
            created_at=r.created_at,
            completed_at=r.completed_at,
        )
        for r in rows
    ]


@router.get(
    "/limits",
    summary="What your sweeps may hold",
    description="Your tier's cap on combinations per sweep, the grid's bounds, the "
    "objectives and the sweepable keys (for forms that check before submitting).",
    response_model=SweepLimits,
    responses=error_responses(401),
)
async def get_limits(user: CurrentUser, settings: SettingsDep) -> SweepLimits:
    return SweepLimits(
        tier=user.tier,
        max_combinations=settings.rate_limits.sweep_combinations[user.tier],  # type: ignore[index]
        max_grid_keys=MAX_GRID_KEYS,
        max_values_per_key=grid.MAX_VALUES_PER_KEY,
        objectives=list(OBJECTIVES),
        grid_keys=[*grid.SCALAR_KEYS, *grid.SCREEN_KEYS],
    )


@router.get(
    "/{sweep_id}",
    summary="Status, progress and the best row of a sweep",
    description="`best` is the best row so far by the objective; once completed, "
    "`overfitting` holds PBO, DSR and a verdict.",
    response_model=SweepStatus,
    responses=error_responses(401, 404),
)
async def get_sweep(
    sweep_id: SweepId, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> SweepStatus:
    row = await _owned(session, user, sweep_id)
    queue = await jobs.queue_estimate(session, row, settings)
    summary = await repository.get_summary(session, row.id)
    config = row.config
    return SweepStatus(
        sweep_id=row.id,
        name=row.name,
        status=row.status,
        progress=row.progress,
        combinations=config["combinations"],
        skipped_combinations=config["skipped_combinations"],
        combinations_done=row.trades_executed,
        eta_seconds=service.eta_seconds(row) if queue is None else queue.eta_seconds,
        queue_position=None if queue is None else queue.position,
        objective=config["objective"],
        request=config["request"],
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        error=row.error,
        error_code=row.error_code,
        best=await service.best(session, row),
        overfitting=None if summary is None else summary.overfitting,
        walk_forward=None if summary is None else summary.walk_forward,
    )


@router.delete(
    "/{sweep_id}",
    summary="Cancel a running sweep, or delete a finished one",
    description="Pending or running: cancelled at once; the worker stops within "
    "2 s and the rows it finished stay readable. Finished: deleted with its rows.",
    response_model=SweepCancelled,
    responses=error_responses(401, 404),
)
async def cancel_sweep(
    sweep_id: SweepId, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> SweepCancelled:
    row, message = await jobs.cancel_or_delete(
        session,
        user=user,
        task_id=sweep_id,
        kind=KIND,
        bus=get_bus(settings.redis_url),
        settings=settings,
    )
    return SweepCancelled(
        sweep_id=row.id,
        status=row.status,
        message=message,
    )


@router.get(
    "/{sweep_id}/results",
    summary="One row per combination",
    description="`index` (0-based, grid order, last key fastest), `params` (the grid "
    "keys), `metrics` (a single backtest's metric set) and `psr`. `sort` by `index`, "
    "`psr` or a metric (prefix `-` for descending). Readable while running and "
    "after a cancel. `X-Total-Count` and `Link` headers.",
    response_model=list[SweepRowOut],
    responses=error_responses(400, 401, 404),
)
async def get_results(
    sweep_id: SweepId,
    request: Request,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    sort: Annotated[str, Query(max_length=64)] = "index",
    limit: Annotated[int, Query(ge=1, le=MAX_RESULTS_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[SweepRowOut]:
    row = await _owned(session, user, sweep_id)
    rows, total = await service.results(
        session, job=row, sort=sort, limit=limit, offset=offset
    )
    set_page_headers(request, response, total=total, limit=limit, offset=offset)
    return rows


@router.get(
    "/{sweep_id}/heatmap",
    summary="A metric over two grid keys",
    description="`values[i][j]` is the metric at `y_values[i]`, `x_values[j]`; with "
    "more grid keys, the best value over them, and `indexes` says which row.",
    response_model=Heatmap,
    responses=error_responses(400, 401, 404),
)
async def get_heatmap(
    sweep_id: SweepId,
    session: SessionDep,
    user: CurrentUser,
    x: Annotated[str, Query(max_length=100)],
    y: Annotated[str, Query(max_length=100)],
    metric: Annotated[str, Query(max_length=64)] = "sharpe_ratio",
) -> Heatmap:
    row = await _owned(session, user, sweep_id)
    body = await service.heatmap(session, job=row, x=x, y=y, metric=metric)
    return Heatmap.model_validate(body)


@router.get(
    "/{sweep_id}/returns",
    summary="Daily returns of every combination (CSV or Parquet)",
    description="First column `date`, then one column per combination named by "
    "its index: `equity[t]/equity[t-1]-1`, the first date dropped. 409 until "
    "completed.",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}},
        **error_responses(401, 404, 409),
    },
)
async def get_returns(
    sweep_id: SweepId,
    session: SessionDep,
    user: CurrentUser,
    format: Literal["csv", "parquet"] = "csv",
) -> Response:
    row = await _owned(session, user, sweep_id)
    content, media_type = await service.returns_table(session, job=row, fmt=format)
    filename = f"sweep-{row.id}-returns.{format}"
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/{sweep_id}/chart",
    summary="The walk-forward's out-of-sample curve",
    description="The test spans' daily returns chained from `initial_capital`, "
    "with the benchmark chained the same way. 409 until completed, or when the "
    "sweep has no `walk_forward`.",
    response_model=WalkForwardChart,
    responses=error_responses(401, 404, 409),
)
async def get_chart(
    sweep_id: SweepId, session: SessionDep, user: CurrentUser
) -> WalkForwardChart:
    row = await _owned(session, user, sweep_id)
    return WalkForwardChart.model_validate(await service.chart(session, job=row))


@router.post(
    "/{sweep_id}/results/{index}/backtest",
    summary="Run one row as a normal backtest",
    description="Submits the base request with the row's params through the "
    "backtest kind's own validation, counted like any submission; returns what "
    "POST /v1/backtest returns.",
    response_model=RowBacktestCreated,
    responses=error_responses(400, 401, 404, 429, 503),
)
async def backtest_row(
    sweep_id: SweepId,
    index: Annotated[int, Path(ge=0, le=MAX_OFFSET)],
    session: SessionDep,
    user: SubmittingUser,
    settings: SettingsDep,
    quota: SubmissionQuotaDep,
) -> JSONResponse:
    row = await _owned(session, user, sweep_id)
    body = await service.submit_row_backtest(
        session, user=user, job=row, index=index, settings=settings, quota=quota
    )
    return JSONResponse(body)


@router.websocket("/{sweep_id}/progress")
async def progress_socket(
    websocket: WebSocket, sweep_id: str, token: str | None = None
) -> None:
    """Live progress (frames carry `combinations_done`); protocol and close codes
    are :mod:`app.jobs.relay`'s."""
    await relay.serve_progress(websocket, task_id=sweep_id, token=token, kind=KIND)
