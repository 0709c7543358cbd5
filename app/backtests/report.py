"""The HTML tearsheet (filled in below)."""

from __future__ import annotations

from typing import Any


def render_report(row: Any, loaded: Any, analysis: Any, positions: Any) -> str:
    return "<!doctype html><html><body>report</body></html>"
