"""Celery entry point for fault tests: the real worker app, plus a poison job.

``celery -A tests.integration.crash_worker worker ...`` runs exactly what
``tests.integration.slow_worker`` runs, except that a job whose ``name`` contains
the value of the env var ``CRASH_WORKER_MARKER`` kills its prefork child with
``os._exit`` once its
engine has made some progress, every time it runs: what a segfault or an OOM kill
inside the engine would do. The
claim, the attempt count and the heartbeat all happen for real before the crash.

Each crash first prints :data:`CRASH_LINE` and the pid to the worker's log.

A job whose name contains ``CRASH_BEFORE_CLAIM_MARKER`` (env, optional) kills its
child earlier, just before the claim (the delivery has been counted, nothing else
has happened): what a message that crashes its worker before the job is claimed
does. It prints :data:`EARLY_CRASH_LINE`.

Test-only: the service never imports this module, and production code has no hook
for it; it wraps two names inside :mod:`app.backtests.run` in this process
(the prefork children inherit the wrapping). Never import it from a test process:
only the worker started with ``-A`` should run it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from app.backtests import run as execution
from app.backtests.schemas import BacktestRequest
from app.jobs import repository as jobs_repo
from app.jobs import runner
from tests.integration import slow_worker

CRASH_MARKER = os.environ["CRASH_WORKER_MARKER"]
EARLY_MARKER = os.environ.get("CRASH_BEFORE_CLAIM_MARKER") or None
CRASH_AT_FRACTION = 0.1  # well into the run: claimed, heartbeats written
CRASH_LINE = "crash_worker: os._exit(1)"
EARLY_CRASH_LINE = "crash_worker: os._exit(1) before the claim"

app = slow_worker.app
_doomed = False  # a prefork child runs one job at a time
_real_run_backtest = execution.run_backtest


class _Requests:
    """Stands in for ``BacktestRequest`` inside ``execution``: notes the marker."""

    @staticmethod
    def model_validate(raw: Any) -> BacktestRequest:
        global _doomed  # noqa: PLW0603 - per-child state of the poison job
        request = BacktestRequest.model_validate(raw)
        _doomed = CRASH_MARKER in (request.name or "")
        return request


def _run_backtest(config: Any, data: Any, **kwargs: Any) -> Any:
    on_progress = kwargs.get("on_progress")
    if not _doomed or on_progress is None:
        return _real_run_backtest(config, data, **kwargs)

    def progress(fraction: float, day: Any, fills: int) -> None:
        on_progress(fraction, day, fills)
        if fraction >= CRASH_AT_FRACTION:
            print(f"{CRASH_LINE} {os.getpid()}", flush=True)
            sys.stderr.flush()
            os._exit(1)

    return _real_run_backtest(config, data, **{**kwargs, "on_progress": progress})


execution.BacktestRequest = _Requests  # type: ignore[misc,assignment]
execution.run_backtest = _run_backtest


_real_claim = runner._claim


async def _claim(s: Any, job_id: Any, token: str, settings: Any) -> Any:
    row = await jobs_repo.get(s, job_id)
    if EARLY_MARKER and row is not None and EARLY_MARKER in (row.name or ""):
        print(f"{EARLY_CRASH_LINE} {os.getpid()}", flush=True)
        os._exit(1)
    return await _real_claim(s, job_id, token, settings)


runner._claim = _claim  # type: ignore[assignment]
