"""Response bodies of a completed backtest's analysis, positions, holdings and
exposure (the conventions are in README "Reading a result")."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AnalysisOut(BaseModel):
    """The stored analysis (``app.engine.analysis``): significance, tail risk, top
    drawdowns, annual returns, rolling statistics, crises, capture, bootstrap."""

    model_config = ConfigDict(extra="allow")

    psr: float | None = None
    t_stat: float | None = None
    p_value: float | None = None
    var_95: float | None = None
    var_99: float | None = None
    cvar_95: float | None = None
    cvar_99: float | None = None
    drawdowns: list[dict[str, Any]] = Field(default_factory=list)
    annual_returns: list[dict[str, Any]] = Field(default_factory=list)
    best_year: dict[str, Any] | None = None
    worst_year: dict[str, Any] | None = None
    rolling: dict[str, Any] = Field(default_factory=dict)
    crises: list[dict[str, Any]] = Field(default_factory=list)
    capture: dict[str, Any] = Field(default_factory=dict)
    bootstrap: dict[str, Any] | None = None


class PositionOut(BaseModel):
    """A symbol held continuously from its first buy (``opened``) to the sell that
    emptied it (``closed``; null while still held at the end)."""

    symbol: str
    sector: str
    opened: dt.date
    closed: dt.date | None = None
    is_open: bool
    avg_entry_price: float = Field(description="Share-weighted buy fill price.")
    avg_exit_price: float | None = Field(
        default=None, description="Share-weighted sell fill price; null if none."
    )
    peak_shares: float
    shares: float = Field(description="Still held at the end (0 once closed).")
    cost: float = Field(description="Buys' notional plus their commissions.")
    dividends: float
    realised_pnl: float = Field(description="P&L of the position's closed lots.")
    unrealised_pnl: float = Field(
        description="P&L of its open lots, marked at the last close."
    )
    pnl: float
    return_pct: float = Field(description="pnl / cost, a fraction.")
    holding_days: int = Field(description="Calendar days opened -> closed (or end).")
    fills: int
    lots: int


class Holding(BaseModel):
    symbol: str
    sector: str
    shares: float
    price: float = Field(description="The close valuing them (carried over gaps).")
    value: float
    weight: float | None = Field(
        description="value / equity; null when equity is zero (a portfolio emptied "
        "by withdrawals)."
    )


class HoldingsOut(BaseModel):
    date: dt.date = Field(description="The session whose close is shown.")
    requested_date: dt.date | None = None
    equity: float
    cash: float
    cash_weight: float | None = Field(
        description="cash / equity; null when equity is zero (a portfolio emptied "
        "by withdrawals)."
    )
    invested: float
    holdings: list[Holding]


class Rebalance(BaseModel):
    date: dt.date
    turnover: float = Field(description="(bought + sold) / 2 / previous equity.")
    bought: float
    sold: float
    fills: int


class ExposureOut(BaseModel):
    dates: list[dt.date]
    holdings: list[int] = Field(description="Number of symbols held at each close.")
    invested: list[float] = Field(description="Invested fraction of equity.")
    sector_weights: dict[str, list[float]]
    rebalances: list[Rebalance]
