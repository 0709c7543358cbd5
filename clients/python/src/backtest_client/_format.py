"""How numbers read in the terminal: the web app's convention (percent for returns,
rates and costs; currency for money; ratios to two decimals; ISO dates)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

DASH = "—"
# Metric → kind, in the web app's order (app/web/js/metrics.js).
METRIC_KINDS: dict[str, str] = {
    "total_return": "pct_signed",
    "cagr": "pct_signed",
    "sharpe_ratio": "ratio",
    "sortino_ratio": "ratio",
    "max_drawdown": "pct",
    "win_rate": "pct",
    "profit_factor": "ratio",
    "total_trades": "int",
    "benchmark_total_return": "pct_signed",
    "benchmark_cagr": "pct_signed",
    "alpha": "pct_signed",
    "beta": "ratio",
    "correlation": "ratio",
    "tracking_error": "pct",
    "information_ratio": "ratio",
    "volatility": "pct",
    "calmar_ratio": "ratio",
    "max_drawdown_duration_days": "days",
    "final_equity": "money",
    "exposure": "pct",
    "turnover": "pct",
    "avg_trade_return": "pct_signed",
    "best_trade_return": "pct_signed",
    "worst_trade_return": "pct_signed",
}


def percent(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return DASH
    return f"{value:+.2%}" if signed and value != 0 else f"{value:.2%}"


def ratio(value: float | None) -> str:
    return DASH if value is None else f"{value:,.2f}"


def money(value: float | None) -> str:
    if value is None:
        return DASH
    sign = "-" if value < 0 else ""
    digits = 0 if abs(value) >= 1000 else 2
    return f"{sign}${abs(value):,.{digits}f}"


def metric(name: str, value: float | int | None) -> str:  # noqa: PLR0911
    kind = METRIC_KINDS.get(name, "ratio")
    if value is None:
        return DASH
    if kind == "pct_signed":
        return percent(value, signed=True)
    if kind == "pct":
        return percent(value)
    if kind == "int":
        return f"{int(value):,}"
    if kind == "days":
        return f"{int(value):,} days"
    if kind == "money":
        return money(value)
    return ratio(value)


def table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] | None = None
) -> str:
    right = right or set()
    widths = [len(h) for h in header]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def metrics_table(metrics: Mapping[str, Any]) -> str:
    """Numeric metrics, one row each; a nested block (``data_coverage``) is
    summarised by its ``survivorship_bias`` grade and coverage share."""
    numbers = {
        k: v for k, v in metrics.items() if v is None or isinstance(v, int | float)
    }
    known = [k for k in METRIC_KINDS if k in numbers]
    names = known + sorted(k for k in numbers if k not in METRIC_KINDS)
    rows = [[name, metric(name, numbers[name])] for name in names]
    coverage = metrics.get("data_coverage")
    if isinstance(coverage, Mapping):
        share = coverage.get("share")
        grade = str(coverage.get("survivorship_bias", DASH))
        shown = (
            grade
            if not isinstance(share, int | float)
            else (f"{grade} ({percent(share)} of index member-days priced)")
        )
        rows.append(["survivorship_bias", shown])
    return table(["metric", "value"], rows, right={1})
