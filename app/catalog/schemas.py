"""What a client needs to build a request: strategies, the screening language, data."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field


class StrategyParameter(BaseModel):
    name: str
    type: str
    default: float | int
    min: float | int | None = None
    max: float | int | None = None
    description: str = ""


class StrategyInfo(BaseModel):
    id: int
    name: str
    description: str
    parameters: list[StrategyParameter]


class FactorInfo(BaseModel):
    name: str
    description: str
    needs_window: bool


class ScreeningLanguage(BaseModel):
    factors: list[FactorInfo]
    operators: list[str]
    weightings: list[str]
    max_window: int
    json_schema: dict[str, Any]


class SymbolInfoOut(BaseModel):
    symbol: str
    name: str
    sector: str
    type: str
    first_date: dt.date | None
    last_date: dt.date | None


class RequestLimits(BaseModel):
    """Bounds of a POST /v1/backtest body, so that clients need not copy them."""

    max_span_years: int = Field(
        description="Longest start_date → end_date range, in calendar years."
    )
    max_symbols: int = Field(description="Most entries in `symbols`.")
    min_capital: float
    max_capital: float
    max_commission: float = Field(description="Fraction of notional (0.1 = 10%).")
    max_slippage: float = Field(description="Fraction of price (0.05 = 5%).")
    max_risk_free_rate: float = Field(description="Annual fraction (0.2 = 20%).")
    max_benchmarks: int = Field(description="At most this many `benchmarks` entries.")


class SymbolCatalog(BaseModel):
    dataset: str
    first_date: dt.date
    last_date: dt.date
    benchmarks: list[str]
    symbols: list[SymbolInfoOut]
    limits: RequestLimits


class DatasetOut(BaseModel):
    name: str
    source: str
    n_symbols: int
    first_date: dt.date | None
    last_date: dt.date | None
    n_rows: int


class YearCoverageOut(BaseModel):
    year: int
    member_days: int
    covered_member_days: int
    share: float
    members: int
    members_without_prices: int
    survivorship_bias: Literal["high", "moderate", "low"]


class DatasetCoverage(BaseModel):
    """How much of the S&P 500 a dataset has prices for, per calendar year."""

    dataset: str
    index: str | None
    membership_known: bool
    reason: str | None = None
    grade_low_from: float
    grade_moderate_from: float
    years: list[YearCoverageOut]
