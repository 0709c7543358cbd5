"""Every kind of job this service runs. Importing this module registers each one on
the job lifecycle (:mod:`app.jobs.registry`); the entry points import it: the API
(``app.main``) and the Celery worker and beat (``celery_worker``).

It also registers what listens to the job lifecycle (``app.jobs.registry`` hooks:
completion webhooks) and the maintenance tasks those need.

Adding a kind: a new domain folder whose ``run`` module calls
``register(JobKind(...))``, and one line here (README, "Adding a job kind").
"""

from __future__ import annotations

import app.webhooks.hooks
import app.webhooks.tasks  # noqa: F401 - registers webhooks.deliver on celery_app
from app.backtests.run import BACKTEST
from app.jobs.registry import JobKind

KINDS: tuple[JobKind, ...] = (BACKTEST,)
