"""`python -m app.cli backtest ...` (being written)."""

from __future__ import annotations


def run() -> None:
    raise SystemExit("not yet implemented")
