"""Request building shared by the sync and async resources (no I/O here)."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import httpx

from backtest_client.errors import UnknownStrategy
from backtest_client.models import BacktestRequest, Strategy

DateLike = str | dt.date
Rebalancing = Literal["daily", "weekly", "monthly", "quarterly", "never"]
Universe = Literal["sp500_pit", "all"]
Execution = Literal["next_open", "close"]
# submit()'s keyword → the request field it fills; other keywords keep their names.
SUBMIT_ALIASES: dict[str, str] = {
    "strategy": "strategy_id",
    "params": "strategy_params",
    "start": "start_date",
    "end": "end_date",
}
TRADE_PAGE = 500  # the server's maximum page of trades
HISTORY_PAGE = 100  # … and of history


def as_date(value: DateLike, name: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be an ISO date such as 2015-01-31") from None


def new_idempotency_key() -> str:
    return f"bc-{uuid.uuid4().hex}"


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "-", name.strip().lower())


def resolve_strategy(strategy: str | int, strategies: Iterable[Strategy]) -> int:
    """An id (``2``, ``"2"``) or a name (``"momentum"``, ``"Low volatility"``)."""
    if isinstance(strategy, int):
        return strategy
    if strategy.strip().isdigit():
        return int(strategy)
    listed = list(strategies)
    for item in listed:
        if _norm(item.name) == _norm(strategy):
            return item.id
    names = ", ".join(s.name for s in listed)
    raise UnknownStrategy(f"unknown strategy {strategy!r}; the server offers: {names}")


def build_request(
    *,
    strategy_id: int | None,
    params: Mapping[str, float] | None,
    start: DateLike,
    end: DateLike,
    **fields: Any,
) -> BacktestRequest:
    extra: dict[str, Any] = dict(fields)
    if extra.get("symbols") is not None:
        extra["symbols"] = list(extra["symbols"])
    return BacktestRequest(
        start_date=as_date(start, "start"),
        end_date=as_date(end, "end"),
        strategy_id=strategy_id,
        strategy_params=dict(params) if params is not None else None,
        **extra,
    )


def query(**params: Any) -> dict[str, Any]:
    """Query parameters without the ``None`` ones, dates as ISO strings."""
    return {
        k: (v.isoformat() if isinstance(v, dt.date) else v)
        for k, v in params.items()
        if v is not None
    }


def next_page(response: httpx.Response) -> str | None:
    """The ``Link: <…>; rel="next"`` URL, if any."""
    url = response.links.get("next", {}).get("url")
    return str(url) if url else None


def symbols_list(symbols: Sequence[str] | str | None) -> list[str] | None:
    if symbols is None:
        return None
    if isinstance(symbols, str):
        return [s.strip() for s in symbols.split(",") if s.strip()]
    return list(symbols)
