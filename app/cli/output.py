"""How the command line prints numbers, dates and errors.

Numbers follow the convention of the web app (``app/web/js/format.js`` and
``app/web/js/metrics.js``; ``tests/unit/test_cli_output.py`` checks that both name
and format every metric alike): percent for returns, rates and costs, currency for
money, ratios to two decimals, ISO dates. Errors print as ``error: <message>``, the
message being the API's own for the same input, followed by the option to change.

Light (the standard library and typer): ``--help`` imports this module.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, NoReturn

import typer

DASH = "—"
Kind = Literal["pct_signed", "pct", "ratio", "int", "days", "money"]

# key -> (label, kind), in the web app's order (app/web/js/metrics.js METRICS).
METRICS: dict[str, tuple[str, Kind]] = {
    "total_return": ("Total return", "pct_signed"),
    "cagr": ("CAGR", "pct_signed"),
    "sharpe_ratio": ("Sharpe ratio", "ratio"),
    "sortino_ratio": ("Sortino ratio", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "position_win_rate": ("Win rate", "pct"),
    "position_profit_factor": ("Profit factor", "ratio"),
    "total_positions": ("Positions", "int"),
    "closed_positions": ("Closed positions", "int"),
    "avg_position_return": ("Average position", "pct_signed"),
    "best_position_return": ("Best position", "pct_signed"),
    "worst_position_return": ("Worst position", "pct_signed"),
    "avg_holding_days": ("Average holding", "days"),
    "total_fills": ("Fills", "int"),
    "total_lots": ("Lots", "int"),
    "win_rate": ("Lot win rate", "pct"),
    "profit_factor": ("Lot profit factor", "ratio"),
    "total_trades": ("Lots", "int"),
    "benchmark_total_return": ("Benchmark return", "pct_signed"),
    "benchmark_cagr": ("Benchmark CAGR", "pct_signed"),
    "alpha": ("Alpha", "pct_signed"),
    "beta": ("Beta", "ratio"),
    "correlation": ("Correlation", "ratio"),
    "tracking_error": ("Tracking error", "pct"),
    "information_ratio": ("Information ratio", "ratio"),
    "volatility": ("Volatility", "pct"),
    "calmar_ratio": ("Calmar ratio", "ratio"),
    "max_drawdown_duration_days": ("Longest drawdown", "days"),
    "final_equity": ("Final equity", "money"),
    "exposure": ("Exposure", "pct"),
    "turnover": ("Turnover (annual)", "pct"),
    "avg_trade_return": ("Average lot", "pct_signed"),
    "best_trade_return": ("Best lot", "pct_signed"),
    "worst_trade_return": ("Worst lot", "pct_signed"),
}

# The API's request field -> the option of `python -m app.cli` that sets it.
OPTION_OF_FIELD = {
    "username": "--username",
    "password": "--password",
    "strategy_id": "--strategy-id",
    "strategy_params": "--param",
    "filter_criteria": "--filter",
    "symbols": "--symbols",
    "start_date": "--start",
    "end_date": "--end",
    "initial_capital": "--capital",
    "rebalancing": "--rebalancing",
    "commission": "--commission",
    "slippage": "--slippage",
    "execution": "--execution",
    "benchmark": "--benchmark",
    "dataset": "--dataset",
    "risk_free_rate": "--risk-free-rate",
    "universe": "--universe",
}


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fixed(value: float, digits: int) -> str:
    """``value`` to ``digits`` decimals with thousands separators, halves rounded
    away from zero as ``Intl.NumberFormat`` does (Python's ``format`` rounds them to
    even)."""
    exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-digits), ROUND_HALF_UP)
    return f"{exact:,.{digits}f}"


def percent(value: object, *, digits: int = 2, signed: bool = False) -> str:
    """0.1234 → ``12.34%``; signed: ``+12.34%`` (zero unsigned), as ``format.pct``."""
    v = _finite(value)
    if v is None:
        return DASH
    text = _fixed(abs(v) * 100, digits) + "%"
    rounds_to_zero = not text.strip("0.,%")
    if signed:  # Intl's signDisplay "exceptZero": no sign on what rounds to zero
        return text if rounds_to_zero else ("-" if v < 0 else "+") + text
    return f"-{text}" if v < 0 else text  # "auto": -0.00% for a tiny loss


def ratio(value: object, digits: int = 2) -> str:
    v = _finite(value)
    if v is None:
        return DASH
    return ("-" if v < 0 else "") + _fixed(abs(v), digits)


def integer(value: object) -> str:
    v = _finite(value)
    return DASH if v is None else ("-" if v < 0 else "") + _fixed(abs(v), 0)


def money(value: object, digits: int | None = None) -> str:
    """Dollars: whole dollars from 1,000, cents below (``format.money``)."""
    v = _finite(value)
    if v is None:
        return DASH
    d = digits if digits is not None else (0 if abs(v) >= 1000 else 2)
    return ("-$" if v < 0 else "$") + _fixed(abs(v), d)


def iso_date(value: dt.date | dt.datetime | str | None) -> str:
    """Any date (or date-time) → ``2024-08-26``."""
    if value is None:
        return DASH
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)[:10]


def metric_label(key: str) -> str:
    return METRICS[key][0] if key in METRICS else key


def format_metric(key: str, value: object) -> str:
    """One metric as the web app's result page shows it (``formatMetric``)."""
    kind = METRICS[key][1] if key in METRICS else None
    if kind == "pct_signed":
        return percent(value, signed=True)
    if kind == "pct":
        return percent(value)
    if kind == "int":
        return integer(value)
    if kind == "days":
        return DASH if _finite(value) is None else f"{integer(value)} days"
    if kind == "money":
        return money(value, 0)
    return ratio(value, 2 if kind == "ratio" else 4)


def metric_rows(metrics: Mapping[str, object]) -> list[tuple[str, str]]:
    """(label, formatted value) of every numeric metric: known ones in the web app's
    order, then any others by name. Nested objects (data_coverage) are left out."""
    known = [k for k in METRICS if k in metrics]
    others = sorted(k for k in metrics if k not in METRICS)
    return [
        (metric_label(k), format_metric(k, metrics[k]))
        for k in known + others
        if not isinstance(metrics[k], Mapping)
    ]


def api_message(message: str) -> str:
    """pydantic's ``Value error, `` prefix dropped, as the web app does
    (``fieldErrorsOf`` in app/web/js/api-errors.js)."""
    return message.removeprefix("Value error, ")


def error_line(message: str, *, field: str | None = None) -> str:
    """``error: <API message>`` and, when the API names a field, the option to fix:
    ``error: end_date must be after start_date (--end)``."""
    text = f"error: {api_message(message)}"
    if field:
        path = field.removeprefix("body.")
        head = path.split(".", 1)[0].split("[", 1)[0]
        option = OPTION_OF_FIELD.get(head)
        if option:
            text += f" ({option})"
        elif path:
            text += f" ({path})"
    return text


def fail(message: str, *, field: str | None = None, code: int = 2) -> NoReturn:
    """Print :func:`error_line` on stderr and exit with ``code`` (2: the input was
    refused, as click's usage errors; 1: the command failed)."""
    typer.echo(error_line(message, field=field), err=True)
    raise typer.Exit(code=code)
