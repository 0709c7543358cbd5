"""pandas views of results (pandas is the optional ``[pandas]`` extra)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from backtest_client.models import ChartData, Trade

if TYPE_CHECKING:
    import pandas as pd

TRADE_COLUMNS = [f.name for f in dataclasses.fields(Trade)]
_TRADE_DATES = ("entry_date", "exit_date")


def pandas() -> Any:
    try:
        import pandas as pd  # noqa: PLC0415 - optional dependency
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "this needs pandas: pip install 'backtest-client[pandas]'"
        ) from exc
    return pd


def series(dates: list[str], values: list[float | None], name: str) -> pd.Series:
    pdm = pandas()
    index = pdm.DatetimeIndex(pdm.to_datetime(dates), name="date")
    result: pd.Series = pdm.Series(values, index=index, name=name, dtype="float64")
    return result


def equity_from_chart(chart: ChartData, column: str = "equity") -> pd.Series:
    points = chart.equity_curve
    dates = [p.date.isoformat() for p in points]
    values = [getattr(p, column) for p in points]
    return series(dates, values, column)


def drawdown_from_chart(chart: ChartData) -> pd.Series:
    points = chart.drawdown_series
    return series(
        [p.date.isoformat() for p in points], [p.drawdown for p in points], "drawdown"
    )


def equity_from_export(body: Any, column: str = "equity") -> pd.Series:
    """The planned ``GET /v1/backtest/{id}/equity?format=json``: a list of points
    ``[{date, equity, benchmark?}]``, the same under ``equity_curve``/``points``, or
    columns ``{dates: [...], equity: [...]}``."""
    if isinstance(body, dict) and isinstance(body.get("dates"), list):
        return series(body["dates"], body.get(column) or [], column)
    points = body
    if isinstance(body, dict):
        points = body.get("equity_curve") or body.get("points") or []
    if not isinstance(points, list):
        raise ValueError(f"unexpected equity export: {type(body).__name__}")
    key = column
    if column == "benchmark" and points and "benchmark" not in points[0]:
        # The export names benchmark columns ``benchmark_<SYMBOL>``: the first one.
        key = next((k for k in points[0] if k.startswith("benchmark_")), column)
    return series([p["date"] for p in points], [p.get(key) for p in points], column)


def trades_frame(trades: Iterable[Trade]) -> pd.DataFrame:
    pdm = pandas()
    frame: pd.DataFrame = pdm.DataFrame(
        [t.to_json() for t in trades], columns=TRADE_COLUMNS
    )
    for column in _TRADE_DATES:
        frame[column] = pdm.to_datetime(frame[column])
    return frame


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    frame: pd.DataFrame = pandas().DataFrame.from_records(records)
    return frame
