"""The /v1/templates contract."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from app.api.schemas import Schema
from app.db.models.template import TEMPLATE_NAME_MAX_LENGTH

_EXAMPLE: JsonDict = {
    "name": "Momentum top 20",
    "config": {
        "strategy_id": 2,
        "strategy_params": {"top_n": 20},
        "start_date": "2015-01-01",
        "end_date": "2019-12-31",
        "benchmark": "SPY",
    },
}


class TemplateCreate(Schema):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [_EXAMPLE]}
    )

    name: str = Field(min_length=1, max_length=TEMPLATE_NAME_MAX_LENGTH)
    kind: str = Field(default="backtest", description="The job kind it submits.")
    config: dict[str, Any] = Field(
        description="A submission body of that kind (POST /v1/backtest), validated "
        "the same way."
    )


class TemplateUpdate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=TEMPLATE_NAME_MAX_LENGTH
    )
    config: dict[str, Any] | None = None


class TemplateOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    config: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class TemplateRun(Schema):
    """Overrides for one run; everything else comes from the template."""

    model_config = ConfigDict(extra="forbid")

    start_date: dt.date | None = None
    end_date: dt.date | None = None
    initial_capital: float | None = None
    name: str | None = Field(default=None, max_length=200)
