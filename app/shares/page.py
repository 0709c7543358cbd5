"""The public result page ``/s/{token}``: server-rendered HTML (no script), the
equity curve as an inline SVG, every value escaped."""

from __future__ import annotations

import html
from typing import Any

from app.shares.schemas import PublicResult

WIDTH, HEIGHT = 720, 240
PERCENT_METRICS = {
    "total_return",
    "cagr",
    "max_drawdown",
    "volatility",
    "win_rate",
    "benchmark_total_return",
    "benchmark_cagr",
}


def _value(name: str, value: Any) -> str:
    if isinstance(value, dict):  # data_coverage: its grade and share
        grade = value.get("survivorship_bias", "unknown")
        share = value.get("share")
        shown = grade if not isinstance(share, float) else f"{grade} ({share:.1%})"
        return html.escape(f"survivorship bias {shown}")
    if isinstance(value, float):
        return f"{value:.2%}" if name in PERCENT_METRICS else f"{value:,.4g}"
    return html.escape(str(value))


def _equity_svg(chart: dict[str, Any] | None) -> str:
    points = (chart or {}).get("equity_curve") or []
    values = [float(p["equity"]) for p in points if p.get("equity") is not None]
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = WIDTH / (len(values) - 1)
    coords = " ".join(
        f"{i * step:.1f},{HEIGHT - (v - low) / span * HEIGHT:.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        'aria-label="Equity curve"><polyline fill="none" stroke="#2563eb" '
        f'stroke-width="1.5" points="{coords}"/></svg>'
    )


def render(result: PublicResult) -> str:
    title = html.escape(result.name or f"Shared {result.kind}")
    metrics = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{_value(k, v)}</td></tr>"
        for k, v in sorted((result.metrics or {}).items())
    )
    config = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in sorted(result.config.items())
    )
    chart = _equity_svg(result.results.get("chart"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="robots" content="noindex, nofollow">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font:15px system-ui,sans-serif;max-width:760px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}th,td{{padding:2px 12px 2px 0;text-align:left}}
th{{font-weight:500;color:#555}}</style></head>
<body><h1>{title}</h1>
<h2>Equity</h2>{chart}
<h2>Metrics</h2><table>{metrics}</table>
<h2>Configuration</h2><table>{config}</table>
</body></html>
"""
