"""Backtest use cases on the API side: submit, read, list, cancel, delete.

Ordering rule for submission: the job row is committed **before** the message is sent,
so a worker can never receive an id that is not in the database; if the broker cannot
be reached the row is marked failed and the client gets 503 (nothing is left pending
without a message, and the sweeper re-sends any message that got lost after that).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.caching import JsonCache
from app.core.config import Settings
from app.core.errors import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
    unavailable_dependency,
)
from app.core.metrics import BACKTEST_REQUESTS
from app.core.progress import ProgressBus
from app.core.queue import enqueue_backtest
from app.db.models import Backtest, BacktestStatus, User
from app.db.repositories import backtests as backtests_repo
from app.db.repositories import trades as trades_repo
from app.db.repositories.backtests import BacktestSort, JobView, Viewer
from app.db.repositories.trades import TradeSort
from app.engine.backtest import check_config
from app.engine.data import MarketData
from app.engine.errors import InvalidInputError
from app.engine.store import load_dataset
from app.schemas.backtest import TERMINAL_STATUSES, BacktestRequest
from app.services import users as users_service
from app.services.charts import chart_response
from app.services.quotas import SubmissionQuota, check_request_limits

logger = structlog.get_logger(__name__)

# Engine field names -> the API's names (the request says "commission").
_API_FIELDS = {"commission_rate": "commission", "slippage_rate": "slippage"}


def api_field(engine_field: str | None) -> str | None:
    if engine_field is None:
        return None
    head, sep, rest = engine_field.partition(".")
    return "body." + _API_FIELDS.get(head, head) + sep + rest


async def dataset_for(settings: Settings, name: str | None) -> MarketData:
    """The (process-cached) dataset; loading it the first time takes ~0.3 s."""
    try:
        return await anyio.to_thread.run_sync(
            lambda: load_dataset(name, datasets_dir=settings.resolved_datasets_dir)
        )
    except InvalidInputError as exc:
        raise ValidationFailed(exc.message, field="body.dataset") from exc


async def submit(
    session: AsyncSession,
    *,
    user: User,
    request: BacktestRequest,
    settings: Settings,
    quota: SubmissionQuota | None = None,
) -> Backtest:
    """Validate, admit (``quota``: after validation, so a 400 costs no quota), store
    and queue one backtest."""
    check_request_limits(request, settings)
    config = request.to_config()
    data = await dataset_for(settings, config.dataset)
    try:
        check_config(config, data)
    except InvalidInputError as exc:
        raise ValidationFailed(exc.message, field=api_field(exc.field)) from exc
    if quota is not None:
        await quota.reserve(session, user=user)
    row = await backtests_repo.create(
        session,
        user_id=user.id,
        config=request.model_dump(mode="json"),
        name=request.name,
    )
    await session.commit()
    try:
        await anyio.to_thread.run_sync(enqueue_backtest, row.id)
    except Exception as exc:
        await backtests_repo.mark_failed(
            session, row.id, error="The job queue was unavailable; please resubmit."
        )
        await session.commit()
        BACKTEST_REQUESTS.labels(status="rejected").inc()
        raise ServiceUnavailable(
            "The job queue is unavailable; try again shortly.", retry_after=5
        ) from exc
    try:
        await backtests_repo.mark_enqueued(session, row.id)
        await session.commit()
    except Exception as exc:
        # The job is stored and queued: it will run, so the client must hear 200,
        # not a 503 that invites a duplicate. ``enqueued_at`` only times the
        # sweeper's re-send, and a re-sent message for a claimed job is a no-op.
        if unavailable_dependency(exc) is None:
            raise
        logger.warning(
            "mark_enqueued_failed", task_id=str(row.id), error=type(exc).__name__
        )
    BACKTEST_REQUESTS.labels(status="submitted").inc()
    return row


def parse_id(task_id: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(task_id)
    except ValueError:
        return None


async def get_owned(session: AsyncSession, *, user: User, task_id: str) -> Backtest:
    """The job if ``user`` may see it; the same 404 for unknown, malformed and other
    users' ids (no enumeration)."""
    backtest_id = parse_id(task_id)
    row = (
        None
        if backtest_id is None
        else await backtests_repo.get_for_owner(session, backtest_id, user)
    )
    if row is None:
        raise NotFound("Backtest not found", task_id=task_id)
    return row


async def read_owned(
    connection: AsyncConnection, *, token: str, task_id: str, settings: Settings
) -> tuple[Viewer, JobView | None]:
    """Authenticate ``token`` and read the job it may see, in one query (see
    ``backtests_repo.get_with_viewer``). The job is ``None`` for unknown, malformed
    and other users' ids: the caller answers 404 after rate limiting, as for
    ``get_owned``."""
    viewer_id = users_service.user_id_from_token(token, settings=settings)
    viewer, row = await backtests_repo.get_with_viewer(
        connection, viewer_id=viewer_id, backtest_id=parse_id(task_id)
    )
    if viewer is None:  # a valid token whose user was deleted
        raise Unauthorized()
    return viewer, row


