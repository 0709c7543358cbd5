"""Every kind of job this service runs. Importing this module registers each one on
the job lifecycle (:mod:`app.jobs.registry`); the entry points import it: the API
(``app.main``) and the Celery worker and beat (``celery_worker``).

It also registers what listens to the job lifecycle (``app.jobs.registry`` hooks:
completion webhooks) and the maintenance tasks those need.

Adding a kind: a new domain folder whose ``kind`` module calls
``register(JobKind(...))`` with ``deferred("app.<domain>.run:run")``, and a line in
``KINDS`` and ``RUNNERS`` here (README, "Adding a job kind").

The API process imports only the kinds' declarations: their ``run`` modules import
the engine's kernels and the price store (pyarrow), which only workers need, and
the Celery task modules import Celery, which the API only needs to send a message
(``app.core.queue.get_celery``, at the first one). Worker entry points call
:func:`import_runners` (``celery_worker``, and the API's lifespan in embedded mode,
where the worker is in-process) so that every task (a sweep's chunk tasks, webhook
deliveries, e-mails) is registered before the worker consumes.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from app.backtests import service as backtests_service
from app.backtests.kind import BACKTEST
from app.emails import hooks as emails_hooks
from app.jobs import outbox
from app.jobs.registry import JobKind
from app.schedules import hooks as schedules_hooks
from app.sweeps.kind import SWEEP
from app.webhooks import hooks as webhooks_hooks

KINDS: tuple[JobKind, ...] = (BACKTEST, SWEEP)
# Imported for what they register on app.jobs.registry: the backtest KindApi
# (templates, schedules, shares), the webhook hooks, the schedule firing on every
# sweep, completion e-mails, and the outbox's re-send in embedded mode.
LISTENERS: tuple[ModuleType, ...] = (
    backtests_service,
    outbox,
    webhooks_hooks,
    schedules_hooks,
    emails_hooks,
)

#: The modules holding each kind's ``run`` and ``warm_up`` (and the Celery tasks
#: they use), and the listeners' Celery tasks (``webhooks.deliver``,
#: ``emails.send``): imported by workers only.
RUNNERS: tuple[str, ...] = (
    "app.backtests.run",
    "app.sweeps.run",
    "app.webhooks.tasks",
    "app.emails.tasks",
)


def import_runners() -> None:
    """Import every kind's run module (workers: before consuming)."""
    for name in RUNNERS:
        importlib.import_module(name)
