"""Building, signing and attempting deliveries (Standard Webhooks).

A delivery is tried on ``WEBHOOK_RETRY_SCHEDULE_SECONDS`` (immediately, 5 s, 5 min,
30 min, 2 h, 5 h, 10 h, 10 h by default; each delay jittered by
``WEBHOOK_RETRY_JITTER``) until a 2xx answer. Every attempt carries the same
``webhook-id`` (receivers deduplicate: delivery is at least once), a fresh
``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` of
``id.timestamp.body`` with the endpoint's secret). Redirects are not followed (a 3xx
is a failure). An endpoint whose deliveries all failed for
``WEBHOOK_DISABLE_AFTER_HOURS`` is disabled, with the reason in its status.

One attempt is three short steps so no database connection is held during the HTTP
call: ``claim`` (the row is due and now leased to this attempt), ``send``, ``record``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks.webhooks import Webhook

from app.core.config import Settings
from app.db.base import utcnow
from app.db.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from app.jobs.registry import JobEvent
from app.webhooks import repository

if TYPE_CHECKING:
    import httpx  # the worker's (app.webhooks.client): not the API process's

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
CLAIM_SLACK = dt.timedelta(seconds=2)  # a countdown message may arrive a bit early
HEADLINE_METRICS = (
    "total_return",
    "cagr",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "volatility",
)
MAX_ERROR_LENGTH = 500


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` + base64 of 24 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def payload_of(event: JobEvent, *, path: str, base_url: str) -> dict[str, Any]:
    """The JSON body: the event type, the job, its headline metrics and links."""
    metrics = event.metrics or {}
    link = f"{base_url.rstrip('/')}{path}/{event.job_id}"
    return {
        "type": event.type,
        "timestamp": utcnow().isoformat(),
        "data": {
            "job_id": str(event.job_id),
            "kind": event.kind,
            "name": event.name,
            "status": event.status,
            "error": event.error,
            "created_at": event.created_at.isoformat(),
            "completed_at": (
                event.completed_at.isoformat() if event.completed_at else None
            ),
            "metrics": {k: metrics[k] for k in HEADLINE_METRICS if k in metrics},
            "links": {"self": link},
        },
    }


def signed_headers(
    secret: str, msg_id: str, body: str, now: dt.datetime
) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id, now, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


@dataclass(frozen=True)
class Attempt:
    delivery_id: uuid.UUID
    url: str
    secret: str
    msg_id: str
    body: str


@dataclass(frozen=True)
class Outcome:
    ok: bool
    response_code: int | None
    error: str | None


async def claim(
    session: AsyncSession, delivery_id: uuid.UUID, *, settings: Settings
) -> Attempt | None:
    """The attempt to make now, or None (not due, finished, or its endpoint gone
    or disabled: then the delivery is failed)."""
    now = utcnow()
    lease = dt.timedelta(seconds=settings.webhook_timeout_seconds * 3 + 30)
    if not await repository.claim_delivery(
        session, delivery_id, now=now, lease=lease, slack=CLAIM_SLACK
    ):
        await session.rollback()
        return None
    row = await session.get(WebhookDelivery, delivery_id)
    endpoint = None
    if row is not None:
        endpoint = await session.get(WebhookEndpoint, row.endpoint_id)
    if row is None or endpoint is None:
        await session.rollback()
        return None
    if endpoint.disabled_at is not None:
        row.status = DeliveryStatus.FAILED.value
        row.last_error = "The endpoint is disabled."
        row.next_attempt_at = None
        await session.commit()
        return None
    await session.commit()
    body = json.dumps(row.payload, separators=(",", ":"))
    return Attempt(row.id, row.url, endpoint.secret, row.msg_id, body)


def send(client: httpx.Client, attempt: Attempt) -> Outcome:
    """POST the signed body once; 2xx is success, anything else a failure."""
    import httpx  # noqa: PLC0415 - worker side, loaded with the client already

    headers = signed_headers(attempt.secret, attempt.msg_id, attempt.body, utcnow())
    try:
        response = client.post(attempt.url, content=attempt.body, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    error = f"HTTP {response.status_code}"
    if response.is_redirect:
        error += " (redirects are not followed)"
    return Outcome(False, response.status_code, error)


def next_delay(attempts: int, settings: Settings) -> float | None:
    """Seconds until the attempt after ``attempts`` failed ones (None: give up)."""
    schedule = settings.webhook_retry_schedule_seconds
    if attempts >= len(schedule):
        return None
    jitter = settings.webhook_retry_jitter
    return schedule[attempts] * random.uniform(1 - jitter, 1 + jitter)  # noqa: S311


async def record(
    session: AsyncSession, attempt: Attempt, outcome: Outcome, *, settings: Settings
) -> float | None:
    """Store the attempt's outcome; returns the delay before the next attempt (None:
    delivered, or given up)."""
    now = utcnow()
    row = await session.get(WebhookDelivery, attempt.delivery_id)
    if row is None:
        return None
    endpoint = await session.get(WebhookEndpoint, row.endpoint_id)
    row.attempts += 1
    row.last_attempt_at = now
    row.response_code = outcome.response_code
    row.last_error = outcome.error
    delay = None
    if outcome.ok:
        row.status = DeliveryStatus.SUCCEEDED.value
        row.next_attempt_at = None
    else:
        delay = next_delay(row.attempts, settings)
        row.status = (
            DeliveryStatus.PENDING.value
            if delay is not None
            else DeliveryStatus.FAILED.value
        )
        row.next_attempt_at = now + dt.timedelta(seconds=delay) if delay else None
        if delay == 0:
            row.next_attempt_at = now
    if endpoint is not None and row.url == endpoint.url:  # callbacks don't count
        _track_health(
            endpoint, ok=outcome.ok, error=outcome.error, now=now, settings=settings
        )
    await session.commit()
    return delay


def _track_health(
    endpoint: WebhookEndpoint,
    *,
    ok: bool,
    error: str | None,
    now: dt.datetime,
    settings: Settings,
) -> None:
    if ok:
        endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        return
    limit = dt.timedelta(hours=settings.webhook_disable_after_hours)
    if endpoint.disabled_at is None and now - endpoint.failing_since >= limit:
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"Disabled automatically on {now:%Y-%m-%d %H:%M} UTC: every delivery "
            f"failed since {endpoint.failing_since:%Y-%m-%d %H:%M} UTC (last error: "
            f"{error}). Fix the receiver and POST /v1/webhooks/{endpoint.id}/enable."
        )
