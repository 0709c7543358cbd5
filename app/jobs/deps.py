"""Dependencies of job routes, for every kind: the submission quota and the hot
status read of one job (``viewed_job(kind)``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from app.accounts.sessions import revocations_of
from app.api.deps import (
    LimiterDep,
    ReadBindDep,
    SettingsDep,
    TokenDep,
    enforce_api_limit,
    limiter_of,
    read_connection,
)
from app.core.errors import Unauthorized
from app.core.rate_limit import STATE_KEY as RATE_LIMIT_STATE
from app.core.rate_limit import Decision
from app.jobs import service
from app.jobs.quotas import SubmissionQuota
from app.jobs.repository import JobView
from app.jobs.scheduler import QueueEstimate

QUEUE_STATE_KEY = "queue_estimate"


def queue_estimate_of(request: Request) -> QueueEstimate | None:
    """The queue position and wait ``viewed_job`` estimated (queued jobs only)."""
    return getattr(request.state, QUEUE_STATE_KEY, None)


async def get_submission_quota(
    request: Request, limiter: LimiterDep, settings: SettingsDep
) -> SubmissionQuota:
    def publish(decision: Decision) -> None:
        setattr(request.state, RATE_LIMIT_STATE, decision)

    return SubmissionQuota(limiter=limiter, settings=settings, on_decision=publish)


SubmissionQuotaDep = Annotated[SubmissionQuota, Depends(get_submission_quota)]


def viewed_job(kind: str) -> Callable[..., Awaitable[JobView]]:
    """A dependency giving ``{task_id}`` (a ``kind`` job) to its owner or an admin,
    else 404: the same checks as ``CurrentUser`` + ``get_owned`` (token, fresh user
    row, per-user limit, ownership) with the user and the job read in one statement.
    For the hot status read, so it takes settings and limiter from the app directly:
    every FastAPI sub-dependency costs a few microseconds per request."""

    async def get_viewed_job(
        task_id: str, request: Request, bind: ReadBindDep, token: TokenDep
    ) -> JobView:
        if not token:
            raise Unauthorized("Not authenticated")
        async with read_connection(bind) as connection:
            viewer, row = await service.read_owned(
                connection,
                token=token,
                task_id=task_id,
                kind=kind,
                settings=request.app.state.settings,
                revocations=revocations_of(request.app),
            )
            if row is not None and viewer is not None:
                estimate = await service.queue_estimate(
                    connection, row, request.app.state.settings
                )
                setattr(request.state, QUEUE_STATE_KEY, estimate)
        await enforce_api_limit(request, viewer, limiter_of(request.app))
        if row is None:
            raise service.not_found(kind, task_id)
        return row

    return get_viewed_job
