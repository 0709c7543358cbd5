"""Worker-process hooks of the distributed worker (``celery_worker.py`` installs them;
the embedded worker inside the API does not: the API serves its metrics itself).

* ``worker_init`` (the main process, before the prefork pool starts): serve
  ``/metrics`` on ``WORKER_METRICS_PORT``, aggregated over the pool's children
  through ``PROMETHEUS_MULTIPROC_DIR``.
  It also runs (on a worker that consumes the jobs queue) every registered job
  kind's ``warm_up`` once (the backtest kind
  loads the bundled dataset, so the forked children share it copy-on-write instead
  of each loading ~300 MB on its first job).
* ``worker_process_shutdown`` (each child): drop its live gauges.
"""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery import signals

from app.core.config import Settings
from app.core.metrics import mark_process_dead, start_worker_exporter
from app.core.queue import QUEUE
from app.jobs import registry

log = structlog.get_logger(__name__)


def install_worker_hooks(settings: Settings) -> None:
    def warm_up() -> None:
        for kind in registry.registered():
            if kind.warm_up is not None:
                kind.warm_up(settings)
                log.info("worker.warmed_up", kind=kind.name)

    def on_init(sender: Any = None, **_: Any) -> None:
        if _runs_jobs(sender):
            warm_up()
        port = settings.worker_metrics_port
        try:
            started = start_worker_exporter(port)
        except OSError as exc:  # port taken (a second worker on this host): no metrics
            log.warning("worker.metrics_exporter_failed", port=port, error=str(exc))
            return
        if started:
            log.info("worker.metrics_exporter_started", port=port)

    def on_child_exit(pid: int | None = None, **_: Any) -> None:
        mark_process_dead(pid or os.getpid())

    signals.worker_init.connect(on_init, weak=False, dispatch_uid="app.metrics.init")
    signals.worker_process_shutdown.connect(
        on_child_exit, weak=False, dispatch_uid="app.metrics.child_exit"
    )


def _runs_jobs(worker: Any) -> bool:
    """Whether this worker consumes the jobs queue: a maintenance-only worker (the
    sweeper, webhooks, e-mail) needs no dataset and no compiled kernels."""
    amqp = getattr(getattr(worker, "app", None), "amqp", None)
    queues = getattr(amqp, "queues", None)
    consumed = getattr(queues, "consume_from", None)
    return not consumed or QUEUE in consumed
