"""Every kind of job this service runs. Importing this module registers each one on
the job lifecycle (:mod:`app.jobs.registry`); the entry points import it: the API
(``app.main``) and the Celery worker and beat (``celery_worker``).

It also registers what listens to the job lifecycle (``app.jobs.registry`` hooks:
completion webhooks) and the maintenance tasks those need.

Adding a kind: a new domain folder whose ``kind`` module calls
``register(JobKind(...))`` with ``deferred("app.<domain>.run:run")``, and a line in
``KINDS`` and ``RUNNERS`` here (README, "Adding a job kind").

The API process imports only the kinds' declarations: their ``run`` modules import
the engine's kernels and the price store (pyarrow), which only workers need. Worker
entry points call :func:`import_runners` (``celery_worker``, and the API's
lifespan in embedded mode, where the worker is in-process) so that the kinds' Celery
tasks (a sweep's chunk tasks) are registered before the worker consumes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from app.backtests import service as backtests_service
from app.backtests.kind import BACKTEST
from app.emails import hooks as emails_hooks
from app.emails import tasks as emails_tasks
from app.jobs import outbox
from app.jobs.registry import JobKind
from app.schedules import hooks as schedules_hooks
from app.sweeps.kind import SWEEP
from app.webhooks import hooks as webhooks_hooks
from app.webhooks import tasks as webhooks_tasks

KINDS: tuple[JobKind, ...] = (BACKTEST, SWEEP)
# Imported for what they register on app.jobs.registry and celery_app: the backtest
# KindApi (templates, schedules, shares), the webhook hooks and the
# ``webhooks.deliver`` task, the schedule firing on every sweep, completion e-mails
# (``emails.send``), and the outbox's periodic re-send (``notifications.resend``).
LISTENERS: tuple[ModuleType, ...] = (
    backtests_service,
    outbox,
    webhooks_hooks,
    webhooks_tasks,
    schedules_hooks,
    emails_hooks,
    emails_tasks,
)

#: The modules holding each kind's ``run`` and ``warm_up`` (and the Celery tasks
#: they use): imported by workers only.
RUNNERS: tuple[str, ...] = ("app.backtests.run", "app.sweeps.run")


def import_runners() -> None:
    """Import every kind's run module (workers: before consuming)."""
    for name in RUNNERS:
        importlib.import_module(name)
