"""The share-link contract."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class ShareCreated(BaseModel):
    token: str = Field(description="256 random bits, URL-safe; shown only now.")
    url: str = Field(description="The public page: <PUBLIC_BASE_URL>/s/<token>.")


class PublicResult(BaseModel):
    """A shared job as anyone with the link sees it: no owner, no id, nothing of
    the account."""

    kind: str
    name: str | None = None
    config: dict[str, Any]
    # Numbers, plus nested blocks such as a backtest's ``data_coverage``.
    metrics: dict[str, Any] | None = None
    completed_at: dt.datetime | None = None
    results: dict[str, Any] = Field(
        default_factory=dict, description="The kind's charts (a backtest: `chart`)."
    )
