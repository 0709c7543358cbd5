"""Entry point for workers and beat: ``celery -A celery_worker worker`` / ``beat``.

Any number of workers on any number of machines may point at the same Redis and
Postgres (``REDIS_URL``, ``DATABASE_URL``); see README "Run modes". Importing
``app.jobs.tasks`` registers ``jobs.run`` (every kind of job) and ``jobs.sweep``;
importing ``app.kinds`` registers the kinds those tasks run. A worker serves
Prometheus metrics on ``WORKER_METRICS_PORT``.
"""

import app.jobs.tasks
import app.kinds
from app.core.config import get_settings
from app.core.logging import configure_logging
from app.core.queue import get_celery
from app.jobs.worker import install_worker_hooks

app.kinds.import_runners()  # the kinds' run modules and their Celery tasks
configure_logging(get_settings())
install_worker_hooks(get_settings())

app = get_celery()
