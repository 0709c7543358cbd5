"""The ``data_coverage`` disclosure every backtest result carries (see
:class:`app.backtests.schemas.DataCoverage`)."""

from __future__ import annotations

import math
from typing import Any

from app.data.membership import INDEX_NAME, coverage_for, has_membership
from app.engine.config import BacktestConfig
from app.engine.data import MarketData


def data_coverage(config: BacktestConfig, data: MarketData) -> dict[str, Any]:
    """Coverage of the index by ``data`` over ``config``'s period, JSON-ready.

    Measured on the dataset, not on a symbol list the request may name: it says how
    much of the index the backtest could ever have seen."""
    if not has_membership(config.dataset):
        reason = (
            f"dataset {data.name!r} is imported: no index membership is known for "
            "it, so its survivorship bias cannot be measured"
        )
        return unknown(config, reason)
    got = coverage_for(data, start=config.start_date, end=config.end_date)
    return {
        "universe": config.universe,
        "index": INDEX_NAME,
        "start_date": got.start.isoformat(),
        "end_date": got.end.isoformat(),
        "share": None if math.isnan(got.share) else got.share,
        "member_days": got.member_days,
        "covered_member_days": got.covered_member_days,
        "members": got.members,
        "members_without_prices": got.members_without_prices,
        "survivorship_bias": got.survivorship_bias,
        "reason": None,
    }


def unknown(config: BacktestConfig, reason: str) -> dict[str, Any]:
    return {
        "universe": config.universe,
        "index": None,
        "start_date": None,
        "end_date": None,
        "share": None,
        "member_days": None,
        "covered_member_days": None,
        "members": None,
        "members_without_prices": None,
        "survivorship_bias": "unknown",
        "reason": reason,
    }
