"""The /v1/webhooks contract."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import Schema
from app.db.models.webhook import URL_MAX_LENGTH

EVENT_PATTERN = r"^[a-z][a-z_]{0,31}\.(completed|failed)$"
# Events that are not a job's end: a schedule's firing refused (quota, a template
# no longer valid); its payload's data has schedule_id, template_id, due_at, error.
OTHER_EVENTS = ("schedule.refused",)
MAX_EVENTS = 20


class WebhookCreate(Schema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://example.com/hooks/backtests",
                    "events": ["backtest.completed", "backtest.failed"],
                    "description": "CI notifier",
                }
            ]
        },
    )

    url: str = Field(max_length=URL_MAX_LENGTH, description="https URL to POST to.")
    events: list[str] = Field(
        min_length=1,
        max_length=MAX_EVENTS,
        description='Event types: "<kind>.completed" or "<kind>.failed" for a '
        'registered job kind, e.g. "backtest.completed"; "schedule.refused" (a '
        "scheduled run refused: quota exhausted, template no longer valid).",
    )
    description: str | None = Field(default=None, max_length=200)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None = None
    status: Literal["active", "disabled"]
    status_note: str | None = Field(
        default=None, description="Why the endpoint was disabled, if it was."
    )
    failing_since: dt.datetime | None = None
    created_at: dt.datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret (whsec_...). Shown only now and on rotation."
    )


class WebhookSecret(BaseModel):
    id: uuid.UUID
    secret: str


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhook_id: str = Field(description="The webhook-id header (same on retries).")
    event_type: str
    job_id: uuid.UUID | None = None
    url: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    response_code: int | None = None
    last_error: str | None = None
    next_attempt_at: dt.datetime | None = None
    last_attempt_at: dt.datetime | None = None
    created_at: dt.datetime
