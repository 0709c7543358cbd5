"""The backtest job kind as the job lifecycle knows it: name, label, and where its
run and warm-up live (:mod:`app.backtests.run`, imported by workers only: it pulls
in the engine's kernels and the price store, which the API process never needs)."""

from __future__ import annotations

from app.jobs.registry import JobKind, deferred, register

BACKTEST = register(
    JobKind(
        name="backtest",
        label="Backtest",
        run=deferred("app.backtests.run:run"),
        warm_up=deferred("app.backtests.run:warm_up"),
    )
)
