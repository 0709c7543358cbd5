"""Test-only: slow the backtest engine down, so a run lasts long enough to be watched,
cancelled or killed mid-way.

The service has no such knob. The test stacks start their processes through two
entry points of this folder that install this wrapper first:
``tests.integration.slow_app:create_app`` (uvicorn, embedded or API) and
``tests.integration.slow_worker`` (``celery -A``). ``TEST_ENGINE_CHUNK_DELAY_SECONDS``
(env) is the sleep after each of the engine's ~50 progress chunks; 0 or unset
installs nothing. Sweeps sleep the same delay after each combination.
``TEST_SETUP_DELAY_SECONDS`` (env) makes a backtest's data loading (a setup phase,
before any progress) take that long, in short sleeps.
"""

from __future__ import annotations

import os
import time
from typing import Any

from app.backtests import run
from app.sweeps import rows as sweeps_rows

ENV = "TEST_ENGINE_CHUNK_DELAY_SECONDS"
SETUP_ENV = "TEST_SETUP_DELAY_SECONDS"
_installed = False


def _slow_setup(seconds: float) -> None:
    real = run.load_dataset

    def slow_load_dataset(*args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return real(*args, **kwargs)

    run.load_dataset = slow_load_dataset  # type: ignore[assignment]


def install() -> None:
    global _installed  # noqa: PLW0603 - once per process
    delay = float(os.environ.get(ENV) or 0)
    setup = float(os.environ.get(SETUP_ENV) or 0)
    if _installed or (delay <= 0 and setup <= 0):
        return
    _installed = True
    if setup > 0:
        _slow_setup(setup)
    if delay <= 0:
        return
    real = run.run_backtest

    def slow_run_backtest(config: Any, data: Any, **kwargs: Any) -> Any:
        on_progress = kwargs.get("on_progress")
        if on_progress is None:
            return real(config, data, **kwargs)

        def progress(*args: Any) -> None:
            on_progress(*args)
            time.sleep(delay)

        return real(config, data, **{**kwargs, "on_progress": progress})

    run.run_backtest = slow_run_backtest  # type: ignore[assignment]

    real_evaluate = sweeps_rows.evaluate

    def slow_evaluate(*args: Any, **kwargs: Any) -> Any:
        for evaluated in real_evaluate(*args, **kwargs):
            time.sleep(delay)
            yield evaluated

    sweeps_rows.evaluate = slow_evaluate  # type: ignore[assignment]