async def history(
    session: AsyncSession,
    *,
    user: User,
    status: str | None,
    created_after: dt.datetime | None,
    created_before: dt.datetime | None,
    sort: BacktestSort,
    limit: int,
    offset: int,
) -> tuple[list[Backtest], int]:
    return await backtests_repo.list_for_owner(
        session,
        user,
        status=BacktestStatus(status) if status else None,
        created_after=created_after,
        created_before=created_before,
        sort=sort,
        limit=limit,
        offset=offset,
    )


def _require_completed(row: Backtest) -> None:
    if row.status != BacktestStatus.COMPLETED.value:
        raise Conflict(
            f"Backtest is {row.status}; results are available once it has completed.",
            task_id=str(row.id),
        )


async def trades(
    session: AsyncSession,
    *,
    user: User,
    task_id: str,
    symbol: str | None,
    start_date: dt.date | None,
    end_date: dt.date | None,
    sort: TradeSort,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    row = await get_owned(session, user=user, task_id=task_id)
    _require_completed(row)
    return await trades_repo.page(
        session,
        row.id,
        symbol=symbol.upper() if symbol else None,
        entry_from=start_date,
        entry_to=end_date,
        sort=sort,
        limit=limit,
        offset=offset,
    )


def result_version(row: JobView) -> str | None:
    """A validator for the job's results: set once it completed (results never change
    after that), None while it can still change."""
    if row.status != BacktestStatus.COMPLETED.value or row.completed_at is None:
        return None
    return f"{row.id}:{row.completed_at.isoformat()}"


async def chart(
    session: AsyncSession,
    *,
    user: User,
    task_id: str,
    max_points: int,
    cache: JsonCache | None = None,
) -> dict[str, Any]:
    """The chart of a completed job (down-sampled to ``max_points``), served from the
    Redis cache when present: completed results are immutable."""
    row = await get_owned(session, user=user, task_id=task_id)
    _require_completed(row)
    variant = str(max_points)
    if cache is not None and (hit := await cache.get(f"chart:{row.id}", variant)):
        return dict(hit)
    payload = await backtests_repo.get_series(session, row.id)
    if payload is None:  # completed rows always have one (same transaction)
        raise Conflict("Chart data is not available for this backtest.")
    body = await anyio.to_thread.run_sync(chart_response, payload, max_points)
    if cache is not None:
        await cache.set(f"chart:{row.id}", variant, body)
    return body


async def cancel_or_delete(
    session: AsyncSession, *, user: User, task_id: str, bus: ProgressBus
) -> tuple[Backtest, str]:
    """Pending/running: cancel (a queued job never starts, a running one stops at its
    next chunk). Finished: delete the job and its results. Idempotent."""
    row = await get_owned(session, user=user, task_id=task_id)
    if row.status in TERMINAL_STATUSES:
        status = row.status
        await backtests_repo.delete(session, row.id)
        await session.commit()
        return row, f"Backtest ({status}) and its results were deleted."
    # Pending or running: the row turns cancelled now (the database is the truth); a
    # queued message then finds nothing to claim, and a running worker sees the flag
    # (or its next guarded write failing) at its next chunk and stops without saving.
    # Cancel it from the state it is in *now*, not as read above: a queued job may
    # have been claimed since, and the answer must say which it was.
    for was in (BacktestStatus.PENDING, BacktestStatus.RUNNING):
        if await backtests_repo.mark_cancelled(session, row.id, from_status=was):
            await session.commit()
            await bus.request_cancel(str(row.id))
            bus.publish(str(row.id), cancelled_message())
            return row, _cancelled(started=was is BacktestStatus.RUNNING)
    # Someone else ended it first: it finished, or a concurrent DELETE cancelled it
    # (and maybe deleted it since: then it is gone, as for any later DELETE).
    current = await session.get(Backtest, row.id, populate_existing=True)
    if current is None:
        raise NotFound("Backtest not found", task_id=task_id)
    if current.status != BacktestStatus.CANCELLED.value:
        return current, f"Backtest already {current.status}; nothing to cancel."
    return current, _cancelled(started=current.started_at is not None)


def _cancelled(*, started: bool) -> str:
    if started:
        return "Backtest cancelled; the worker stops at its next checkpoint."
    return "Backtest cancelled before it started."


def cancelled_message() -> dict[str, Any]:
    return {
        "status": "cancelled",
        "progress": 0.0,
        "current_date": None,
        "eta_seconds": None,
        "trades_executed": 0,
        "message": "Backtest cancelled.",
    }


def progress_state(row: JobView) -> dict[str, Any]:
    """The WebSocket frame describing a job's stored state (sent first on connect)."""
    return {
        "status": row.status,
        "progress": row.progress,
        "current_date": row.current_date.isoformat() if row.current_date else None,
        "eta_seconds": 0.0 if row.status in TERMINAL_STATUSES else None,
        "trades_executed": row.trades_executed,
        "message": row.error,
    }
