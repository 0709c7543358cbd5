"""``uvicorn tests.integration.outbox_crash_app:create_app --factory``: the real
embedded app (as ``slow_app``), except that the process dies with ``os._exit``
right after a job's terminal state and its outbox rows are committed, before the
after-commit step queues them: what a worker killed at that instant does.

Test-only: the service never imports this module and has no hook for it; it wraps
``app.jobs.notify.send_outbox`` (called by the runner after the commit) in this
process. Prints :data:`CRASH_LINE` before dying."""

from __future__ import annotations

import os
import sys
from typing import Any

from tests.integration import slow_app

CRASH_LINE = "outbox_crash_app: os._exit(1) after the commit"


def create_app() -> Any:
    from app.jobs import notify  # noqa: PLC0415

    async def die(steps: Any, key: object) -> None:
        print(f"{CRASH_LINE} {key}", flush=True)
        sys.stderr.flush()
        os._exit(1)

    notify.send_outbox = die  # type: ignore[assignment]
    return slow_app.create_app()
