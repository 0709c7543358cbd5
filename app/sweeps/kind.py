"""The sweep job kind as the job lifecycle knows it: name, label, time limit, and
where its run and warm-up live (:mod:`app.sweeps.run`, imported by workers only)."""

from __future__ import annotations

from app.jobs.registry import JobKind, deferred, register

KIND_NAME = "sweep"

# A sweep runs many backtests: it asks for an hour, which only tiers allowed that
# much get (JOB_TIME_LIMIT_MAX_SECONDS); the others keep their tier's ceiling.
SWEEP = register(
    JobKind(
        name=KIND_NAME,
        label="Sweep",
        run=deferred("app.sweeps.run:run"),
        warm_up=deferred("app.sweeps.run:warm_up"),
        time_limit_seconds=3600,
    )
)
