"""The sweep API contract: request and response bodies of /v1/sweeps."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from app.api.schemas import Schema

Status = Literal[
    "queued", "pending", "running", "completed", "failed", "cancelled"
]  # fmt: skip

# Objectives and their direction. ``max_drawdown`` is a negative fraction, so the
# best drawdown (the smallest loss) is the HIGHEST value: "lower is better" of the
# drawdown's size is "higher is better" of the stored number.
HIGHER_IS_BETTER = frozenset(
    {
        "total_return", "cagr", "sharpe_ratio", "sortino_ratio", "calmar_ratio",
        "win_rate", "profit_factor", "avg_trade_return", "best_trade_return",
        "worst_trade_return", "final_equity", "alpha", "information_ratio",
        "max_drawdown",
    }
)  # fmt: skip
LOWER_IS_BETTER = frozenset(
    {"volatility", "max_drawdown_duration_days", "turnover", "tracking_error"}
)
OBJECTIVES = tuple(sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER))
MAX_GRID_KEYS = 8

_EXAMPLE: JsonDict = {
    "name": "momentum lookback x skip",
    "base": {
        "strategy_id": 2,
        "strategy_params": {"top_n": 20},
        "start_date": "2015-01-01",
        "end_date": "2019-12-31",
        "benchmark": "SPY",
    },
    "grid": {
        "strategy_params.lookback": {"start": 63, "stop": 252, "step": 63},
        "strategy_params.skip": [0, 21],
        "rebalancing": ["monthly", "quarterly"],
    },
    "objective": "sharpe_ratio",
}


class WalkForward(Schema):
    model_config = ConfigDict(extra="forbid")

    train_months: int = Field(default=36, ge=1, le=120)
    test_months: int = Field(default=12, ge=1, le=120)
    anchored: bool = False


class SweepRequest(Schema):
    """A grid of backtests around one base request. Unknown fields are rejected."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [_EXAMPLE]}
    )

    name: str | None = Field(default=None, max_length=200)
    base: dict[str, Any] = Field(
        description="A complete POST /v1/backtest request body."
    )
    grid: dict[str, list[Any] | dict[str, Any]] = Field(
        description="Dotted path into `base` -> a list of values or a range "
        '{"start": 5, "stop": 50, "step": 5} (stop inclusive).',
        min_length=1,
        max_length=MAX_GRID_KEYS,
    )
    objective: str = Field(
        default="sharpe_ratio",
        description="The metric the best combination maximises (lower-is-better "
        "metrics such as volatility are minimised; max_drawdown picks the smallest "
        "loss).",
    )
    walk_forward: WalkForward | None = None
    overfitting_blocks: int = Field(
        default=16, ge=4, le=32, description="CSCV blocks S (even)."
    )

    @field_validator("objective")
    @classmethod
    def _known_objective(cls, value: str) -> str:
        if value not in OBJECTIVES:
            raise ValueError(f"objective must be one of: {', '.join(OBJECTIVES)}")
        return value

    @field_validator("overfitting_blocks")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("overfitting_blocks must be even")
        return value


class SweepCreated(BaseModel):
    sweep_id: uuid.UUID
    status: Status
    combinations: int
    skipped_combinations: int
    created_at: dt.datetime


class SweepRowOut(BaseModel):
    index: int
    params: dict[str, Any]
    metrics: dict[str, bool | float | int | None]
    psr: float | None = None


class SweepStatus(BaseModel):
    sweep_id: uuid.UUID
    name: str | None = None
    status: Status
    progress: float = Field(ge=0, le=100)
    combinations: int
    skipped_combinations: int
    combinations_done: int
    eta_seconds: float | None = Field(
        default=None,
        description="Running: estimated time left; queued: estimated wait before "
        "it starts; 0 once finished.",
    )
    queue_position: int | None = Field(
        default=None,
        ge=1,
        description="While `queued`: about how many jobs start before this one, "
        "plus one (1 = next); null otherwise.",
    )
    objective: str
    request: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    error: str | None = None
    error_code: str | None = Field(
        default=None,
        description="The category of a failure: `timeout`, `worker_lost`, "
        "`internal` or `job` (as on a backtest's status).",
    )
    best: SweepRowOut | None = None
    overfitting: dict[str, Any] | None = None
    walk_forward: dict[str, Any] | None = None


class SweepListItem(BaseModel):
    sweep_id: uuid.UUID
    name: str | None = None
    status: Status
    combinations: int
    created_at: dt.datetime
    completed_at: dt.datetime | None = None


class Heatmap(BaseModel):
    x: str
    y: str
    metric: str
    x_values: list[Any]
    y_values: list[Any]
    values: list[list[float | None]] = Field(
        description="values[i][j]: the best metric at y_values[i], x_values[j]."
    )
    indexes: list[list[int | None]] = Field(
        description="The combination index giving each cell's value."
    )


class RowBacktestCreated(BaseModel):
    """What POST /v1/backtest returns (the same fields)."""

    task_id: uuid.UUID
    status: Status
    created_at: dt.datetime


class CurvePoint(BaseModel):
    date: dt.date
    equity: float
    benchmark: float | None = None


class WalkForwardChart(BaseModel):
    """The walk-forward's stitched out-of-sample equity (test spans chained from
    ``initial_capital``) and the benchmark chained over the same spans."""

    equity_curve: list[CurvePoint]
    benchmark_symbol: str | None = None


class SweepLimits(BaseModel):
    """What a sweep request may hold for the calling user (the web form shows it)."""

    tier: str
    max_combinations: int = Field(description="The tier's cap on a grid's size.")
    max_grid_keys: int
    max_values_per_key: int
    objectives: list[str]
    grid_keys: list[str] = Field(
        description="Sweepable paths besides `strategy_params.<name>` (any parameter "
        "of the base's strategy); `filter_criteria.*` need a custom screen."
    )


class SweepCancelled(BaseModel):
    sweep_id: uuid.UUID
    status: Status
    message: str
