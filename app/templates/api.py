"""``/v1/templates``: saved submissions, and running one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Response, status
from fastapi.responses import JSONResponse

from app.accounts.deps import CurrentUser, SubmittingUser
from app.api.deps import SessionDep, SettingsDep
from app.api.schemas import error_responses
from app.db.models import Template
from app.db.models.idempotency import IDEMPOTENCY_KEY_MAX_LENGTH
from app.jobs import idempotency
from app.jobs.deps import SubmissionQuotaDep
from app.templates import service
from app.templates.schemas import (
    TemplateCreate,
    TemplateOut,
    TemplateRun,
    TemplateUpdate,
)

router = APIRouter(prefix="/templates", tags=["templates"])
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="As on POST /v1/backtest.",
    ),
]


def _out(row: Template) -> TemplateOut:
    return TemplateOut.model_validate(row, from_attributes=True)


@router.post(
    "",
    summary="Save a template",
    description="`config` is validated like a submission of `kind` (400 naming "
    "`body.config.<field>`). Names are unique per account (409).",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplateOut,
    responses=error_responses(400, 401, 409),
)
async def create_template(
    body: TemplateCreate, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> TemplateOut:
    return _out(
        await service.create(session, user=user, request=body, settings=settings)
    )


@router.get(
    "",
    summary="List your templates (by name)",
    response_model=list[TemplateOut],
    responses=error_responses(401),
)
async def list_templates(session: SessionDep, user: CurrentUser) -> list[TemplateOut]:
    return [_out(row) for row in await service.list_owned(session, user=user)]


@router.get(
    "/{template_id}",
    summary="A template",
    response_model=TemplateOut,
    responses=error_responses(401, 404),
)
async def get_template(
    template_id: str, session: SessionDep, user: CurrentUser
) -> TemplateOut:
    return _out(await service.get_owned(session, user=user, template_id=template_id))


@router.patch(
    "/{template_id}",
    summary="Rename a template or replace its configuration",
    response_model=TemplateOut,
    responses=error_responses(400, 401, 404, 409),
)
async def update_template(
    template_id: str,
    body: TemplateUpdate,
    session: SessionDep,
    user: CurrentUser,
    settings: SettingsDep,
) -> TemplateOut:
    row = await service.update(
        session, user=user, template_id=template_id, request=body, settings=settings
    )
    return _out(row)


@router.delete(
    "/{template_id}",
    summary="Delete a template (and its schedules)",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404),
)
async def delete_template(
    template_id: str, session: SessionDep, user: CurrentUser
) -> Response:
    await service.delete(session, user=user, template_id=template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{template_id}/run",
    summary="Submit a template",
    description="A normal submission of the template's configuration with the "
    "given overrides (`start_date`, `end_date`, `initial_capital`, `name`): same "
    "validation, quota, `Idempotency-Key` and response as `POST /v1/backtest`.",
    responses=error_responses(400, 401, 404, 409, 422, 429, 503),
)
async def run_template(
    template_id: str,
    session: SessionDep,
    user: SubmittingUser,
    settings: SettingsDep,
    quota: SubmissionQuotaDep,
    body: Annotated[TemplateRun | None, Body()] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> JSONResponse:
    row = await service.get_owned(session, user=user, template_id=template_id)
    outcome = await service.submit(
        session,
        user=user,
        row=row,
        overrides=body,
        settings=settings,
        quota=quota,
        key=idempotency_key,
    )
    headers = {idempotency.REPLAY_HEADER: "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)
