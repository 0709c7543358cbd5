"""The /v1/schedules contract."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.api.schemas import Schema


class ScheduleCreate(Schema):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "template_id": "6f1c…",
                    "cron": "0 6 * * 1-5",
                    "timezone": "Europe/Berlin",
                }
            ]
        },
    )

    template_id: uuid.UUID
    cron: str = Field(
        max_length=120,
        description="Five fields (minute hour day-of-month month day-of-week); runs "
        "at least an hour apart.",
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA name.")


class ScheduleOut(BaseModel):
    id: uuid.UUID
    template_id: uuid.UUID
    cron: str
    timezone: str
    status: Literal["active", "paused"]
    next_run: dt.datetime | None = None
    last_run: dt.datetime | None = None
    last_job_id: uuid.UUID | None = None
    last_error: str | None = Field(
        default=None, description="Why the last run was refused (quota, validation)."
    )
    created_at: dt.datetime
