"""Every kind of job this service runs. Importing this module registers each one on
the job lifecycle (:mod:`app.jobs.registry`); the entry points import it: the API
(``app.main``) and the Celery worker and beat (``celery_worker``).

Adding a kind: a new domain folder whose ``run`` module calls
``register(JobKind(...))``, and one line here (README, "Adding a job kind").
"""

from __future__ import annotations

from app.backtests.run import BACKTEST
from app.jobs.registry import JobKind
from app.sweeps.run import SWEEP

KINDS: tuple[JobKind, ...] = (BACKTEST, SWEEP)
