"""Every kind of job this service runs. Importing this module registers each one on
the job lifecycle (:mod:`app.jobs.registry`); the entry points import it: the API
(``app.main``) and the Celery worker and beat (``celery_worker``).

It also registers what listens to the job lifecycle (``app.jobs.registry`` hooks:
completion webhooks) and the maintenance tasks those need.

Adding a kind: a new domain folder whose ``run`` module calls
``register(JobKind(...))``, and one line here (README, "Adding a job kind").
"""

from __future__ import annotations

from types import ModuleType

from app.backtests import service as backtests_service
from app.backtests.run import BACKTEST
from app.emails import hooks as emails_hooks
from app.emails import tasks as emails_tasks
from app.jobs import outbox
from app.jobs.registry import JobKind
from app.schedules import hooks as schedules_hooks
from app.sweeps.run import SWEEP
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
