"""The dead-letter list (admins only): jobs failed for stopping their worker
``MAX_ATTEMPTS`` times (:mod:`app.jobs.deadletters`), and their re-queue."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from app.accounts.deps import AdminUser
from app.api.deps import SessionDep, SettingsDep
from app.api.pagination import MAX_OFFSET, set_page_headers
from app.api.schemas import error_responses
from app.db.models import Job
from app.jobs import deadletters

router = APIRouter(prefix="/admin/dead-letters", tags=["admin"])
MAX_PAGE = 200


class DeadLetter(BaseModel):
    """A job that stopped its worker too often and was not run again."""

    task_id: uuid.UUID
    kind: str
    name: str | None = None
    user_id: uuid.UUID
    status: str
    error: str | None = None
    error_code: str | None = None
    attempts: int = Field(description="Times a worker claimed the job.")
    created_at: dt.datetime
    dead_lettered_at: dt.datetime


class Requeued(BaseModel):
    task_id: uuid.UUID
    status: str


def _out(row: Job) -> DeadLetter:
    assert row.dead_lettered_at is not None
    return DeadLetter(
        task_id=row.id,
        kind=row.kind,
        name=row.name,
        user_id=row.user_id,
        status=row.status,
        error=row.error,
        error_code=row.error_code,
        attempts=row.attempts,
        created_at=row.created_at,
        dead_lettered_at=row.dead_lettered_at,
    )


@router.get(
    "",
    summary="List dead letters",
    description="Administrators only. Jobs of every kind and user that stopped "
    "their worker `MAX_ATTEMPTS` times (3; a crash, a kill or the hard time limit) "
    "and were failed instead of run again, newest first. Paged with `limit`/`offset`"
    "; `X-Total-Count` and `Link` headers.",
    status_code=status.HTTP_200_OK,
    response_model=list[DeadLetter],
    responses=error_responses(400, 401, 403, 429),
)
async def list_dead_letters(
    request: Request,
    response: Response,
    session: SessionDep,
    _: AdminUser,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[DeadLetter]:
    rows, total = await deadletters.list_dead_letters(
        session, limit=limit, offset=offset
    )
    set_page_headers(request, response, total=total, limit=limit, offset=offset)
    return [_out(row) for row in rows]


@router.post(
    "/{task_id}/requeue",
    summary="Re-queue a dead letter",
    description="Administrators only. Resets the job's delivery counter, puts it "
    "back to `pending` (its error cleared) and queues it again. 404 unless the id "
    "is a dead letter (already re-queued included).",
    status_code=status.HTTP_200_OK,
    response_model=Requeued,
    responses=error_responses(400, 401, 403, 404, 429),
)
async def requeue_dead_letter(
    task_id: uuid.UUID, session: SessionDep, settings: SettingsDep, _: AdminUser
) -> Requeued:
    row = await deadletters.requeue(session, job_id=task_id, settings=settings)
    return Requeued(task_id=row.id, status=row.status)
