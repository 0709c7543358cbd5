"""``/v1/webhooks``: register endpoints, rotate their secrets, read deliveries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from app.accounts.deps import CurrentUser
from app.api.deps import SessionDep, SettingsDep
from app.api.schemas import error_responses
from app.db.models import WebhookDelivery, WebhookEndpoint
from app.webhooks import service
from app.webhooks.schemas import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookSecret,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_DELIVERY_PAGE = 100


def _out(row: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=row.events,
        description=row.description,
        status="disabled" if row.disabled_at else "active",
        status_note=row.disabled_reason,
        failing_since=row.failing_since,
        created_at=row.created_at,
    )


def _delivery(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        webhook_id=row.msg_id,
        event_type=row.event_type,
        job_id=row.job_id,
        url=row.url,
        status=row.status,
        attempts=row.attempts,
        response_code=row.response_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        created_at=row.created_at,
    )


@router.post(
    "",
    summary="Register a webhook endpoint",
    description="Deliveries are signed per Standard Webhooks (`webhook-id`, "
    "`webhook-timestamp`, `webhook-signature` headers) with the returned `secret`, "
    "shown only in this response and on rotation. The URL must be https and resolve "
    "to a public address. Up to 10 endpoints per account.",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=error_responses(400, 401, 409),
)
async def create_webhook(
    body: WebhookCreate, session: SessionDep, user: CurrentUser, settings: SettingsDep
) -> WebhookCreated:
    row = await service.create(session, user=user, request=body, settings=settings)
    return WebhookCreated(**_out(row).model_dump(), secret=row.secret)


@router.get(
    "",
    summary="List your webhook endpoints",
    response_model=list[WebhookOut],
    responses=error_responses(401),
)
async def list_webhooks(session: SessionDep, user: CurrentUser) -> list[WebhookOut]:
    return [_out(row) for row in await service.list_owned(session, user=user)]


@router.get(
    "/{webhook_id}",
    summary="A webhook endpoint (without its secret)",
    response_model=WebhookOut,
    responses=error_responses(401, 404),
)
async def get_webhook(
    webhook_id: str, session: SessionDep, user: CurrentUser
) -> WebhookOut:
    return _out(await service.get_owned(session, user=user, webhook_id=webhook_id))


@router.delete(
    "/{webhook_id}",
    summary="Delete a webhook endpoint and its delivery log",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 404),
)
async def delete_webhook(
    webhook_id: str, session: SessionDep, user: CurrentUser
) -> Response:
    await service.delete(session, user=user, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhook_id}/rotate-secret",
    summary="Replace the signing secret",
    description="The old secret stops signing at once, pending retries included.",
    response_model=WebhookSecret,
    responses=error_responses(401, 404),
)
async def rotate_webhook_secret(
    webhook_id: str, session: SessionDep, user: CurrentUser
) -> WebhookSecret:
    row = await service.rotate_secret(session, user=user, webhook_id=webhook_id)
    return WebhookSecret(id=row.id, secret=row.secret)


@router.post(
    "/{webhook_id}/enable",
    summary="Re-enable an endpoint that was disabled after failing for days",
    response_model=WebhookOut,
    responses=error_responses(401, 404),
)
async def enable_webhook(
    webhook_id: str, session: SessionDep, user: CurrentUser
) -> WebhookOut:
    return _out(await service.enable(session, user=user, webhook_id=webhook_id))


@router.get(
    "/{webhook_id}/deliveries",
    summary="Recent deliveries to this endpoint",
    description="Newest first: status, attempts, last response code or error, "
    "next attempt. The total is in `X-Total-Count`.",
    response_model=list[DeliveryOut],
    responses=error_responses(400, 401, 404),
)
async def list_deliveries(
    webhook_id: str,
    response: Response,
    session: SessionDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERY_PAGE)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[DeliveryOut]:
    rows, total = await service.deliveries(
        session, user=user, webhook_id=webhook_id, limit=limit, offset=offset
    )
    response.headers["X-Total-Count"] = str(total)
    return [_delivery(row) for row in rows]
