"""``/v1/schedules``: run a template on a cron expression."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.accounts.deps import CurrentUser
from app.api.deps import SessionDep, SettingsDep
from app.api.schemas import error_responses
from app.db.models import Schedule
from app.schedules import service
from app.schedules.schemas import ScheduleCreate, ScheduleOut

router = APIRouter(prefix="/schedules", tags=["schedules"])


def _out(row: Schedule) -> ScheduleOut:
    return ScheduleOut(
        id=row.id,
        template_id=row.template_id,
        cron=row.cron,
        timezone=row.timezone,
        status="active" if row.status == "active" else "paused",
        next_run=row.next_run_at,
        last_run=row.last_run_at,
        last_job_id=row.last_job_id,
        last_error=row.last_error,
        created_at=row.created_at,
    )


@router.post(
    "",
    summary="Schedule a template",
    description="Each run is a normal submission of the template (counted against "
    "your quota; a refused run is recorded in `last_error`) and is announced by your "
    "webhooks like any other job. Runs at least 1 hour apart; at most 10 active "
    "schedules per account (409).",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleOut,
    responses=error_responses(400, 401, 409),
)
async def create_schedule(
    body: ScheduleCreate, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> ScheduleOut:
    return _out(
        await service.create(session, user=user, request=body, settings=settings)
    )


@router.get(
    "",
    summary="List your schedules",
    response_model=list[ScheduleOut],
    responses=error_responses(401),
)
async def list_schedules(session: SessionDep, user: CurrentUser) -> list[ScheduleOut]:
    return [_out(row) for row in await service.list_owned(session, user=user)]


@router.get(
    "/{schedule_id}",
    summary="A schedule: next and last run",
    response_model=ScheduleOut,
    responses=error_responses(401, 404),
)
async def get_schedule(
    schedule_id: str, session: SessionDep, user: CurrentUser
) -> ScheduleOut:
    return _out(await service.get_owned(session, user=user, schedule_id=schedule_id))


@router.post(
    "/{schedule_id}/pause",
    summary="Pause a schedule",
    response_model=ScheduleOut,
    responses=error_responses(401, 404),
)
async def pause_schedule(
    schedule_id: str, session: SessionDep, user: CurrentUser
) -> ScheduleOut:
    return _out(await service.pause(session, user=user, schedule_id=schedule_id))


@router.post(
    "/{schedule_id}/resume",
    summary="Resume a paused schedule (from now on)",
    response_model=ScheduleOut,
    responses=error_responses(401, 404, 409),
)
async def resume_schedule(
    schedule_id: str, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> ScheduleOut:
    row = await service.resume(
        session, user=user, schedule_id=schedule_id, settings=settings
    )
    return _out(row)


@router.delete(
    "/{schedule_id}",
    summary="Delete a schedule",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404),
)
async def delete_schedule(
    schedule_id: str, session: SessionDep, user: CurrentUser
) -> Response:
    await service.delete(session, user=user, schedule_id=schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
