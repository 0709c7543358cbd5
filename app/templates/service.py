"""Templates: saved, validated submissions of a job kind, per user (names unique per
user), run as a normal submission (quota and idempotency as ``POST /v1/<kind>``).

A template reaches its kind through ``app.jobs.registry.KindApi`` (``validate`` and
``submit``), never by importing the kind's domain."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.db.base import utcnow
from app.db.models import Template, User
from app.jobs import idempotency, registry
from app.jobs.quotas import SubmissionQuota
from app.templates import repository
from app.templates.schemas import TemplateCreate, TemplateRun, TemplateUpdate


def _api(kind: str) -> registry.KindApi:
    try:
        return registry.api_of(kind)
    except LookupError:
        raise ValidationFailed(
            f"Unknown job kind {kind!r}.", field="body.kind"
        ) from None


async def _check_name(
    session: AsyncSession, user: User, name: str, *, other_than: Any = None
) -> None:
    if await repository.name_taken(session, user.id, name, other_than=other_than):
        raise Conflict(f"You already have a template named {name!r}.")


async def create(
    session: AsyncSession, *, user: User, request: TemplateCreate, settings: Settings
) -> Template:
    config = await _api(request.kind).validate(request.config, settings)
    await _check_name(session, user, request.name)
    row = await repository.create(
        session, user_id=user.id, kind=request.kind, name=request.name, config=config
    )
    await session.commit()
    return row


async def get_owned(session: AsyncSession, *, user: User, template_id: str) -> Template:
    """The same 404 for unknown, malformed and other users' ids."""
    try:
        key = uuid.UUID(template_id)
    except ValueError:
        key = None
    row = key and await repository.get_for_owner(session, key, user.id)
    if not row:
        raise NotFound("Template not found", task_id=template_id)
    return row


async def list_owned(session: AsyncSession, *, user: User) -> list[Template]:
    return await repository.list_for_owner(session, user.id)


async def update(
    session: AsyncSession,
    *,
    user: User,
    template_id: str,
    request: TemplateUpdate,
    settings: Settings,
) -> Template:
    row = await get_owned(session, user=user, template_id=template_id)
    if request.config is not None:
        row.config = await _api(row.kind).validate(request.config, settings)
    if request.name is not None and request.name != row.name:
        await _check_name(session, user, request.name, other_than=row.id)
        row.name = request.name
    row.updated_at = utcnow()
    await session.commit()
    return row


async def delete(session: AsyncSession, *, user: User, template_id: str) -> None:
    row = await get_owned(session, user=user, template_id=template_id)
    await session.delete(row)
    await session.commit()


def run_config(row: Template, overrides: TemplateRun | None) -> dict[str, Any]:
    config = dict(row.config)
    config.setdefault("name", row.name)
    if overrides is not None:
        config.update(overrides.model_dump(mode="json", exclude_none=True))
    return config


async def submit(
    session: AsyncSession,
    *,
    user: User,
    row: Template,
    overrides: TemplateRun | None,
    settings: Settings,
    quota: SubmissionQuota | None,
    key: str | None,
) -> idempotency.Outcome:
    """The template (with ``overrides``) as a normal submission of its kind."""
    outcome: idempotency.Outcome = await _api(row.kind).submit(
        session,
        user=user,
        config=run_config(row, overrides),
        settings=settings,
        quota=quota,
        key=key,
    )
    return outcome
