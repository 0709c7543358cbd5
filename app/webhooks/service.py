"""Webhook endpoints on the API side: register (SSRF-checked), list, read, delete,
rotate the secret, re-enable, list deliveries."""

from __future__ import annotations

import re
import uuid

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.core.errors import Conflict, NotFound, ValidationFailed
from app.db.models import User, WebhookDelivery, WebhookEndpoint
from app.jobs import registry
from app.webhooks import repository
from app.webhooks.delivery import new_secret
from app.webhooks.schemas import EVENT_PATTERN, OTHER_EVENTS, WebhookCreate
from app.webhooks.ssrf import UnsafeUrl, check_url


async def check_safe_url(url: str, *, settings: Settings, field: str) -> None:
    """400 naming ``field`` unless the service may call ``url`` (resolves DNS)."""
    try:
        await anyio.to_thread.run_sync(
            lambda: check_url(url, allowed_hosts=settings.webhook_allowed_hosts)
        )
    except UnsafeUrl as exc:
        raise ValidationFailed(
            f"This URL may not be called: {exc}.", field=field
        ) from exc


def check_events(events: list[str]) -> list[str]:
    kinds = {kind.name for kind in registry.registered()}
    for index, event in enumerate(events):
        if event in OTHER_EVENTS:
            continue
        if not re.match(EVENT_PATTERN, event) or event.split(".")[0] not in kinds:
            known = ", ".join(
                [f"{k}.completed, {k}.failed" for k in sorted(kinds)] + [*OTHER_EVENTS]
            )
            raise ValidationFailed(
                f"Unknown event type {event!r}; known: {known}.",
                field=f"body.events.{index}",
            )
    return list(dict.fromkeys(events))


async def create(
    session: AsyncSession, *, user: User, request: WebhookCreate, settings: Settings
) -> WebhookEndpoint:
    events = check_events(request.events)
    await check_safe_url(request.url, settings=settings, field="body.url")
    if (
        await repository.count_for_owner(session, user.id)
        >= settings.webhook_max_endpoints_per_user
    ):
        raise Conflict(
            f"At most {settings.webhook_max_endpoints_per_user} webhook endpoints "
            "per account; delete one first."
        )
    row = await repository.create_endpoint(
        session,
        user_id=user.id,
        url=request.url,
        events=events,
        description=request.description,
        secret=new_secret(),
    )
    await session.commit()
    return row


def _not_found(webhook_id: str) -> NotFound:
    return NotFound("Webhook endpoint not found", task_id=webhook_id)


async def get_owned(
    session: AsyncSession, *, user: User, webhook_id: str
) -> WebhookEndpoint:
    """The same 404 for unknown, malformed and other users' ids."""
    try:
        endpoint_id = uuid.UUID(webhook_id)
    except ValueError:
        raise _not_found(webhook_id) from None
    row = await repository.get_for_owner(session, endpoint_id, user.id)
    if row is None:
        raise _not_found(webhook_id)
    return row


async def list_owned(session: AsyncSession, *, user: User) -> list[WebhookEndpoint]:
    return await repository.list_for_owner(session, user.id)


async def delete(session: AsyncSession, *, user: User, webhook_id: str) -> None:
    row = await get_owned(session, user=user, webhook_id=webhook_id)
    await session.delete(row)
    await session.commit()


async def rotate_secret(
    session: AsyncSession, *, user: User, webhook_id: str
) -> WebhookEndpoint:
    """A new secret at once (pending retries are signed with it)."""
    row = await get_owned(session, user=user, webhook_id=webhook_id)
    row.secret = new_secret()
    await session.commit()
    return row


async def enable(
    session: AsyncSession, *, user: User, webhook_id: str
) -> WebhookEndpoint:
    row = await get_owned(session, user=user, webhook_id=webhook_id)
    row.disabled_at = row.disabled_reason = row.failing_since = None
    await session.commit()
    return row


async def deliveries(
    session: AsyncSession, *, user: User, webhook_id: str, limit: int, offset: int
) -> tuple[list[WebhookDelivery], int]:
    row = await get_owned(session, user=user, webhook_id=webhook_id)
    return await repository.list_deliveries(session, row.id, limit=limit, offset=offset)
